package delivery

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"
)

// BreakerFailures is how many failed sends in a row to one webhook host
// open its circuit.
const BreakerFailures = 5

// breaker is a circuit breaker per target (a webhook URL's host and port):
// after BreakerFailures failures in a row, sends to it are not tried until
// cooldown has passed; the first send after that is tried, and one more
// failure opens the circuit again, a success closes it. It is this
// server's memory only: each server learns on its own.
type breaker struct {
	cooldown time.Duration
	mu       sync.Mutex
	targets  map[string]*circuit
}

type circuit struct {
	failures  int
	openUntil time.Time
}

func newBreaker(cooldown time.Duration) *breaker {
	return &breaker{cooldown: cooldown, targets: map[string]*circuit{}}
}

// target is the circuit's key for a URL: its host and port, lowercased.
func target(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return strings.ToLower(u.Host)
}

// allow says whether a send to target may be tried now; if not, its error
// (errCircuitOpen) and how long until it may.
func (b *breaker) allow(target string, now time.Time) (time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.targets[target]
	if c == nil || !now.Before(c.openUntil) {
		return 0, nil
	}
	return c.openUntil.Sub(now), fmt.Errorf("%w: %d failed sends in a row to %s; next try after %s",
		errCircuitOpen, c.failures, target, c.openUntil.UTC().Format(time.RFC3339))
}

// record counts the outcome of a send that was tried.
func (b *breaker) record(target string, ok bool, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		delete(b.targets, target)
		return
	}
	c := b.targets[target]
	if c == nil {
		c = &circuit{}
		b.targets[target] = c
	}
	c.failures++
	if c.failures >= BreakerFailures {
		c.openUntil = now.Add(b.cooldown)
	}
}

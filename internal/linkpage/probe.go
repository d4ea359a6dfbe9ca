package linkpage

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// probes limits how many unknown link tokens one client address may try:
// each 404 on /l/ takes a token from the address's bucket, and an address
// with an empty bucket gets 429 on every /l/ request until it refills.
// People with a real link never get 404s, so they are never held back.
type probes struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// maxTracked bounds the memory of the probe limiter: past it, addresses
// whose buckets are full again are forgotten.
const maxTracked = 10_000

func newProbes(perSecond float64, burst int) *probes {
	if perSecond <= 0 {
		return nil
	}
	return &probes{limit: rate.Limit(perSecond), burst: max(burst, 1), m: map[string]*rate.Limiter{}}
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// wait says how long addr must wait before its next /l/ request (0: none).
func (p *probes) wait(addr string) time.Duration {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.m[addr]
	if l == nil || l.Tokens() >= 1 {
		return 0
	}
	return time.Duration((1 - l.Tokens()) / float64(p.limit) * float64(time.Second))
}

// miss records a request from addr for an unknown token.
func (p *probes) miss(addr string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.m[addr]
	if l == nil {
		if len(p.m) >= maxTracked {
			for a, old := range p.m {
				if old.Tokens() >= float64(p.burst) {
					delete(p.m, a)
				}
			}
		}
		l = rate.NewLimiter(p.limit, p.burst)
		p.m[addr] = l
	}
	l.Allow()
}

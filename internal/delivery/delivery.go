// Package delivery sends web access links to people. Deliveries are rows
// committed with their link; a worker claims due rows, hands each to the
// channel's Sender, and records the outcome, retrying with backoff until the
// send succeeds or the delivery is declared dead.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/imbee/imbee"
)

// Message is one link to send to one recipient.
type Message struct {
	Recipient     imbee.Recipient
	URL           string
	BotName       string
	CorporateName string
	SenderName    string // the mail's From name; the corporate's name when empty
	Language      string // "en" or "es"
	DeliveryID    int64  // the ledger row: stable across retries, for dedupe
}

// Sender sends a message over one channel and returns the provider's id for
// it. An error wrapped with Permanent is not retried.
type Sender interface {
	Send(ctx context.Context, m Message) (providerID string, err error)
}

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot fix (a refused address).
func Permanent(err error) error { return permanentError{err} }

type retryAfterError struct {
	err   error
	after time.Duration
}

func (e retryAfterError) Error() string { return e.err.Error() }
func (e retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as a refusal that the provider asked to retry after d
// (an HTTP 429's Retry-After): the next attempt waits d instead of the
// backoff.
func RetryAfter(err error, d time.Duration) error { return retryAfterError{err, d} }

// Queue is the storage the worker needs.
type Queue interface {
	// ClaimDeliveries leases up to limit due deliveries, each corporate
	// getting a fair share of pool.
	ClaimDeliveries(ctx context.Context, limit, pool int, lease time.Duration) ([]imbee.Delivery, error)
	// MarkSent records d sent, with the provider's id for it.
	MarkSent(ctx context.Context, d imbee.Delivery, providerID string) error
	// MarkFailed records a failed attempt: cause is the whole error (the
	// operator's), reason its class (Reason: what the tenant sees).
	MarkFailed(ctx context.Context, corporateID, id int64, cause, reason string, retryAt time.Time, dead bool) error
}

// Config is the worker's retry policy and concurrency, documented in
// docs/operations.md. Zero fields take the defaults below.
type Config struct {
	// Workers is how many sends run at once.
	Workers int
	// FirstRetry is the wait after the first failed attempt; it doubles
	// with each further failure up to MaxRetry, with ±20 % jitter.
	FirstRetry time.Duration
	MaxRetry   time.Duration
	// MaxAttempts is how many sends are tried before a delivery is dead.
	MaxAttempts int
	// PollInterval is how often the queue is checked when nothing kicks
	// the worker (a link issued by another server, a retry coming due).
	PollInterval time.Duration
	// Timeout bounds one send. A delivery claimed by a server that died is
	// claimed again after twice this (its lease).
	Timeout time.Duration
	// Now is the server's clock, which retry times are counted from
	// (time.Now when nil).
	Now func() time.Time
}

// The defaults of Config.
const (
	DefaultWorkers      = 16
	DefaultFirstRetry   = 30 * time.Second
	DefaultMaxRetry     = time.Hour
	DefaultMaxAttempts  = 8
	DefaultPollInterval = time.Second
	DefaultTimeout      = 30 * time.Second
	// DefaultWebhookTimeout bounds a POST to a bot's webhook: shorter
	// than the providers' (a tenant's endpoint that hangs holds a worker).
	DefaultWebhookTimeout = 10 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = DefaultWorkers
	}
	if c.FirstRetry <= 0 {
		c.FirstRetry = DefaultFirstRetry
	}
	if c.MaxRetry <= 0 {
		c.MaxRetry = DefaultMaxRetry
	}
	c.MaxRetry = max(c.MaxRetry, c.FirstRetry)
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Worker sends due deliveries until its context ends.
type Worker struct {
	queue     Queue
	senders   map[imbee.Channel]Sender
	publicURL string
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	kick      chan struct{}
}

// NewWorker returns a worker that sends through senders (one per channel)
// links under publicURL.
func NewWorker(q Queue, senders map[imbee.Channel]Sender, publicURL string, cfg Config, log *slog.Logger) *Worker {
	return &Worker{
		queue:     q,
		senders:   senders,
		publicURL: strings.TrimRight(publicURL, "/"),
		cfg:       cfg.withDefaults(),
		log:       log,
		now:       cfg.Now,
		kick:      make(chan struct{}, 1),
	}
}

// Kick asks the worker to look for due deliveries now rather than at its
// next poll. It never blocks.
func (w *Worker) Kick() { kickNow(w.kick) }

// Run sends deliveries until ctx ends. Sends in flight when ctx ends finish
// (each within cfg.Timeout) before Run returns.
func (w *Worker) Run(ctx context.Context) {
	runQueue(ctx, w.cfg, w.log, "claim deliveries", w.kick, w.queue.ClaimDeliveries, w.send)
}

// runQueue keeps up to cfg.Workers sends in flight, each on its own
// goroutine: whenever slots are free and jobs may be due it claims as many
// as are free, so a slow send holds only its own slot, never a batch. It
// claims again after sends finish, and at each poll or kick. Each claim
// gives every corporate a fair share of three quarters of the slots (see
// store.ClaimDeliveries): the last quarter is kept for corporates that
// come while another fills its share, so one whose targets hang holds at
// most its share and a newcomer finds a free slot at once. When ctx ends
// it claims no more and returns once the sends in flight are done.
// claimGap is the least time between two claims of a queue: kicks (one per
// link or message) and finished sends arriving meanwhile are served by one
// claim, so that a busy server does not spend its database writer on a
// claim per row. It bounds a queue at claimGap's rate × Workers rows a
// second per server (8,000 with the defaults), far above what providers take.
const claimGap = 2 * time.Millisecond

func runQueue[T any](ctx context.Context, cfg Config, log *slog.Logger, what string, kick <-chan struct{},
	claim func(ctx context.Context, limit, pool int, lease time.Duration) ([]T, error), send func(context.Context, T)) {
	t := time.NewTicker(cfg.PollInterval)
	defer t.Stop()
	done := make(chan struct{}, cfg.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	pool := max(1, cfg.Workers-cfg.Workers/4)
	free, due := cfg.Workers, true
	var last time.Time          // the last claim
	var gapped <-chan time.Time // set while a claim waits out claimGap
	for {
		if due && free > 0 && ctx.Err() == nil && gapped == nil && time.Since(last) < claimGap {
			gapped = time.After(claimGap - time.Since(last))
		}
		if due && free > 0 && ctx.Err() == nil && gapped == nil {
			last = time.Now()
			// The lease outlasts the send's timeout: a claim only expires
			// when its server is gone.
			rows, err := claim(ctx, free, pool, 2*cfg.Timeout)
			if err != nil && ctx.Err() == nil {
				log.Error(what, "err", err)
			}
			for _, r := range rows {
				free--
				wg.Go(func() {
					defer func() { done <- struct{}{} }()
					send(context.WithoutCancel(ctx), r)
				})
			}
			// It took what it could: more comes due with a finished send
			// (a corporate back under its share), a kick or the poll.
			due = false
		}
		select {
		case <-ctx.Done():
			return
		case <-gapped:
			gapped = nil
		case <-t.C:
			due = true
		case <-kick:
			due = true
		case <-done:
			free++
			// Take every send that finished meanwhile: one claim for them
			// all.
			for drained := false; !drained; {
				select {
				case <-done:
					free++
				default:
					drained = true
				}
			}
			due = true
		}
	}
}

func (w *Worker) send(ctx context.Context, d imbee.Delivery) {
	sender, ok := w.senders[d.Recipient.Channel]
	if !ok {
		w.record(ctx, d, Permanent(fmt.Errorf("%w: %s", errNoTransport, d.Recipient.Channel)))
		return
	}
	// The outcome is recorded under ctx, not under the send's deadline: a
	// send that timed out must still be recorded.
	sendCtx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	id, err := sender.Send(sendCtx, Message{
		Recipient:     d.Recipient,
		URL:           w.publicURL + "/l/" + d.LinkToken,
		BotName:       d.BotName,
		CorporateName: d.CorporateName,
		SenderName:    d.SenderName,
		Language:      d.Language,
		DeliveryID:    d.ID,
	})
	if err == nil {
		if err := w.queue.MarkSent(ctx, d, id); err != nil {
			w.log.Error("record sent delivery", "delivery_id", d.ID, "err", err)
		}
		return
	}
	w.record(ctx, d, err)
}

func (w *Worker) record(ctx context.Context, d imbee.Delivery, sendErr error) {
	wait, dead := w.cfg.retryWait(d.Attempts, sendErr)
	// Providers quote the address in their errors: the log gets it masked
	// (the ledger, which only the corporate and the operator read, keeps
	// the whole text).
	logged := strings.ReplaceAll(sendErr.Error(), d.Recipient.Address, Mask(d.Recipient.Address))
	w.log.Warn("delivery failed", "delivery_id", d.ID, "channel", d.Recipient.Channel, "to", Mask(d.Recipient.Address),
		"attempt", d.Attempts, "dead", dead, "retry_in", wait.Round(time.Millisecond).String(), "reason", Reason(sendErr), "err", logged)
	if err := w.queue.MarkFailed(ctx, d.CorporateID, d.ID, sendErr.Error(), Reason(sendErr), w.now().Add(wait), dead); err != nil {
		w.log.Error("record failed delivery", "delivery_id", d.ID, "err", err)
	}
	if !dead {
		w.wakeAt(wait)
	}
}

// wakeAt kicks the worker when a retry comes due, so that retries sooner
// than the poll interval are not late.
func (w *Worker) wakeAt(d time.Duration) { wakeAt(w.cfg, d, w.kick) }

func wakeAt(cfg Config, d time.Duration, kick chan struct{}) {
	if d < cfg.PollInterval {
		time.AfterFunc(d, func() { kickNow(kick) })
	}
}

// kickNow asks a queue loop to look for due jobs now; it never blocks.
func kickNow(kick chan struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
}

// Backoff is the wait after the given failed attempt (1-based): doubling
// from FirstRetry, capped at MaxRetry, with ±20 % jitter so retries spread
// out.
func (w *Worker) Backoff(attempt int) time.Duration { return w.cfg.backoff(attempt) }

func (c Config) backoff(attempt int) time.Duration {
	d := c.FirstRetry
	for i := 1; i < attempt && d < c.MaxRetry; i++ {
		d *= 2
	}
	d = min(d, c.MaxRetry)
	jitter := time.Duration(rand.Int64N(int64(d)*2/5+1)) - d/5
	return d + jitter
}

// retryWait is how long to wait after a failed attempt: the provider's
// Retry-After when it gave one (capped), else the backoff. dead says that
// no retry is due: a permanent error, or the last attempt.
func (c Config) retryWait(attempt int, err error) (wait time.Duration, dead bool) {
	var perm permanentError
	var ra retryAfterError
	dead = errors.As(err, &perm) || attempt >= c.MaxAttempts
	wait = c.backoff(attempt)
	if errors.As(err, &ra) && ra.after > 0 {
		wait = min(ra.after, c.MaxRetry)
	}
	return wait, dead
}

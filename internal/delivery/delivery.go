// Package delivery sends web access links to people. Deliveries are rows
// committed with their link; a worker claims due rows, hands each to the
// channel's Sender, and records the outcome, retrying with backoff until the
// send succeeds or the delivery is declared dead.
package delivery

import (
	"context"
	"errors"
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

// Queue is the storage the worker needs.
type Queue interface {
	ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]imbee.Delivery, error)
	MarkSent(ctx context.Context, id int64, providerID string) error
	MarkFailed(ctx context.Context, id int64, cause string, retryAt time.Time, dead bool) error
}

// Policy of retries, documented in docs/operations.md.
const (
	// MaxAttempts is how many sends are tried before a delivery is dead.
	MaxAttempts = 8
	firstRetry  = 30 * time.Second
	maxRetry    = time.Hour
	// lease is how long a claimed delivery is ours; a worker that dies
	// mid-send leaves it to be claimed again after this.
	lease        = 2 * time.Minute
	sendTimeout  = 30 * time.Second
	pollInterval = time.Second
	batchSize    = 32
)

// Worker sends due deliveries until its context ends.
type Worker struct {
	queue     Queue
	senders   map[imbee.Channel]Sender
	publicURL string
	log       *slog.Logger
	now       func() time.Time
	kick      chan struct{}
}

// NewWorker returns a worker that sends through senders (one per channel)
// links under publicURL.
func NewWorker(q Queue, senders map[imbee.Channel]Sender, publicURL string, log *slog.Logger) *Worker {
	return &Worker{
		queue:     q,
		senders:   senders,
		publicURL: strings.TrimRight(publicURL, "/"),
		log:       log,
		now:       time.Now,
		kick:      make(chan struct{}, 1),
	}
}

// Kick asks the worker to look for due deliveries now rather than at its
// next poll. It never blocks.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run sends deliveries until ctx ends. Sends in flight when ctx ends finish
// (each within sendTimeout) before Run returns.
func (w *Worker) Run(ctx context.Context) {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		for w.runBatch(ctx) == batchSize && ctx.Err() == nil {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
	}
}

// runBatch claims and sends one batch, concurrently, and says how many.
func (w *Worker) runBatch(ctx context.Context) int {
	if ctx.Err() != nil {
		return 0
	}
	ds, err := w.queue.ClaimDeliveries(ctx, batchSize, lease)
	if err != nil {
		w.log.Error("claim deliveries", "err", err)
		return 0
	}
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(func() { w.send(context.WithoutCancel(ctx), d) })
	}
	wg.Wait()
	return len(ds)
}

func (w *Worker) send(ctx context.Context, d imbee.Delivery) {
	sender, ok := w.senders[d.Recipient.Channel]
	if !ok {
		w.record(ctx, d, Permanent(errors.New("no transport for channel "+string(d.Recipient.Channel))))
		return
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	id, err := sender.Send(ctx, Message{
		Recipient:     d.Recipient,
		URL:           w.publicURL + "/l/" + d.LinkToken,
		BotName:       d.BotName,
		CorporateName: d.CorporateName,
	})
	if err == nil {
		if err := w.queue.MarkSent(ctx, d.ID, id); err != nil {
			w.log.Error("record sent delivery", "delivery_id", d.ID, "err", err)
		}
		return
	}
	w.record(ctx, d, err)
}

func (w *Worker) record(ctx context.Context, d imbee.Delivery, sendErr error) {
	var perm permanentError
	dead := errors.As(sendErr, &perm) || d.Attempts >= MaxAttempts
	retryAt := w.now().Add(Backoff(d.Attempts))
	w.log.Warn("delivery failed", "delivery_id", d.ID, "channel", d.Recipient.Channel,
		"attempt", d.Attempts, "dead", dead, "err", sendErr)
	if err := w.queue.MarkFailed(ctx, d.ID, sendErr.Error(), retryAt, dead); err != nil {
		w.log.Error("record failed delivery", "delivery_id", d.ID, "err", err)
	}
}

// Backoff is the wait after the given failed attempt (1-based): doubling
// from 30 s, capped at an hour, with ±20 % jitter so retries spread out.
func Backoff(attempt int) time.Duration {
	d := firstRetry
	for i := 1; i < attempt && d < maxRetry; i++ {
		d *= 2
	}
	d = min(d, maxRetry)
	jitter := time.Duration(rand.Int64N(int64(d)*2/5)) - d/5
	return d + jitter
}

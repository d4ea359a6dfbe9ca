package realtime

import (
	"context"
	"log/slog"
	"time"

	"github.com/imbee/imbee"
)

// Feed is the events other servers commit, as a bridge follows them
// (store.EventFeed on PostgreSQL).
type Feed interface {
	// Next returns the events committed since the last call, each message
	// with its message; more says there are more to read at once.
	Next(ctx context.Context) (events []imbee.Event, more bool, err error)
	// Listen waits for hints that there are events to read: it calls
	// listening once it waits, then hint at each, until ctx ends or its
	// connection is lost (the error it returns).
	Listen(ctx context.Context, listening, hint func()) error
}

// Bridge hands the events of the other servers to the hub: on each hint,
// and every SafetyNet in case a hint was lost, it reads what was committed
// since its last read, once for the whole server, and publishes it; the
// hub hands each message's frame, encoded once, to all the conversation's
// sockets.
type Bridge struct {
	hub  *Hub
	feed Feed
	log  *slog.Logger
	// SafetyNet is how often it reads without a hint.
	SafetyNet time.Duration
	after     func(time.Duration) <-chan time.Time // time.After; tests see the waits
}

// NewBridge returns a bridge from feed to hub; log records lost
// connections.
func NewBridge(hub *Hub, feed Feed, log *slog.Logger) *Bridge {
	return &Bridge{hub: hub, feed: feed, log: log, SafetyNet: 2 * time.Second, after: time.After}
}

// Longest wait between two attempts to listen again.
const maxBackoff = 2 * time.Second

// Run follows the feed until ctx ends.
func (b *Bridge) Run(ctx context.Context) {
	hints := make(chan struct{}, 1)
	hint := func() {
		select {
		case hints <- struct{}{}:
		default:
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.listen(ctx, hint)
	}()
	defer func() { <-done }()
	t := time.NewTicker(b.SafetyNet)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hints:
		case <-t.C:
		}
		b.read(ctx)
	}
}

// listen keeps a LISTEN going: after a lost connection it listens again
// first and only then has the events read, so that nothing committed in
// between goes without a hint. The wait between attempts grows while they
// fail and starts over once one listens.
func (b *Bridge) listen(ctx context.Context, hint func()) {
	var wait time.Duration
	for {
		err := b.feed.Listen(ctx, func() {
			wait = 0
			hint() // what was committed while it did not listen
		}, hint)
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("events: listen lost, listening again", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-b.after(wait):
		}
		wait = min(max(2*wait, 50*time.Millisecond), maxBackoff)
	}
}

// read publishes what was committed since the last read. A failed read is
// done again at the next hint or tick: the feed has not moved.
func (b *Bridge) read(ctx context.Context) {
	for {
		es, more, err := b.feed.Next(ctx)
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("events: read", "err", err)
			}
			return
		}
		for _, e := range es {
			b.hub.Publish(e)
		}
		if !more {
			return
		}
	}
}

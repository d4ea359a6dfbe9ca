package writes

import (
	"context"
	"sync"
)

// batcher writes what concurrent callers record in one write: the first
// caller writes its own value and every one that arrived meanwhile, and
// each caller returns once the write that holds its value is done, with
// that write's error. A caller that arrives during a write waits for the
// next one, which the oldest such caller makes. Nothing is held back to
// fill a batch: an idle queue writes at once.
type batcher[T any] struct {
	write func(ctx context.Context, vs []T) error

	mu      sync.Mutex
	pending []*batched[T]
	writing bool
}

type batched[T any] struct {
	v    T
	done chan error    // the write that held v is done
	lead chan struct{} // v's caller writes the next batch
}

func (b *batcher[T]) do(ctx context.Context, v T) error {
	me := &batched[T]{v: v, done: make(chan error, 1), lead: make(chan struct{}, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, me)
	leader := !b.writing
	b.writing = true
	b.mu.Unlock()
	if !leader {
		select {
		case err := <-me.done:
			return err
		case <-me.lead:
		}
	}
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	vs := make([]T, len(batch))
	for i, x := range batch {
		vs[i] = x.v
	}
	err := b.write(ctx, vs)
	for _, x := range batch {
		if x != me {
			x.done <- err
		}
	}
	b.mu.Lock()
	if len(b.pending) > 0 {
		b.pending[0].lead <- struct{}{}
	} else {
		b.writing = false
	}
	b.mu.Unlock()
	return err
}

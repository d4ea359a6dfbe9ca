package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// maxBatch bounds how many requests share one commit, so that one commit's
// latency stays bounded under a flood.
const maxBatch = 256

type writeReq struct {
	ctx  context.Context
	fn   func(q querier) error
	done chan error
}

// writer is the one goroutine that writes to SQLite, on the one write
// connection, with its own prepared statements. Requests that arrive while a
// commit is in flight queue up and share the next commit.
type writer struct {
	conn     *sql.Conn
	stmts    *stmtCache // over conn; used by the loop goroutine only
	reqs     chan *writeReq
	stopped  chan struct{}
	shutdown chan struct{}

	// mu guards closed: senders hold it shared while they queue, so that
	// once close has set closed, nothing more is queued and the loop's
	// final drain sees every request.
	mu        sync.RWMutex
	closed    bool
	closeOnce sync.Once
}

func newWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("write connection: %w", err)
	}
	w := &writer{
		conn:     conn,
		stmts:    newStmtCache(conn),
		reqs:     make(chan *writeReq, maxBatch),
		stopped:  make(chan struct{}),
		shutdown: make(chan struct{}),
	}
	go w.loop()
	return w, nil
}

func (w *writer) do(ctx context.Context, fn func(q querier) error) error {
	r := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return internal("write", errors.New("store is closed"))
	}
	select {
	case w.reqs <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the write may
	// commit, and the caller must not report a failure for a success.
	return <-r.done
}

func (w *writer) close() {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		close(w.shutdown)
	})
	<-w.stopped
}

func (w *writer) loop() {
	defer close(w.stopped)
	defer func() {
		w.stmts.close()
		w.conn.Close()
	}()
	batch := make([]*writeReq, 0, maxBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-w.shutdown:
			// Finish what was queued before the store closed.
			for {
				select {
				case r := <-w.reqs:
					w.commit([]*writeReq{r})
				default:
					return
				}
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		w.commit(batch)
	}
}

// exec runs a transaction-control statement on the write connection.
func (w *writer) exec(query string) error {
	_, err := w.stmts.ExecContext(context.Background(), query)
	return err
}

// commit runs a batch in one transaction, each request in its own savepoint.
func (w *writer) commit(batch []*writeReq) {
	fail := func(op string, err error) {
		for _, r := range batch {
			r.done <- internal(op, err)
		}
	}
	if err := w.exec("BEGIN IMMEDIATE"); err != nil {
		fail("begin", err)
		return
	}
	if len(batch) == 1 {
		w.commitOne(batch[0])
		return
	}
	errs := make([]error, len(batch))
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err // the caller left before its turn: do nothing for it
			continue
		}
		var ok bool
		errs[i], ok = w.runOne(r.fn)
		if !ok {
			// The transaction is in an unknown state: give up the whole
			// batch rather than commit half of a request.
			w.exec("ROLLBACK")
			fail("write", errs[i])
			return
		}
	}
	if err := w.exec("COMMIT"); err != nil {
		w.exec("ROLLBACK")
		fail("commit", err)
		return
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}

// commitOne runs a request that is alone in its transaction without a
// savepoint: its failure rolls back the transaction, which holds nothing
// else. A savepoint makes SQLite journal each page's first change in the
// transaction a second time, which is most of a large write's cost (a bulk
// import's batch).
func (w *writer) commitOne(r *writeReq) {
	if err := r.ctx.Err(); err != nil {
		w.exec("ROLLBACK")
		r.done <- err
		return
	}
	err := w.runAlone(r.fn)
	if err != nil {
		if rerr := w.exec("ROLLBACK"); rerr != nil {
			err = internal("rollback", rerr)
		}
		r.done <- err
		return
	}
	if err := w.exec("COMMIT"); err != nil {
		w.exec("ROLLBACK")
		r.done <- internal("commit", err)
		return
	}
	r.done <- nil
}

// runAlone runs fn, turning a panic into an error.
func (w *writer) runAlone(fn func(q querier) error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = internal("write", fmt.Errorf("panic: %v", p))
		}
	}()
	return fn(detached{w.stmts})
}

// runOne runs fn in a savepoint. ok is false when the savepoint could not be
// set, rolled back or released, and the transaction can no longer be trusted.
func (w *writer) runOne(fn func(q querier) error) (err error, ok bool) {
	if err := w.exec("SAVEPOINT req"); err != nil {
		return err, false
	}
	ok = true
	defer func() {
		if p := recover(); p != nil {
			err = internal("write", fmt.Errorf("panic: %v", p))
		}
		if err != nil {
			if rerr := w.exec("ROLLBACK TO req"); rerr != nil {
				err, ok = rerr, false
				return
			}
		}
		if rerr := w.exec("RELEASE req"); rerr != nil {
			err, ok = rerr, false
		}
	}()
	return fn(detached{w.stmts}), true
}

// detached runs statements of the shared transaction without their
// caller's cancellation: a cancelled statement makes SQLite roll back the
// whole transaction, which would fail every other request in the batch.
type detached struct{ q querier }

func (d detached) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return d.q.ExecContext(context.WithoutCancel(ctx), query, args...)
}

func (d detached) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return d.q.QueryContext(context.WithoutCancel(ctx), query, args...)
}

func (d detached) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return d.q.QueryRowContext(context.WithoutCancel(ctx), query, args...)
}

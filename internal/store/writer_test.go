package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/imbee/imbee"
)

// TestWriterFailures: a request that fails or panics is rolled back alone,
// whether it is alone in its transaction or shares it with others, and the
// writer goes on.
func TestWriterFailures(t *testing.T) {
	s := mustOpen(t, nil) // SQLite: the writer is SQLite's
	ctx := context.Background()
	insert := func(name string) func(q querier) error {
		return func(q querier) error {
			_, err := q.ExecContext(ctx, `INSERT INTO corporates (name, timezone, language, sender_name, auth_nonce, corporate_token_nonce, corporate_token_hash, created_at)
				VALUES (?, 'UTC', 'en', '', x'00', x'00', randomblob(32), 0)`, name)
			return err
		}
	}
	count := func(name string) int {
		var n int
		if err := s.reads.QueryRowContext(ctx, `SELECT COUNT(*) FROM corporates WHERE name = ?`, name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	boom := errors.New("boom")

	// Alone: the failure's insert is undone, the error is the request's own.
	if err := s.inWrite(ctx, func(q querier) error { insert("lone-fail")(q); return boom }); !errors.Is(err, boom) {
		t.Fatalf("lone failure: %v", err)
	}
	err := s.inWrite(ctx, func(q querier) error { insert("lone-panic")(q); panic("bad") })
	if imbee.ErrorCode(err) != imbee.CodeGeneric || err == nil {
		t.Fatalf("lone panic: %v", err)
	}
	if err := s.inWrite(ctx, insert("after")); err != nil {
		t.Fatalf("the writer stopped after a panic: %v", err)
	}
	if count("lone-fail") != 0 || count("lone-panic") != 0 || count("after") != 1 {
		t.Fatalf("rows: lone-fail %d, lone-panic %d, after %d", count("lone-fail"), count("lone-panic"), count("after"))
	}

	// Together: many requests at once share transactions; the failing and
	// panicking ones are undone, every other one commits.
	const n = 60
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("batch-%d", i)
			errs[i] = s.inWrite(ctx, func(q querier) error {
				if err := insert(name)(q); err != nil {
					return err
				}
				switch i % 3 {
				case 1:
					return boom
				case 2:
					panic("bad")
				}
				return nil
			})
		})
	}
	wg.Wait()
	for i := range n {
		want := map[int]int{0: 1, 1: 0, 2: 0}[i%3]
		if got := count(fmt.Sprintf("batch-%d", i)); got != want || (want == 1) != (errs[i] == nil) {
			t.Errorf("request %d: %d rows, err %v; want %d rows", i, got, errs[i], want)
		}
	}
}

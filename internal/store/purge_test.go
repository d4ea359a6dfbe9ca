package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

func TestPurgeInBatches(t *testing.T) { testkit.ForEachBackend(t, testPurgeInBatches) }

// testPurgeInBatches: with batches of 10, one purge statement deletes at
// most 10 rows, and a purge deletes every expired key and old revocation
// (25 of each, three batches) and nothing else.
func testPurgeInBatches(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	withPurgeBatch(t, 10)
	now := unix(clock.Now())
	if err := s.inWrite(ctx, func(q querier) error {
		for i := range 30 {
			expires, created := now-1, now-7200 // 25 expired and old…
			if i >= 25 {
				expires, created = now+60, now // …5 not
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO idempotency_keys (corporate_id, principal, key_hash, request_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
				1+i%2, 0, []byte{byte(i)}, []byte{1}, created, expires); err != nil {
				return err
			}
			if _, err := q.ExecContext(ctx, `INSERT INTO revocations (corporate_id, kind, subject, created_at) VALUES (?, 'link', ?, ?)`, 1+i%2, i, created); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	count := func(table string) (n int) {
		t.Helper()
		if err := s.reads.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	// One batch: its statement alone deletes at most a batch.
	if err := s.inWrite(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, purgeIdempotencyKeys, now, purgeBatch)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n := count("idempotency_keys"); n != 20 {
		t.Fatalf("one batch left %d keys of 30, want 20", n)
	}
	if n, err := s.PurgeIdempotencyKeys(ctx); err != nil || n != 15 {
		t.Errorf("purged %d keys (%v), want the 15 expired left", n, err)
	}
	if n, err := s.PurgeRevocations(ctx, clock.Now().Add(-time.Hour)); err != nil || n != 25 {
		t.Errorf("purged %d revocations (%v), want the 25 old ones", n, err)
	}
	if k, r := count("idempotency_keys"), count("revocations"); k != 5 || r != 5 {
		t.Errorf("%d keys and %d revocations left, want the 5 live of each", k, r)
	}
}

// withPurgeBatch makes the purge's batches n rows for the test.
func withPurgeBatch(t *testing.T, n int) {
	saved := purgeBatch
	purgeBatch = n
	t.Cleanup(func() { purgeBatch = saved })
}

// TestPurgeOnce: of two servers on one PostgreSQL database, one purges
// while the other skips; once the first is done, the other may.
func TestPurgeOnce(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		dsn, keys := testkit.DSN(t), newKeyring(t)
		a, err := openAt(t, dsn, keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := openAt(t, dsn, keys, nil)
		if err != nil {
			t.Fatal(err)
		}
		running, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := a.PurgeOnce(ctx, func(context.Context) error {
				close(running)
				<-release
				return nil
			})
			done <- err
		}()
		<-running
		ran, err := b.PurgeOnce(ctx, func(context.Context) error {
			t.Error("the second server purged while the first did")
			return nil
		})
		if err != nil || ran {
			t.Errorf("second purger: ran %v, %v; want skipped", ran, err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		called := false
		if ran, err := b.PurgeOnce(ctx, func(context.Context) error { called = true; return nil }); err != nil || !ran || !called {
			t.Errorf("after the first finished: ran %v, called %v, %v", ran, called, err)
		}
	})
}

func TestPurgeLinkSessions(t *testing.T) { testkit.ForEachBackend(t, testPurgeLinkSessions) }

// testPurgeLinkSessions: the web sessions of links that have ended go, in
// batches, and those still running stay and keep working; an ended
// session's cookie is refused the same before and after.
func testPurgeLinkSessions(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	withPurgeBatch(t, 2)
	c, _, err := s.CreateCorporate(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	bot := mustBot(t, s, c.ID, "Helper")
	open := func(who string, ends time.Time) string {
		t.Helper()
		sess, _, err := s.SpendLink(ctx, mustIssue(t, s, linkRequest(c, who, bot, 1, ends)).Token, testAttempt)
		if err != nil {
			t.Fatal(err)
		}
		return sess.Token
	}
	var ending, lasting []string
	for i := range 5 {
		ending = append(ending, open(fmt.Sprint("ana", i), clock.Now().Add(time.Hour)))
	}
	for i := range 2 {
		lasting = append(lasting, open(fmt.Sprint("bea", i), clock.Now().Add(72*time.Hour)))
	}
	if n, err := s.PurgeLinkSessions(ctx); err != nil || n != 0 {
		t.Fatalf("purged %d sessions (%v) before any ended", n, err)
	}

	clock.Advance(time.Hour)
	if _, err := s.SessionByToken(ctx, ending[0]); imbee.ErrorCode(err) != imbee.CodeNotFound {
		t.Fatalf("an ended session before the purge: %v, want not found", err)
	}
	if n, err := s.PurgeLinkSessions(ctx); err != nil || n != 5 {
		t.Errorf("purged %d sessions (%v), want the 5 ended", n, err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM sessions`); n != 2 {
		t.Errorf("%d sessions left, want the 2 running", n)
	}
	if _, err := s.SessionByToken(ctx, ending[0]); imbee.ErrorCode(err) != imbee.CodeNotFound {
		t.Errorf("an ended session after the purge: %v, want not found", err)
	}
	for _, tok := range lasting {
		if _, err := s.SessionByToken(ctx, tok); err != nil {
			t.Errorf("the purge ended a running session: %v", err)
		}
	}
}

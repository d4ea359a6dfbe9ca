package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// TestTakeRate: the shared bucket behaves as the memory one does: burst
// requests at once, then one per interval, a wait that says when; a user's
// bucket apart from its corporate's; a changed limit starts full.
func TestTakeRate(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		take := func(user int64, perSecond float64, burst int) (time.Duration, bool, float64) {
			t.Helper()
			wait, ok, remaining, err := s.TakeRate(ctx, 1, user, perSecond, burst)
			if err != nil {
				t.Fatal(err)
			}
			return wait, ok, remaining
		}
		for i := range 3 {
			if _, ok, remaining := take(0, 2, 3); !ok || remaining != float64(2-i) {
				t.Fatalf("take %d of the burst: ok %v, %v remaining", i, ok, remaining)
			}
		}
		if wait, ok, _ := take(0, 2, 3); ok || wait != 500*time.Millisecond {
			t.Fatalf("past the burst: ok %v, wait %v; want refused for 500ms", ok, wait)
		}
		if _, ok, _ := take(7, 2, 3); !ok {
			t.Error("a user's bucket is its corporate's")
		}
		clock.Advance(499 * time.Millisecond)
		if _, ok, _ := take(0, 2, 3); ok {
			t.Error("taken before the interval passed")
		}
		clock.Advance(time.Millisecond)
		if _, ok, _ := take(0, 2, 3); !ok {
			t.Error("refused after the interval")
		}
		for i := range 5 {
			if _, ok, _ := take(0, 2, 5); !ok {
				t.Fatalf("take %d of a changed burst of 5 refused", i)
			}
		}
		clock.Advance(time.Hour)
		if _, ok, remaining := take(0, 2, 5); !ok || remaining != 4 {
			t.Errorf("after an hour: ok %v, %v remaining; want a full bucket, not more", ok, remaining)
		}
	})
}

// TestTakeRateAcrossServers: two servers' stores, 60 requests at once at
// one instant on a bucket of 10: exactly 10 are taken.
func TestTakeRateAcrossServers(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		dsn, keys, clock := testkit.DSN(t), newKeyring(t), testkit.NewClock()
		var stores [2]*Store
		for i := range stores {
			s, err := openAt(t, dsn, keys, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			stores[i] = s
		}
		var mu sync.Mutex
		taken := 0
		var wg sync.WaitGroup
		for i := range 60 {
			wg.Go(func() {
				_, ok, _, err := stores[i%2].TakeRate(context.Background(), 1, 0, 1, 10)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if ok {
					taken++
				}
			})
		}
		wg.Wait()
		if taken != 10 {
			t.Errorf("%d requests taken from a bucket of 10", taken)
		}
	})
}

// TestPurgeRateBuckets: the buckets that have filled up again are
// deleted, batch after batch through the table; those still refilling are
// kept.
func TestPurgeRateBuckets(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		saved := purgeBatch
		purgeBatch = 2
		t.Cleanup(func() { purgeBatch = saved })
		take := func(corporate, user int64) {
			t.Helper()
			if _, _, _, err := s.TakeRate(ctx, corporate, user, 1, 10); err != nil {
				t.Fatal(err)
			}
		}
		for corporate := range int64(3) {
			for user := range int64(3) {
				take(corporate+1, user)
			}
		}
		clock.Advance(2 * time.Second)
		active := [][2]int64{{1, 1}, {2, 0}, {2, 2}, {3, 2}}
		for _, k := range active {
			for range 5 {
				take(k[0], k[1])
			}
		}
		if n, err := s.PurgeRateBuckets(ctx); err != nil || n != 5 {
			t.Fatalf("purged %d (%v), want the 5 idle buckets", n, err)
		}
		var left int
		if err := s.reads.QueryRowContext(ctx, `SELECT count(*) FROM rate_buckets`).Scan(&left); err != nil || left != len(active) {
			t.Errorf("%d buckets left (%v), want the %d active", left, err, len(active))
		}
	})
}

// BenchmarkTakeRate is what the shared rate limit adds to a request on
// PostgreSQL, one statement: on one corporate's row (every request of a
// busy corporate, one after another or 32 at once) and on a row per user
// (32 at once).
func BenchmarkTakeRate(b *testing.B) {
	b.Run("postgres", func(b *testing.B) {
		s := mustOpen(b, nil)
		ctx := context.Background()
		take := func(b *testing.B, user int64) {
			if _, ok, _, err := s.TakeRate(ctx, 1, user, 1e9, 1e9); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
		b.Run("OneRow", func(b *testing.B) {
			for b.Loop() {
				take(b, 0)
			}
		})
		b.Run("OneRow32", func(b *testing.B) {
			b.SetParallelism(16) // 32 goroutines on 2 cores
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					take(b, 0)
				}
			})
		})
		var users atomic.Int64
		b.Run("RowPerUser32", func(b *testing.B) {
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				user := users.Add(1)
				for pb.Next() {
					take(b, user)
				}
			})
		})
	})
}

package store

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/ratelimit"
	"github.com/imbee/imbee/internal/testkit"
)

// TestLend: the shared bucket behaves as the memory one does: burst
// requests at once, then one per interval, a wait that says when; a user's
// bucket apart from its corporate's; a changed limit starts full.
func TestLend(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		take := func(user int64, perSecond float64, burst int) (time.Duration, bool, float64) {
			t.Helper()
			taken, wait, remaining, err := s.Lend(ctx, 1, user, perSecond, burst, 1)
			if err != nil || taken > 1 {
				t.Fatal(taken, err)
			}
			return wait, taken == 1, remaining
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

		// A chunk takes what there is, up to its size.
		lend := func(n int) int {
			t.Helper()
			taken, _, _, err := s.Lend(ctx, 2, 0, 10, 25, n)
			if err != nil {
				t.Fatal(err)
			}
			return taken
		}
		if a, b, c := lend(10), lend(10), lend(10); a != 10 || b != 10 || c != 5 {
			t.Errorf("chunks of 10 from a bucket of 25: %d, %d, %d", a, b, c)
		}
		clock.Advance(250 * time.Millisecond)
		if a, b := lend(10), lend(10); a != 2 || b != 0 {
			t.Errorf("chunks of 10 after 2 came back: %d, %d", a, b)
		}
	})
}

// TestGiveBack: a try given back can be taken again, at once; a full
// bucket grows no bigger for one given back; a bucket filled at another
// rate is left as it is.
func TestGiveBack(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		const space, key, perSecond, burst = ratelimit.SpaceSignInsByUser, 42, 1.0 / 60, 2
		take := func() bool {
			t.Helper()
			taken, _, _, err := s.Lend(ctx, space, key, perSecond, burst, 1)
			if err != nil {
				t.Fatal(err)
			}
			return taken == 1
		}
		give := func(perSecond float64) {
			t.Helper()
			if err := s.GiveBack(ctx, space, key, perSecond, burst); err != nil {
				t.Fatal(err)
			}
		}
		give(perSecond) // no bucket yet: nothing to give back to
		if !take() || !take() || take() {
			t.Fatal("a bucket of 2 did not allow exactly 2")
		}
		give(perSecond)
		if !take() {
			t.Error("the try given back was not there")
		}
		if take() {
			t.Error("two tries came back for one given")
		}
		give(1) // another rate's: not this bucket's
		if take() {
			t.Error("a try given back at another rate was taken")
		}
		clock.Advance(2 * time.Minute) // full again
		give(perSecond)
		if !take() || !take() || take() {
			t.Error("a full bucket given a try holds more than its burst")
		}
	})
}

// TestLendAcrossServers: two servers' stores, 60 requests at once at
// one instant on a bucket of 10, for chunks of 1 to 3: exactly 10 are
// taken.
func TestLendAcrossServers(t *testing.T) {
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
				n, _, _, err := stores[i%2].Lend(context.Background(), 1, 0, 1, 10, 1+i%3)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				taken += n
			})
		}
		wg.Wait()
		if taken != 10 {
			t.Errorf("%d requests taken from a bucket of 10", taken)
		}
	})
}

// TestLeasedAcrossServers: two servers lease chunks (of 10) of a fast
// limit, 1000 a second, from the one bucket, 16 requests at once on each:
// at one instant the installation takes exactly the burst, and 100 more
// once a tenth of a second has passed.
func TestLeasedAcrossServers(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		dsn, keys, clock := testkit.DSN(t), newKeyring(t), testkit.NewClock()
		var servers [2]*ratelimit.Leased
		for i := range servers {
			s, err := openAt(t, dsn, keys, clock.Now)
			if err != nil {
				t.Fatal(err)
			}
			servers[i] = ratelimit.NewLeased(s, clock.Now, 0)
		}
		flood := func() int {
			var taken atomic.Int64
			var wg sync.WaitGroup
			for w := range 32 {
				wg.Go(func() {
					for range 100 {
						_, ok, _, err := servers[w%2].TakeRate(context.Background(), 1, 0, 1000, 1000)
						if err != nil {
							t.Error(err)
							return
						}
						if ok {
							taken.Add(1)
						}
					}
				})
			}
			wg.Wait()
			return int(taken.Load())
		}
		if n := flood(); n != 1000 {
			t.Errorf("%d requests taken at one instant from a burst of 1000", n)
		}
		clock.Advance(100 * time.Millisecond)
		if n := flood(); n != 100 {
			t.Errorf("%d requests taken 100 ms later at 1000 a second", n)
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
		withPurgeBatch(t, 2)
		take := func(corporate, user int64) {
			t.Helper()
			if _, _, _, err := s.Lend(ctx, corporate, user, 1, 10, 1); err != nil {
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

// BenchmarkLend is what the shared rate limit adds to a request on
// PostgreSQL, one statement: on one corporate's row (every request of a
// busy corporate, one after another or 32 at once) and on a row per user
// (32 at once).
func BenchmarkLend(b *testing.B) {
	b.Run("postgres", func(b *testing.B) {
		s := mustOpen(b, nil)
		ctx := context.Background()
		take := func(b *testing.B, user int64) {
			if taken, _, _, err := s.Lend(ctx, 1, user, 1e9, 1e9, 1); err != nil || taken != 1 {
				b.Fatal(taken, err)
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

package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// fakeLender is a shared bucket holding tokens, and counts how often it
// is asked.
type fakeLender struct {
	tokens int
	wait   time.Duration
	asked  []int // the chunk of each ask
}

func (f *fakeLender) Lend(_ context.Context, _, _ int64, _ float64, _, n int) (int, time.Duration, float64, error) {
	f.asked = append(f.asked, n)
	taken := min(n, f.tokens)
	f.tokens -= taken
	if taken == 0 {
		return 0, f.wait, 0, nil
	}
	return taken, 0, float64(f.tokens), nil
}

// TestLeasedChunks: a fast limit is asked once per chunk (a hundredth of
// its rate, at most a tenth of its burst), a slow one request by request.
func TestLeasedChunks(t *testing.T) {
	c := testkit.NewClock()
	ctx := context.Background()
	for _, tc := range []struct {
		perSecond float64
		burst     int
		chunk     int
	}{{5000, 10000, 50}, {5000, 100, 10}, {20, 20, 1}, {0.5, 1, 1}} {
		f := &fakeLender{tokens: 1000}
		l := NewLeased(f, c.Now, 0)
		for i := range 100 {
			if _, ok, _, err := l.TakeRate(ctx, 1, 0, tc.perSecond, tc.burst); !ok || err != nil {
				t.Fatalf("%v/s: take %d refused (%v)", tc.perSecond, i, err)
			}
		}
		if len(f.asked) != 100/tc.chunk || f.asked[0] != tc.chunk {
			t.Errorf("%v/s burst %d: asked %d times for %v, want chunks of %d", tc.perSecond, tc.burst, len(f.asked), f.asked[:1], tc.chunk)
		}
	}
}

// TestLeasedRefusal: a refusal holds for its wait without asking again;
// then the shared bucket is asked.
func TestLeasedRefusal(t *testing.T) {
	c := testkit.NewClock()
	ctx := context.Background()
	f := &fakeLender{wait: 500 * time.Millisecond}
	l := NewLeased(f, c.Now, 0)
	for range 10 {
		if wait, ok, _, _ := l.TakeRate(ctx, 1, 2, 2, 3); ok || wait <= 0 || wait > 500*time.Millisecond {
			t.Fatalf("ok %v, wait %v: want refused for at most 500ms", ok, wait)
		}
		c.Advance(40 * time.Millisecond)
	}
	if len(f.asked) != 1 {
		t.Fatalf("asked %d times within the wait", len(f.asked))
	}
	c.Advance(100 * time.Millisecond)
	f.tokens = 1
	if _, ok, _, _ := l.TakeRate(ctx, 1, 2, 2, 3); !ok || len(f.asked) != 2 {
		t.Errorf("after the wait: ok %v, asked %d times", ok, len(f.asked))
	}
}

// TestLeasedStale: a chunk left unspent for over a second is dropped, and
// so is one leased at another limit.
func TestLeasedStale(t *testing.T) {
	c := testkit.NewClock()
	ctx := context.Background()
	f := &fakeLender{tokens: 1000}
	l := NewLeased(f, c.Now, 0)
	l.TakeRate(ctx, 1, 0, 5000, 10000)
	c.Advance(2 * time.Second)
	l.TakeRate(ctx, 1, 0, 5000, 10000)
	l.TakeRate(ctx, 1, 0, 4000, 10000)
	if len(f.asked) != 3 {
		t.Errorf("asked %d times, want once per take: a stale chunk, a changed limit", len(f.asked))
	}
}

// TestLeasedMemoryBound: leases for more keys than the maximum keep only
// the maximum.
func TestLeasedMemoryBound(t *testing.T) {
	l := NewLeased(&fakeLender{tokens: 1 << 30}, time.Now, 100)
	for i := range int64(1000) {
		l.TakeRate(context.Background(), 1, i, 1, 1)
	}
	if n := len(l.leases); n != 100 {
		t.Errorf("%d leases held, want 100", n)
	}
}

package ratelimit

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

func TestKeyedBucket(t *testing.T) {
	c := testkit.NewClock()
	k := newAt[string](2, 3, 0, c.Now)
	for i := range 3 {
		if _, ok := k.Allow("a"); !ok {
			t.Fatalf("take %d of the burst refused", i)
		}
	}
	wait, ok := k.Allow("a")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("past the burst: ok %v wait %v, want refused for 500ms", ok, wait)
	}
	if w := k.Wait("a"); w != 500*time.Millisecond {
		t.Errorf("Wait = %v", w)
	}
	if _, ok := k.Allow("b"); !ok {
		t.Error("another key is held back")
	}
	c.Advance(500 * time.Millisecond)
	if w := k.Wait("a"); w != 0 {
		t.Errorf("after refilling one token, Wait = %v", w)
	}
	if _, ok := k.Allow("a"); !ok {
		t.Error("refilled token refused")
	}
	if w := k.Wait("unknown"); w != 0 {
		t.Errorf("unknown key waits %v", w)
	}
	c.Advance(time.Hour)
	for range 3 {
		k.Allow("a")
	}
	if _, ok := k.Allow("a"); ok {
		t.Error("a long pause filled the bucket beyond its burst")
	}
}

func TestKeyedAllowWith(t *testing.T) {
	c := testkit.NewClock()
	k := newAt[int64](1, 1, 0, c.Now)
	for i := range 5 {
		if _, ok, _ := k.AllowWith(7, 10, 5); !ok {
			t.Fatalf("take %d of its own burst refused", i)
		}
	}
	wait, ok, _ := k.AllowWith(7, 10, 5)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("past its own burst: ok %v wait %v", ok, wait)
	}
}

func TestNilAllowsEverything(t *testing.T) {
	k := New[string](0, 10, 0)
	if k != nil {
		t.Fatal("a limit of 0 should be no limiter")
	}
	if _, ok := k.Allow("x"); !ok || k.Wait("x") != 0 || k.Len() != 0 {
		t.Error("nil Keyed limited")
	}
}

// TestKeyedMemoryBound: a million distinct keys (an address flood) leave
// at most maxKeys buckets, and the heap does not grow with the flood.
func TestKeyedMemoryBound(t *testing.T) {
	const maxKeys = 1000
	k := New[string](1, 5, maxKeys)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 1_000_000 {
		k.Allow(fmt.Sprintf("2001:db8:%x::/64", i))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := k.Len(); n != maxKeys {
		t.Fatalf("%d keys held after a million, want %d", n, maxKeys)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 1<<20 {
		t.Errorf("heap grew %d bytes for %d buckets", grown, maxKeys)
	}
	// The list and the map agree.
	n := 0
	for e := k.head.next; e != &k.head; e = e.next {
		if k.m[e.key] != e {
			t.Fatalf("bucket %q on the list is not the map's", e.key)
		}
		n++
	}
	if n != maxKeys {
		t.Fatalf("list holds %d buckets, map %d", n, maxKeys)
	}
}

// TestKeyedEvictsLeastRecent: a key in use survives a flood of new keys
// that is smaller than the table; the oldest untouched one goes first.
func TestKeyedEvictsLeastRecent(t *testing.T) {
	c := testkit.NewClock()
	k := newAt[string](1, 2, 3, c.Now)
	k.Allow("old")
	k.Allow("hot")
	k.Allow("hot")
	k.Allow("mid")
	k.Allow("hot") // refused, but touched: now the most recent
	k.Allow("new") // table full: "old" goes
	if _, held := k.m["old"]; held {
		t.Error("the least recently used key was kept")
	}
	if _, ok := k.Allow("hot"); ok {
		t.Error("the key in use lost its empty bucket")
	}
}

func BenchmarkKeyedAllow(b *testing.B) {
	k := New[string](1e9, 1<<30, 0)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("192.0.2.%d", i)
	}
	i := 0
	for b.Loop() {
		k.Allow(keys[i&1023])
		i++
	}
}

// TestKeyedChangedLimit: a key whose rate or burst changes starts again
// with a full bucket of the new size, neither keeping the old bucket's
// tokens nor its debt.
func TestKeyedChangedLimit(t *testing.T) {
	c := testkit.NewClock()
	k := NewPerKey[int](0)
	k.now, k.base = c.Now, c.Now()
	for range 10 {
		k.AllowWith(1, 1, 10)
	}
	for i := range 3 {
		if _, ok, _ := k.AllowWith(1, 1, 3); !ok {
			t.Fatalf("take %d of the new burst of 3 refused", i)
		}
	}
	if _, ok, _ := k.AllowWith(1, 1, 3); ok {
		t.Error("a fourth take from a bucket of 3")
	}
}

// A token given back is taken again, and never fills the bucket beyond its
// size.
func TestKeyedReturn(t *testing.T) {
	c := testkit.NewClock()
	k := newAt[string](1, 2, 0, c.Now)
	k.Allow("a")
	k.Allow("a")
	if _, ok := k.Allow("a"); ok {
		t.Fatal("a third take of a burst of 2 allowed")
	}
	k.Return("a")
	if _, ok := k.Allow("a"); !ok {
		t.Fatal("the returned token is not there")
	}
	if _, ok := k.Allow("a"); ok {
		t.Fatal("one return gave more than one token")
	}
	c.Advance(time.Hour)
	k.Return("a")
	k.Return("unknown") // no bucket: nothing to give back
	for i := range 2 {
		if _, ok := k.Allow("a"); !ok {
			t.Fatalf("take %d of a full bucket refused", i)
		}
	}
	if _, ok := k.Allow("a"); ok {
		t.Error("returns filled the bucket beyond its size")
	}
	var none *Keyed[string]
	none.Return("a") // a nil Keyed has nothing to give back, and does not panic
}

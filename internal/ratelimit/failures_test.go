package ratelimit

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// sharedBucket is one shared bucket per key, as the database keeps them:
// Lend takes, GiveBack returns, up to the burst.
type sharedBucket struct {
	tokens map[[2]int64]int
	burst  int
	asked  int
}

func (b *sharedBucket) Lend(_ context.Context, corporateID, userID int64, _ float64, burst, n int) (int, time.Duration, float64, error) {
	b.asked++
	k := [2]int64{corporateID, userID}
	if _, ok := b.tokens[k]; !ok {
		b.tokens[k] = burst
	}
	taken := min(n, b.tokens[k])
	b.tokens[k] -= taken
	if taken == 0 {
		return 0, time.Minute, 0, nil
	}
	return taken, 0, float64(b.tokens[k]), nil
}

func (b *sharedBucket) GiveBack(_ context.Context, corporateID, userID int64, _ float64, burst int) error {
	k := [2]int64{corporateID, userID}
	b.tokens[k] = min(b.tokens[k]+1, burst)
	return nil
}

// TestSharedFailures: two servers on one set of shared buckets allow a
// key its burst once between them, not once each; a refusal is kept by
// the server that was given it (asked no more until it ends) and learnt
// by the other when it asks; a try given back can be taken again, on
// either server; keys and spaces do not share buckets.
func TestSharedFailures(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	bucket := &sharedBucket{tokens: map[[2]int64]int{}}
	a := NewSharedFailures(bucket, SpaceSignInsByUser, StringID, 1.0/60, 3, clock.Now)
	b := NewSharedFailures(bucket, SpaceSignInsByUser, StringID, 1.0/60, 3, clock.Now)
	servers := []*Failures[string]{a, b}

	for i := range 3 {
		if _, ok, err := servers[i%2].Take(ctx, "ana"); !ok || err != nil {
			t.Fatalf("try %d of a burst of 3: refused (%v)", i+1, err)
		}
	}
	// The first server took the last try: it refuses the next itself.
	asked := bucket.asked
	if wait, ok, _ := a.Take(ctx, "ana"); ok || wait <= 0 || bucket.asked != asked {
		t.Fatalf("a 4th try on the server that took the last: ok %v wait %v, asked %d; want refused without asking", ok, wait, bucket.asked-asked)
	}
	// The second learns it when it asks, and then asks no more.
	if w := b.Wait("ana"); w != 0 {
		t.Errorf("the other server knows of no refusal yet: Wait = %v, want 0", w)
	}
	if wait, ok, _ := b.Take(ctx, "ana"); ok || wait <= 0 {
		t.Fatalf("a 4th try on the other server: ok %v wait %v, want refused", ok, wait)
	}
	if w := b.Wait("ana"); w <= 0 {
		t.Errorf("the refused server's Wait = %v, want the refusal's", w)
	}
	asked = bucket.asked
	for range 5 {
		if _, ok, _ := b.Take(ctx, "ana"); ok {
			t.Fatal("a refused key's try was taken before its wait ended")
		}
	}
	if bucket.asked != asked {
		t.Errorf("a refused key asked the shared bucket %d more times, want none", bucket.asked-asked)
	}

	// Another key, and the same key in another space, have their own.
	if _, ok, _ := a.Take(ctx, "bea"); !ok {
		t.Error("another key was refused")
	}
	byAddr := NewSharedFailures(bucket, SpaceSignInsByAddr, StringID, 1.0/60, 3, clock.Now)
	if _, ok, _ := byAddr.Take(ctx, "ana"); !ok {
		t.Error("the same key in another space was refused")
	}

	// A try given back is there at once on the server that gave it back,
	// and on the other once its refusal ends.
	if err := a.Return(ctx, "ana"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Take(ctx, "ana"); !ok {
		t.Error("the try given back was not there")
	}
	if err := a.Return(ctx, "ana"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, ok, _ := b.Take(ctx, "ana"); !ok {
		t.Error("the try given back was not there for the other server")
	}
}

// TestLocalFailures: alone, the buckets are this server's: the same
// burst, Wait without taking, and Return.
func TestLocalFailures(t *testing.T) {
	ctx := context.Background()
	f := NewFailures[netip.Prefix](1.0/60, 2, 0)
	addr := netip.MustParsePrefix("192.0.2.1/32")
	for i := range 2 {
		if _, ok, _ := f.Take(ctx, addr); !ok {
			t.Fatalf("try %d refused", i+1)
		}
	}
	if f.Wait(addr) <= 0 {
		t.Error("Wait after the burst = 0")
	}
	if _, ok, _ := f.Take(ctx, addr); ok {
		t.Error("a try past the burst was taken")
	}
	f.Return(ctx, addr)
	if _, ok, _ := f.Take(ctx, addr); !ok {
		t.Error("the try given back was not there")
	}
	var none *Failures[string]
	if _, ok, err := none.Take(ctx, "x"); !ok || err != nil || none.Wait("x") != 0 || none.Return(ctx, "x") != nil {
		t.Error("a nil Failures limits")
	}
	if NewFailures[string](0, 5, 0) != nil || NewSharedFailures[string](&sharedBucket{}, SpaceAuthFailures, StringID, 0, 5, time.Now) != nil {
		t.Error("a rate of 0 is a limit")
	}
}

// TestKeyIDs: address and string keys name distinct, stable buckets.
func TestKeyIDs(t *testing.T) {
	a, b := netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/64")
	if PrefixID(a) != PrefixID(a) || PrefixID(a) == PrefixID(b) || StringID("ana") == StringID("anb") {
		t.Error("key ids are not stable and distinct")
	}
	if PrefixID(a) < 0 || StringID("ana") < 0 {
		t.Error("a key id is negative")
	}
}

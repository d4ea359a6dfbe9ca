package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imbee/imbee"
)

// TestClaimFairShare: a corporate with a backlog gets the whole pool while
// it is alone, no more than its share once another has due work (whose rows
// are claimed first), and none while it holds its share; leases of any
// server count as held.
func TestClaimFairShare(t *testing.T) { forEachBackend(t, testClaimFairShare) }

func testClaimFairShare(t *testing.T) {
	ctx := context.Background()
	const lease = time.Minute
	clock := newFakeClock()
	s := mustOpen(t, clock.Now)
	issue := func(c imbee.Corporate, bot imbee.Bot, n int) {
		for i := range n {
			mustIssue(t, s, linkRequest(c, fmt.Sprint("u", i), bot, 1, clock.Now().Add(time.Hour),
				imbee.Recipient{Channel: imbee.ChannelMail, Address: fmt.Sprintf("u%d@example.com", i)}))
		}
	}
	claim := func(limit, pool int) map[int64]int {
		t.Helper()
		ds, err := s.ClaimDeliveries(ctx, limit, pool, lease)
		if err != nil {
			t.Fatal(err)
		}
		per := map[int64]int{}
		for _, d := range ds {
			per[d.CorporateID]++
		}
		return per
	}
	a := mustCorporate(t, s, "A")
	issue(a, mustBot(t, s, a.ID, "A bot"), 10)
	if got := claim(2, 4); got[a.ID] != 2 {
		t.Fatalf("A alone, 2 free slots: %v", got)
	}
	if got := claim(4, 4); got[a.ID] != 2 {
		t.Fatalf("A alone with 2 in flight, pool 4: claimed %v, want 2 more (the whole pool)", got)
	}
	// B comes: A holds 4 of a pool of 4, its share is now 2.
	b := mustCorporate(t, s, "B")
	issue(b, mustBot(t, s, b.ID, "B bot"), 3)
	if got := claim(4, 4); got[a.ID] != 0 || got[b.ID] != 2 {
		t.Fatalf("A over its share, B with 3 due: claimed %v, want B's 2 and none of A's", got)
	}
	if got := claim(4, 4); len(got) != 0 {
		t.Fatalf("both at their share: claimed %v, want nothing", got)
	}
	// A's leases run out (its server died): its rows are due, not held.
	clock.Advance(lease + time.Second)
	if got := claim(8, 4); got[a.ID] != 2 || got[b.ID] != 2 {
		t.Fatalf("after the leases ran out: claimed %v, want 2 each", got)
	}
}

package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

// TestClaimFairShare: a corporate with a backlog gets the whole pool while
// it is alone, no more than its share once another has due work (whose rows
// are claimed first), and none while it holds its share; leases of any
// server count as held.
func TestClaimFairShare(t *testing.T) { testkit.ForEachBackend(t, testClaimFairShare) }

func testClaimFairShare(t *testing.T) {
	const lease = time.Minute
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	issue := func(c imbee.Corporate, bot imbee.Bot, n int) {
		for i := range n {
			mustIssue(t, s, linkRequest(c, fmt.Sprint("u", i), bot, 1, clock.Now().Add(time.Hour),
				imbee.Recipient{Channel: imbee.ChannelMail, Address: fmt.Sprintf("u%d@example.com", i)}))
		}
	}
	claim := func(limit, pool int) map[int64]int { t.Helper(); return claimPerCorporate(t, s, limit, pool, lease) }
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

// TestClaimOldestAcrossStatuses: within a corporate's share the oldest due
// rows go first whatever their status: a failed row due for its retry, a
// queued one, one whose lease ran out.
func TestClaimOldestAcrossStatuses(t *testing.T) {
	testkit.ForEachBackend(t, testClaimOldestAcrossStatuses)
}

func testClaimOldestAcrossStatuses(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "A")
	bot := mustBot(t, s, c.ID, "A bot")
	issue := func(user string) {
		mustIssue(t, s, linkRequest(c, user, bot, 1, clock.Now().Add(time.Hour),
			imbee.Recipient{Channel: imbee.ChannelMail, Address: user + "@example.com"}))
	}
	claimOne := func() imbee.Delivery {
		t.Helper()
		ds, err := s.ClaimDeliveries(ctx, 1, 4, time.Minute)
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim: %v, %v", ds, err)
		}
		return ds[0]
	}
	issue("failed")
	failed := claimOne()
	// Due again within 3 s (rounded up to the second): after the queued
	// row issued now, before the one issued after 5 s.
	if err := s.MarkFailed(ctx, failed.CorporateID, failed.ID, "refused", "refused", clock.Now().Add(2*time.Second), false); err != nil {
		t.Fatal(err)
	}
	issue("early")
	clock.Advance(5 * time.Second)
	issue("late")
	clock.Advance(10 * time.Second)
	for _, want := range []string{"early@example.com", "failed@example.com", "late@example.com"} {
		if got := claimOne().Recipient.Address; got != want {
			t.Fatalf("claimed %s, want %s", got, want)
		}
	}
}

// TestClaimSkipsDisabled: a disabled corporate's deliveries are not sent
// (an operator stopping an abusive tenant stops its mails and SMS too), and
// take no share from the others; enabled again, they are.
func TestClaimSkipsDisabled(t *testing.T) { testkit.ForEachBackend(t, testClaimSkipsDisabled) }

func testClaimSkipsDisabled(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	claim := func() map[int64]int { t.Helper(); return claimPerCorporate(t, s, 8, 4, time.Minute) }
	a, b := mustCorporate(t, s, "A"), mustCorporate(t, s, "B")
	for _, c := range []imbee.Corporate{a, b} {
		bot := mustBot(t, s, c.ID, "bot")
		for i := range 4 {
			mustIssue(t, s, linkRequest(c, fmt.Sprint("u", i), bot, 1, clock.Now().Add(time.Hour),
				imbee.Recipient{Channel: imbee.ChannelMail, Address: fmt.Sprintf("u%d@example.com", i)}))
		}
	}
	if _, err := s.SetCorporateDisabled(ctx, a.ID, true); err != nil {
		t.Fatal(err)
	}
	if got := claim(); got[a.ID] != 0 || got[b.ID] != 4 {
		t.Fatalf("A disabled: claimed %v, want none of A's and B's 4 (the whole pool)", got)
	}
	if _, err := s.SetCorporateDisabled(ctx, a.ID, false); err != nil {
		t.Fatal(err)
	}
	if got := claim(); got[a.ID] != 2 {
		t.Fatalf("A enabled again: claimed %v, want 2 of A's (its share of 4, B holding 4)", got)
	}
}

// claimPerCorporate claims deliveries and counts them per corporate.
func claimPerCorporate(t *testing.T, s *Store, limit, pool int, lease time.Duration) map[int64]int {
	t.Helper()
	ds, err := s.ClaimDeliveries(context.Background(), limit, pool, lease)
	if err != nil {
		t.Fatal(err)
	}
	per := map[int64]int{}
	for _, d := range ds {
		per[d.CorporateID]++
	}
	return per
}

package store

import (
	"context"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

// TestPresenceHidesPushTargets: a user with a socket open on any server
// is no push target; presence is per server (one server's last socket
// closing leaves another's), per corporate, and counts for nothing once
// expired; the purge deletes only expired rows.
func TestPresenceHidesPushTargets(t *testing.T) {
	testkit.ForEachBackend(t, testPresenceHidesPushTargets)
}

func testPresenceHidesPushTargets(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	corp, other := mustCorporate(t, s, "a"), mustCorporate(t, s, "b")
	ana, bea := mustUser(t, s, corp.ID, "ana"), mustUser(t, s, corp.ID, "bea")
	conv, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: corp.ID, Creator: bea.IDSha, Type: imbee.ConversationChat, Contacts: []string{ana.IDSha}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SavePushSubscription(ctx, imbee.PushSubscription{CorporateID: corp.ID, UserID: ana.ID,
		Endpoint: "https://push.example.net/ana", P256dh: []byte("key"), Auth: []byte("0123456789abcdef")}); err != nil {
		t.Fatal(err)
	}
	targets := func(when string, want int) {
		t.Helper()
		ts, err := s.PushTargets(ctx, corp.ID, conv.PublicID, bea.IDSha)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != want {
			t.Errorf("%s: %d push targets, want %d", when, len(ts), want)
		}
	}
	lease := func() time.Time { return clock.Now().Add(15 * time.Second) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	targets("nobody looking", 1)
	must(s.MarkPresent(ctx, "s1", other.ID, []int64{ana.ID}, lease()))
	targets("the same user id present in another corporate", 1)
	must(s.MarkPresent(ctx, "s1", corp.ID, []int64{ana.ID, bea.ID}, lease()))
	targets("ana looking on s1", 0)
	must(s.MarkPresent(ctx, "s2", corp.ID, []int64{ana.ID}, lease()))
	must(s.MarkAbsent(ctx, "s1", corp.ID, []int64{ana.ID}))
	targets("ana gone from s1, still on s2", 0)
	must(s.MarkAbsent(ctx, "s2", corp.ID, []int64{ana.ID}))
	targets("ana gone from both", 1)

	must(s.MarkPresent(ctx, "s3", corp.ID, []int64{ana.ID}, lease()))
	clock.Advance(10 * time.Second)
	must(s.MarkPresent(ctx, "s4", corp.ID, []int64{ana.ID}, lease()))
	clock.Advance(10 * time.Second)
	targets("s3 stopped renewing, s4 renewed", 0)
	if n, err := s.PurgePresence(ctx); err != nil || n != 3 {
		t.Errorf("purge: %d rows (%v), want the 3 expired: s3's and s1's left (bea, the other corporate's)", n, err)
	}
	clock.Advance(10 * time.Second)
	targets("s4 stopped renewing too", 1)
	if n := countRows(t, s, `SELECT count(*) FROM presence WHERE corporate_id = ? AND user_id = ?`, corp.ID, ana.ID); n != 1 {
		t.Errorf("%d rows of ana before the purge, want s4's", n)
	}
}

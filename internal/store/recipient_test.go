package store

import (
	"context"
	"testing"
	"time"

	"github.com/imbee/imbee"
)

func TestSendLimitSpellings(t *testing.T) { forEachBackend(t, testSendLimitSpellings) }

// testSendLimitSpellings: the per-recipient limit counts one mailbox
// however its address is spelled, and each delivery still goes to the
// spelling it was asked for.
func testSendLimitSpellings(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "Acme")
	bot := mustBot(t, s, c.ID, "Helper")
	req := func(user, addr string) imbee.LinkRequest {
		r := linkRequest(c, user, bot, 3, clock.Now().Add(24*time.Hour), imbee.Recipient{Channel: imbee.ChannelMail, Address: addr})
		r.SendsPerHour = 2
		return r
	}
	mustIssue(t, s, req("u1", "ana@example.com"))
	mustIssue(t, s, req("u2", "Ana@Example.com"))
	_, err := s.IssueLink(ctx, req("u3", "ANA@EXAMPLE.COM"))
	wantCode(t, err, imbee.CodeRateLimited, "a third spelling of one address within an hour")

	ds, err := s.Deliveries(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range ds {
		got[d.Recipient.Address] = true
	}
	if len(ds) != 2 || !got["ana@example.com"] || !got["Ana@Example.com"] {
		t.Errorf("deliveries %v: want one to each spelling sent", got)
	}
}

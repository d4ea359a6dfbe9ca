package store

import (
	"context"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

// TestAttemptsNewestFirst: the audit trail orders attempts by when each
// request came, also within one millisecond, whatever order they were
// written in (a page view is written after the spend that followed it).
func TestAttemptsNewestFirst(t *testing.T) { testkit.ForEachBackend(t, testAttemptsNewestFirst) }

func testAttemptsNewestFirst(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "A")
	link := mustIssue(t, s, linkRequest(c, "ana", mustBot(t, s, c.ID, "bot"), 3, clock.Now().Add(time.Hour),
		imbee.Recipient{Channel: imbee.ChannelMail, Address: "ana@example.com"}))
	viewed := clock.Now().Add(100 * time.Microsecond)
	spent := viewed.Add(300 * time.Microsecond) // the same millisecond
	for _, a := range []imbee.LinkAttempt{
		{CorporateID: c.ID, LinkID: link.ID, At: spent, Method: "POST", Result: "spent", Address: "192.0.2.1", Agent: "browser"},
		{CorporateID: c.ID, LinkID: link.ID, At: viewed, Method: "GET", Result: "viewed", Address: "192.0.2.1", Agent: "browser"},
	} {
		if err := s.RecordLinkAttempts(ctx, []imbee.LinkAttempt{a}); err != nil {
			t.Fatal(err)
		}
	}
	as, err := s.LinkAttempts(ctx, c.ID, link.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 2 || as[0].Method != "POST" || as[1].Method != "GET" || !as[0].At.Equal(spent) {
		t.Fatalf("attempts = %+v, want the POST then the GET", as)
	}
}

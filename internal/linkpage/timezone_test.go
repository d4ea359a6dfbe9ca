package linkpage

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee"
)

// TestLinkEndsAtCorporateMidnight: a link issued by the domain's rule for
// a corporate in Auckland or Los Angeles works until the midnight that
// ends its date_limit there, at whatever UTC hour that is (across a DST
// change included), and answers 410 from that instant, on the page and
// on the POST that would spend it.
func TestLinkEndsAtCorporateMidnight(t *testing.T) {
	for _, tc := range []struct {
		zone, now, dateLimit, end string
	}{
		{"Pacific/Auckland", "2030-03-14T09:00:00Z", "2030-03-14", "2030-03-14T11:00:00Z"},    // NZDT: 22:00, one hour to go
		{"Pacific/Auckland", "2030-04-05T09:00:00Z", "2030-04-07", "2030-04-07T12:00:00Z"},    // after NZDT ends on 7 April
		{"America/Los_Angeles", "2030-03-09T20:00:00Z", "2030-03-10", "2030-03-11T07:00:00Z"}, // PDT from 10 March
		{"America/Los_Angeles", "2030-03-09T20:00:00Z", "2030-03-09", "2030-03-10T08:00:00Z"}, // the last day of PST
	} {
		t.Run(strings.ReplaceAll(tc.zone, "/", "_")+"_"+tc.dateLimit, func(t *testing.T) {
			e := setup(t)
			ctx := context.Background()
			now, _ := time.Parse(time.RFC3339, tc.now)
			end, _ := time.Parse(time.RFC3339, tc.end)
			e.clock.Advance(now.Sub(e.clock.Now()))
			corp, err := e.store.UpdateCorporate(ctx, e.corp.ID, imbee.CorporateSettings{TimeZone: &tc.zone})
			if err != nil {
				t.Fatal(err)
			}
			lr, err := imbee.NewLinkRequest(corp, imbee.LinkInput{UniqueID: "ana", BotIDSha: e.bot.IDSha, Mail: "ana@example.com", DateLimit: tc.dateLimit}, e.clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if !lr.ExpiresAt.Equal(end) {
				t.Fatalf("expires at %s, want %s", lr.ExpiresAt.UTC().Format(time.RFC3339), tc.end)
			}
			l, err := e.store.IssueLink(ctx, lr)
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Advance(end.Add(-time.Second).Sub(e.clock.Now()))
			wantStatus(t, e.do(t, "GET", "/l/"+l.Token), 200, "a second before the end of "+tc.dateLimit)
			e.clock.Advance(time.Second)
			r := e.do(t, "GET", "/l/"+l.Token)
			wantStatus(t, r, 410, "at the end of "+tc.dateLimit)
			if !strings.Contains(r.body, "expired") {
				t.Errorf("the page does not say the link expired: %s", r.body)
			}
			wantStatus(t, e.do(t, "POST", "/l/"+l.Token), 410, "spending at the end of "+tc.dateLimit)
		})
	}
}

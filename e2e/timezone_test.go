package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// TestLinkEndsInCorporateZone: for corporates whose day ends at other UTC
// hours (Auckland, UTC+12/+13; Los Angeles, UTC-8/-7; Kiritimati, UTC+14;
// Pago Pago, UTC-11), a link's days are the corporate's: the default
// date_limit is today + 30 there, today there is accepted and yesterday
// there refused, /token/status and the page show it active, and the
// stored expiry is the midnight that ends date_limit in that zone. (The
// server runs on the real clock: the instant it turns 410 is tested with
// a moved clock in internal/linkpage, TestLinkEndsAtCorporateMidnight.)
func TestLinkEndsInCorporateZone(t *testing.T) {
	testkit.ForEachBackend(t, testLinkEndsInCorporateZone)
}

func testLinkEndsInCorporateZone(t *testing.T) {
	s := startServer(t)
	db := s.openDB(t, true)
	for _, zone := range []string{"Pacific/Auckland", "America/Los_Angeles", "Pacific/Kiritimati", "Pacific/Pago_Pago"} {
		t.Run(strings.ReplaceAll(zone, "/", "_"), func(t *testing.T) {
			loc, err := time.LoadLocation(zone)
			if err != nil {
				t.Fatal(err)
			}
			c := s.newCorporate(t, "Zone "+zone)
			if _, err := s.imbee("corporate", "update", "--id", fmt.Sprint(c.id), "--timezone", zone); err != nil {
				t.Fatal(err)
			}
			newToken := func(user, dateLimit string) envelope {
				body := map[string]any{"virtual_user": user, "bot_idsha": c.bot, "mail": "ana@example.com"}
				if dateLimit != "" {
					body["date_limit"] = dateLimit
				}
				return s.post(t, "/token/new", c.auth, c.token, body)
			}
			// inToday runs call on the zone's today, again if the zone's
			// midnight passed meanwhile.
			inToday := func(call func(today time.Time) envelope) (envelope, time.Time) {
				for {
					day := func() time.Time {
						n := time.Now().In(loc)
						return time.Date(n.Year(), n.Month(), n.Day(), 0, 0, 0, 0, loc)
					}
					today := day()
					e := call(today)
					if day().Equal(today) {
						return e, today
					}
				}
			}

			e, today := inToday(func(time.Time) envelope { return newToken("ana", "") })
			expect(t, e, 200, 0)
			if want := today.AddDate(0, 0, 30).Format(time.DateOnly); e.str("date_limit") != want {
				t.Errorf("default date_limit %s, want today + 30 in %s: %s", e.str("date_limit"), zone, want)
			}

			e, today = inToday(func(today time.Time) envelope {
				return newToken("bea", today.AddDate(0, 0, -1).Format(time.DateOnly))
			})
			yesterday := today.AddDate(0, 0, -1).Format(time.DateOnly)
			expect(t, e, 400, 6)
			if want := fmt.Sprintf("date_limit %s is in the past (today is %s in %s)", yesterday, today.Format(time.DateOnly), zone); e.Message != want || e.str("field") != "date_limit" {
				t.Errorf("yesterday in %s: %q field %q, want %q", zone, e.Message, e.str("field"), want)
			}

			e, today = inToday(func(today time.Time) envelope { return newToken("bea", today.Format(time.DateOnly)) })
			expect(t, e, 200, 0)
			url := e.str("url")
			if e.str("date_limit") != today.Format(time.DateOnly) {
				t.Errorf("date_limit today in %s: %s, want %s", zone, e.str("date_limit"), today.Format(time.DateOnly))
			}
			st := s.post(t, "/token/status", c.auth, c.token, map[string]any{"url": url})
			expect(t, st, 200, 0)
			if st.str("date_limit") != today.Format(time.DateOnly) || st.str("state") != "active" {
				t.Errorf("status: %s", st.Raw)
			}
			if code, _, _ := page(t, browser(t), "GET", url); code != 200 {
				t.Errorf("the page of a link ending today in %s: %d", zone, code)
			}

			var expires int64
			if err := db.QueryRow(`SELECT l.expires_at FROM links l JOIN users u ON u.id = l.user_id
				WHERE l.corporate_id = $1 AND u.unique_id = 'bea'`, c.id).Scan(&expires); err != nil {
				t.Fatal(err)
			}
			end := today.AddDate(0, 0, 1) // the midnight that ends today there
			if got := time.Unix(expires, 0); !got.Equal(end) {
				t.Errorf("the link ending %s in %s expires at %s, want %s (%s there)", today.Format(time.DateOnly), zone,
					got.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), end.Format(time.RFC3339))
			}
		})
	}
}

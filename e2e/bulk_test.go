package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/imbee/imbee/internal/testkit"
)

// bulkResult is one item of a /third_parties/user/bulk answer.
type bulkResult struct {
	Index                int    `json:"index"`
	Code                 int    `json:"code"`
	Message              string `json:"message"`
	Field                string `json:"field"`
	VirtualUser          string `json:"virtualUser"`
	Pass                 string `json:"pass"`
	APIKey               string `json:"apikey"`
	PreviouslyRegistered *bool  `json:"previously_registered"`
}

type bulkBody struct {
	Results  []bulkResult `json:"results"`
	Created  int          `json:"created"`
	Existing int          `json:"existing"`
	Failed   int          `json:"failed"`
}

func bulkAnswer(t testing.TB, e envelope) bulkBody {
	t.Helper()
	var resp struct {
		Body bulkBody `json:"body"`
	}
	if err := json.Unmarshal([]byte(e.Raw), &resp); err != nil {
		t.Fatalf("bulk answer: %v: %s", err, e.Raw)
	}
	return resp.Body
}

// countUsers counts a corporate's users in the database.
func countUsers(t testing.TB, d dbSpec, corporateID int64) int {
	t.Helper()
	db := d.openDB(t, true)
	var n int
	q := `SELECT count(*) FROM users WHERE corporate_id = ?`
	if d.postgres() {
		q = strings.Replace(q, "?", "$1", 1)
	}
	if err := db.QueryRow(q, corporateID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUserBulk(t *testing.T) { testkit.ForEachBackend(t, testUserBulk) }

func testUserBulk(t *testing.T) {
	s := startServer(t)
	c := s.newCorporate(t, "Bulk")
	before := s.newUser(t, c, "bulk-0")

	items := make([]any, 1000)
	for i := range items {
		items[i] = map[string]string{"uniqueIdSha": fmt.Sprintf("bulk-%d", i)}
	}
	items[1] = map[string]string{"uniqueIdSha": "bulk-1", "platform": "ios", "deviceName": "phone"}
	invalid := map[int]struct{ field, message string }{
		10: {"users[10].uniqueIdSha", "uniqueIdSha can not be null or empty"},
		20: {"users[20]", "users[20] must be an object"},
		30: {"users[30].platform", "platform must be a string"},
		40: {"users[40].uniqueIdSha", "uniqueIdSha is longer than 255 characters"},
	}
	items[10] = map[string]string{"uniqueIdSha": "  "}
	items[20] = "bulk-20"
	items[30] = map[string]any{"uniqueIdSha": "bulk-30", "platform": 7}
	items[40] = map[string]string{"uniqueIdSha": strings.Repeat("x", 256)}
	items[999] = map[string]string{"uniqueIdSha": "bulk-500"} // a second time in the batch

	e := s.post(t, "/third_parties/user/bulk", c.auth, c.token, map[string]any{"users": items})
	expect(t, e, 200, 0)
	b := bulkAnswer(t, e)
	if len(b.Results) != 1000 || b.Created != 994 || b.Existing != 2 || b.Failed != 4 {
		t.Fatalf("%d results, created %d, existing %d, failed %d; want 1000, 994, 2, 4", len(b.Results), b.Created, b.Existing, b.Failed)
	}
	for i, r := range b.Results {
		if r.Index != i {
			t.Fatalf("result %d has index %d", i, r.Index)
		}
		if want, bad := invalid[i]; bad {
			if r.Code != 6 || r.Field != want.field || r.Message != want.message || r.VirtualUser != "" || r.Pass != "" || r.PreviouslyRegistered != nil {
				t.Errorf("item %d: %+v, want code 6, field %q, message %q and no user", i, r, want.field, want.message)
			}
			continue
		}
		wantExisting := i == 0 || i == 999
		if r.Code != 0 || r.Message != "Ok" || r.Field != "" || r.PreviouslyRegistered == nil || *r.PreviouslyRegistered != wantExisting ||
			len(r.VirtualUser) != 40 || !strings.HasPrefix(r.Pass, "imbp_") || !strings.HasPrefix(r.APIKey, "imbk_") {
			t.Errorf("item %d: %+v, want a user with previously_registered %v", i, r, wantExisting)
		}
	}
	if r := b.Results[0]; r.VirtualUser != before.idsha || r.Pass != before.pass || r.APIKey != before.apikey {
		t.Errorf("bulk-0 made by user/new: bulk answered %+v, want %+v", r, before)
	}
	if a, z := b.Results[500], b.Results[999]; a.VirtualUser != z.VirtualUser || a.Pass != z.Pass || a.APIKey != z.APIKey {
		t.Errorf("bulk-500 twice: %+v and %+v", a, z)
	}
	// user/new repeats return what the bulk call returned.
	for _, i := range []int{1, 2, 97, 500, 998} {
		r := b.Results[i]
		e := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": fmt.Sprintf("bulk-%d", i)})
		expect(t, e, 200, 0)
		if e.Body["previously_registered"] != true || e.str("virtualUser") != r.VirtualUser || e.str("pass") != r.Pass || e.str("apikey") != r.APIKey {
			t.Errorf("user/new repeat of bulk-%d: %s, want %+v", i, e.Raw, r)
		}
	}
	// The apikey works.
	chat := s.post(t, "/chat/create", c.auth, b.Results[1].APIKey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": b.Results[2].VirtualUser}}})
	expect(t, chat, 200, 0)
	if n := countUsers(t, s.dbSpec, c.id); n != 995 {
		t.Errorf("%d users stored, want 995", n)
	}

	// Refused calls store nothing.
	over := make([]any, 1001)
	for i := range over {
		over[i] = map[string]string{"uniqueIdSha": fmt.Sprintf("over-%d", i)}
	}
	e = s.post(t, "/third_parties/user/bulk", c.auth, c.token, map[string]any{"users": over})
	expect(t, e, 400, 6)
	if e.str("field") != "users" || !strings.Contains(e.Message, "1000") {
		t.Errorf("1,001 users: %s, want field users and a message naming the maximum", e.Raw)
	}
	for _, body := range []string{`{}`, `{"users": null}`, `{"users": []}`, `{"users": {"uniqueIdSha": "x"}}`, `{"users": "x"}`} {
		e := s.post(t, "/third_parties/user/bulk", c.auth, c.token, body)
		expect(t, e, 400, 6)
		if e.str("field") != "users" {
			t.Errorf("%s: field %q, want users", body, e.str("field"))
		}
	}
	some := map[string]any{"users": over[:10]}
	expect(t, s.post(t, "/third_parties/user/bulk", "imba_wrong", c.token, some), 401, 2)
	expect(t, s.post(t, "/third_parties/user/bulk", c.auth, "imbc_wrong", some), 401, 3)
	other := s.newCorporate(t, "Bulk Other")
	expect(t, s.post(t, "/third_parties/user/bulk", c.auth, other.token, some), 401, 3)
	if n := countUsers(t, s.dbSpec, c.id); n != 995 {
		t.Errorf("refused calls: %d users stored, want 995", n)
	}
	if n := countUsers(t, s.dbSpec, other.id); n != 0 {
		t.Errorf("refused calls: the other corporate has %d users", n)
	}
}

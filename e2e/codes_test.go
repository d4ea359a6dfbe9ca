package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// TestCodes walks every row of the code table (docs/api.md).
func TestCodes(t *testing.T) { testkit.ForEachBackend(t, testCodes) }

func testCodes(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	good := map[string]string{"uniqueIdSha": "codes_user"}

	t.Run("UnknownPathIs404Code1", func(t *testing.T) {
		e := s.call(t, "GET", "/nope", nil, "")
		expect(t, e, 404, 1)
		e = s.call(t, "POST", "/third_parties/user/new/extra", map[string]string{"Content-Type": "application/json"}, "{}")
		expect(t, e, 404, 1)
	})
	t.Run("WrongMethodIs405Code1", func(t *testing.T) {
		for _, m := range []string{"GET", "PUT", "DELETE", "PATCH"} {
			e := s.call(t, m, "/token/new", nil, "")
			expect(t, e, 405, 1)
			if e.Header.Get("Allow") != "POST" {
				t.Errorf("%s: Allow = %q", m, e.Header.Get("Allow"))
			}
		}
	})
	t.Run("Code2Authorization", func(t *testing.T) {
		expect(t, s.post(t, "/third_parties/user/new", "", c.token, good), 401, 2)
		expect(t, s.post(t, "/third_parties/user/new", "imba_unknown", c.token, good), 401, 2)
		expect(t, s.post(t, "/third_parties/user/new", c.token, c.token, good), 401, 2) // the wrong secret
		expect(t, s.post(t, "/third_parties/user/new", "Bearer "+c.auth, c.token, good), 200, 0)
		expect(t, s.post(t, "/third_parties/user/new", "bearer  "+c.auth, c.token, good), 200, 0)
	})
	t.Run("Code3CorporateKey", func(t *testing.T) {
		expect(t, s.post(t, "/third_parties/user/new", c.auth, "", good), 401, 3)
		expect(t, s.post(t, "/third_parties/user/new", c.auth, "imbc_unknown", good), 401, 3)
		other := s.newCorporate(t, "Other")
		expect(t, s.post(t, "/third_parties/user/new", c.auth, other.token, good), 401, 3)
		expect(t, s.post(t, "/third_parties/user/new", other.auth, c.token, good), 401, 3)
		// /chat/create takes a user's apikey: one of another corporate is refused.
		theirs := s.newUser(t, other, "their_user")
		mine := s.newUser(t, c, "my_user")
		expect(t, s.post(t, "/chat/create", c.auth, theirs.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": mine.idsha}}}), 401, 3)
		expect(t, s.post(t, "/chat/create", c.auth, c.token, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": mine.idsha}}}), 401, 3)
	})
	t.Run("Code4ContentType", func(t *testing.T) {
		for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "application/jsonx"} {
			e := s.call(t, "POST", "/third_parties/user/new", map[string]string{"Authorization": c.auth, "X-WOOS-KEY": c.token, "Content-Type": ct}, `{"uniqueIdSha":"x"}`)
			expect(t, e, 415, 4)
		}
		e := s.call(t, "POST", "/third_parties/user/new", map[string]string{"Authorization": c.auth, "X-WOOS-KEY": c.token, "Content-Type": "application/json; charset=utf-8"}, `{"uniqueIdSha":"x"}`)
		expect(t, e, 200, 0)
	})
	t.Run("Code5Body", func(t *testing.T) {
		for _, b := range []string{"", "[]", `"x"`, "42", "null", "{", `{"uniqueIdSha":"x"} trailing`, "not json"} {
			e := s.post(t, "/third_parties/user/new", c.auth, c.token, b)
			if e.Status != 400 || e.Code != 5 {
				t.Errorf("body %q: got %d code %d, want 400 code 5", b, e.Status, e.Code)
			}
		}
		big := `{"uniqueIdSha":"x","platform":"` + strings.Repeat("a", 1<<20) + `"}`
		expect(t, s.post(t, "/third_parties/user/new", c.auth, c.token, big), 413, 5)
	})
	t.Run("Code6Parameter", func(t *testing.T) {
		cases := []struct {
			path  string
			body  any
			field string
		}{
			{"/third_parties/user/new", `{}`, "uniqueIdSha"},
			{"/third_parties/user/new", `{"uniqueIdSha":""}`, "uniqueIdSha"},
			{"/third_parties/user/new", `{"uniqueIdSha":"   "}`, "uniqueIdSha"},
			{"/third_parties/user/new", `{"uniqueIdSha":null}`, "uniqueIdSha"},
			{"/third_parties/user/new", `{"uniqueIdSha":12}`, "uniqueIdSha"},
			{"/third_parties/user/new", `{"uniqueIdSha":"` + strings.Repeat("x", 256) + `"}`, "uniqueIdSha"},
			{"/third_parties/user/new", `{"uniqueIdSha":"a","platform":7}`, "platform"},
			{"/third_parties/user/new", `{"uniqueIdSha":"nul\u0000inside"}`, "uniqueIdSha"},
			{"/third_parties/user/new", `{"uniqueIdSha":"a","deviceName":"\u0000"}`, "deviceName"},
			{"/token/new", `{"virtual_user":"u\u0000","bot_idsha":"b","mail":"a@example.com"}`, "virtual_user"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b\u0000","mail":"a@example.com"}`, "bot_idsha"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","mail":"a\u0000@example.com"}`, "mail"},
			{"/token/new", `{"bot_idsha":"b","mail":"a@example.com"}`, "virtual_user"},
			{"/token/new", `{"virtual_user":"u","mail":"a@example.com"}`, "bot_idsha"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b"}`, "mail"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","mail":"not-a-mail"}`, "mail"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","mail":"Ana <ana@example.com>"}`, "mail"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","celullar":"600111222"}`, "celullar"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","cellular":"+1 555"}`, "cellular"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","mail":"a@example.com","max_retries":0}`, "max_retries"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","mail":"a@example.com","max_retries":1.5}`, "max_retries"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","mail":"a@example.com","max_retries":1001}`, "max_retries"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","mail":"a@example.com","date_limit":"31/12/2030"}`, "date_limit"},
			{"/token/new", `{"virtual_user":"u","bot_idsha":"b","mail":"a@example.com","date_limit":"2099-01-01"}`, "date_limit"},
		}
		for _, tc := range cases {
			e := s.post(t, tc.path, c.auth, c.token, tc.body)
			if e.Status != 400 || e.Code != 6 || e.Body["field"] != tc.field {
				t.Errorf("%s %v: got %s, want 400 code 6 field %s", tc.path, tc.body, e.Raw, tc.field)
			}
		}
		// The maximum is named in the message.
		e := s.post(t, "/token/new", c.auth, c.token, `{"virtual_user":"u","bot_idsha":"b","mail":"a@example.com","max_retries":5000}`)
		if !strings.Contains(e.Message, "1000") {
			t.Errorf("message should name the maximum: %s", e.Raw)
		}
		u := s.newUser(t, c, "chatter")
		for _, body := range []string{
			`{"type":"chat","contacts":[{"idsha":"` + u.idsha + `"}]}`, // with oneself
			`{"type":"chat","contacts":[]}`,
			`{"type":"chat","contacts":[{"idsha":"a"},{"idsha":"b"}]}`,
			`{"type":"chat","contacts":[{}]}`,
			`{"type":"chat","contacts":"x"}`,
			`{"type":"group","contacts":[]}`,
			`{"type":"chat","contacts":[{"idsha":"x\u0000"}]}`,
		} {
			e := s.post(t, "/chat/create", c.auth, u.apikey, body)
			if e.Status != 400 || e.Code != 6 || e.Body["field"] != "contacts" {
				t.Errorf("%s: got %s, want 400 code 6 field contacts", body, e.Raw)
			}
		}
		e = s.post(t, "/chat/create", c.auth, u.apikey, `{"type":"channel","contacts":[{"idsha":"x"}]}`)
		if e.Code != 6 || e.Body["field"] != "type" {
			t.Errorf("bad type: %s", e.Raw)
		}
	})
	t.Run("Code7Reference", func(t *testing.T) {
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ref_user", "bot_idsha": "0000", "mail": "a@example.com"})
		expect(t, e, 404, 7)
		if e.Body["field"] != "bot_idsha" {
			t.Errorf("field: %s", e.Raw)
		}
		// Refused means nothing was created: not even the new user.
		if again := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "ref_user"}); again.Body["previously_registered"] != false {
			t.Errorf("a refused /token/new created its user: %s", again.Raw)
		}
		u := s.newUser(t, c, "lonely")
		e = s.post(t, "/chat/create", c.auth, u.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": "ffff"}}})
		expect(t, e, 404, 7)
		e = s.post(t, "/chat/create", c.auth, u.apikey, map[string]any{"type": "group", "contacts": []any{map[string]string{"idsha": c.bot}, map[string]string{"idsha": "ffff"}}})
		expect(t, e, 404, 7)
	})
}

func TestRateLimit(t *testing.T) { testkit.ForEachBackend(t, testRateLimit) }

func testRateLimit(t *testing.T) {
	s := startServer(t, "--rate-limit", "1", "--rate-burst", "3")
	c := s.demo()
	other := s.newCorporate(t, "Neighbour")
	body := map[string]string{"uniqueIdSha": "r"}
	for i := range 3 {
		expect(t, s.post(t, "/third_parties/user/new", c.auth, c.token, body), 200, 0)
		_ = i
	}
	e := s.post(t, "/third_parties/user/new", c.auth, c.token, body)
	expect(t, e, 429, 8)
	if n, err := strconv.Atoi(e.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After = %q", e.Header.Get("Retry-After"))
	}
	// The limit is per corporate: another one is not held back.
	expect(t, s.post(t, "/third_parties/user/new", other.auth, other.token, body), 200, 0)
	// Rate limiting comes after authentication: a stranger learns nothing.
	expect(t, s.post(t, "/third_parties/user/new", "imba_x", c.token, body), 401, 2)

	// The bucket is described on every answer.
	e = s.post(t, "/third_parties/user/new", other.auth, other.token, body)
	if e.Header.Get("X-RateLimit-Limit") != "3" || e.Header.Get("X-RateLimit-Remaining") != "1" || e.Header.Get("X-RateLimit-Reset") == "" {
		t.Errorf("X-RateLimit-* = %q %q %q, want limit 3, 1 remaining, a reset", e.Header.Get("X-RateLimit-Limit"), e.Header.Get("X-RateLimit-Remaining"), e.Header.Get("X-RateLimit-Reset"))
	}

	// A corporate's own limit, set while the server runs, applies at once,
	// and "default" gives it back the server's.
	if _, err := s.imbee("corporate", "update", "--id", fmt.Sprint(other.id), "--rate-limit", "1", "--rate-burst", "10"); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if e := s.post(t, "/third_parties/user/new", other.auth, other.token, body); e.Code != 0 {
			t.Fatalf("request %d under the raised burst: %s", i, e.Raw)
		}
	}
	if _, err := s.imbee("corporate", "update", "--id", fmt.Sprint(other.id), "--rate-limit", "default"); err != nil {
		t.Fatal(err)
	}
	// A changed limit starts with a full bucket of its size: 3 again.
	for range 3 {
		e = s.post(t, "/third_parties/user/new", other.auth, other.token, body)
		expect(t, e, 200, 0)
	}
	if e.Header.Get("X-RateLimit-Limit") != "3" {
		t.Errorf("after \"default\": X-RateLimit-Limit %q, want the server's 3", e.Header.Get("X-RateLimit-Limit"))
	}
	expect(t, s.post(t, "/third_parties/user/new", other.auth, other.token, body), 429, 8)
}

// TestProbeLimit: one address trying unknown link tokens is slowed down
// with 429 pages; real links from other addresses are not affected (all
// requests here share one address, so the real link is tried first).
func TestProbeLimit(t *testing.T) {
	s := startServer(t, "--probe-limit", "0.5", "--probe-burst", "3")
	c := s.demo()
	e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com"})
	expect(t, e, 200, 0)
	get := func(url string) *http.Response {
		t.Helper()
		resp, err := (&http.Client{Transport: validated(t, http.DefaultTransport)}).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get(e.str("url")); r.StatusCode != 200 {
		t.Fatalf("real link: %d", r.StatusCode)
	}
	for i := range 3 {
		if r := get(fmt.Sprintf("%s/l/imbl_guess%d", s.URL, i)); r.StatusCode != 404 {
			t.Fatalf("guess %d: %d, want 404", i, r.StatusCode)
		}
	}
	r := get(s.URL + "/l/imbl_guess4")
	if r.StatusCode != 429 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after the burst: %d Retry-After %q, want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	// The API is not affected.
	expect(t, s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "x"}), 200, 0)
	time.Sleep(2100 * time.Millisecond) // one token back at 0.5/s
	if r := get(e.str("url")); r.StatusCode != 200 {
		t.Errorf("after waiting: %d, want the page again", r.StatusCode)
	}
}

// TestCheckOrder: when several checks fail, the first in the spec's order answers.
func TestCheckOrder(t *testing.T) { testkit.ForEachBackend(t, testCheckOrder) }

func testCheckOrder(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	h := func(auth, key, ct string) map[string]string {
		return map[string]string{"Authorization": auth, "X-WOOS-KEY": key, "Content-Type": ct}
	}
	cases := []struct {
		name         string
		method, path string
		headers      map[string]string
		body         string
		status, code int
	}{
		{"route before auth", "POST", "/nowhere", h("", "", "text/plain"), "x", 404, 1},
		{"method before auth", "GET", "/chat/create", h("", "", "text/plain"), "x", 405, 1},
		{"auth before key", "POST", "/token/new", h("bad", "bad", "text/plain"), "x", 401, 2},
		{"key before content type", "POST", "/token/new", h(c.auth, "bad", "text/plain"), "x", 401, 3},
		{"content type before body", "POST", "/token/new", h(c.auth, c.token, "text/plain"), "x", 415, 4},
		{"body before parameters", "POST", "/token/new", h(c.auth, c.token, "application/json"), "[1]", 400, 5},
		{"parameters before references", "POST", "/token/new", h(c.auth, c.token, "application/json"), `{"virtual_user":"u","bot_idsha":"nope"}`, 400, 6},
	}
	// The same order on a repeat, which is answered from the credential
	// check's own read.
	ana, bea := s.newUser(t, c, "ana"), s.newUser(t, c, "bea")
	chat := fmt.Sprintf(`{"type":"chat","contacts":[{"idsha":%q}]}`, bea.idsha)
	expect(t, s.call(t, "POST", "/chat/create", h(c.auth, ana.apikey, "application/json"), chat), 200, 0)
	cases = append(cases, []struct {
		name         string
		method, path string
		headers      map[string]string
		body         string
		status, code int
	}{
		{"repeat: auth first", "POST", "/third_parties/user/new", h("bad", c.token, "application/json"), `{"uniqueIdSha":"ana"}`, 401, 2},
		{"repeat: key", "POST", "/third_parties/user/new", h(c.auth, ana.apikey, "application/json"), `{"uniqueIdSha":"ana"}`, 401, 3},
		{"repeat: auth before body", "POST", "/third_parties/user/new", h("bad", c.token, "application/json"), `{"uniqueIdSha":`, 401, 2},
		{"repeat: parameters", "POST", "/third_parties/user/new", h(c.auth, c.token, "application/json"), `{"uniqueIdSha":"ana","platform":7}`, 400, 6},
		{"chat repeat: auth first", "POST", "/chat/create", h("bad", ana.apikey, "application/json"), chat, 401, 2},
		{"chat repeat: key", "POST", "/chat/create", h(c.auth, c.token, "application/json"), chat, 401, 3},
		{"chat repeat: a chat with oneself is still refused", "POST", "/chat/create", h(c.auth, bea.apikey, "application/json"), fmt.Sprintf(`{"type":"chat","contacts":[{"idsha":%q}]}`, bea.idsha), 400, 6},
		{"chat repeat: content type", "POST", "/chat/create", h(c.auth, ana.apikey, "text/plain"), chat, 415, 4},
	}...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, s.call(t, tc.method, tc.path, tc.headers, tc.body), tc.status, tc.code)
		})
	}
}

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// These tests play visitors from the open internet: another site's page,
// a chat session that floods, a token prober, a client lying about its
// address, a credential guesser, a leaked apikey, and an integrator whose
// input spells one address many ways.

// pageClient is a browser without the API contract's checks (the pages'
// 403 and 429 are checked here by hand), that keeps cookies and does not
// follow redirects; local, when set, is the address it connects from.
func pageClient(t testing.TB, local string) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if local != "" {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
		tr.DialContext = d.DialContext
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// send makes one request with the given headers and returns the response,
// its body read and closed.
func send(t testing.TB, c *http.Client, method, url string, headers map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// issueLink makes a link to who with uses uses and returns its URL.
func (s *server) issueLink(t testing.TB, c corporate, who string, uses int) string {
	t.Helper()
	e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": who, "bot_idsha": c.bot, "mail": who + "@example.com", "max_retries": uses})
	expect(t, e, 200, 0)
	return e.str("url")
}

func TestAttackCrossSiteSpend(t *testing.T) { testkit.ForEachBackend(t, testAttackCrossSiteSpend) }

// testAttackCrossSiteSpend: a page on another site submits a link's landing
// form (login CSRF: the victim's browser would end up in the attacker's
// chat). It is refused with a page, spends nothing and sets no cookie;
// the person's own submissions still work.
func testAttackCrossSiteSpend(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	url := s.issueLink(t, c, "victim", 3)
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	with := func(extra map[string]string) map[string]string {
		h := map[string]string{}
		for k, v := range form {
			h[k] = v
		}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}
	for _, attack := range []map[string]string{
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": "https://evil.example"},
		{"Origin": "null"}, // a sandboxed frame, or a data: page
		{"Sec-Fetch-Site": "cross-site", "Origin": s.URL},
	} {
		resp, body := send(t, pageClient(t, ""), "POST", url, with(attack), "")
		if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%v: %d %q, want a 403 page", attack, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if len(resp.Cookies()) != 0 || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("%v: a cookie was set: %q", attack, resp.Header.Values("Set-Cookie"))
		}
		if strings.Contains(body, "/w/") {
			t.Errorf("%v: the refusal leads to a chat: %s", attack, body)
		}
	}
	st := s.post(t, "/token/status", c.auth, c.token, map[string]string{"url": url})
	expect(t, st, 200, 0)
	if st.Body["uses"] != 0.0 || st.Body["uses_left"] != 3.0 || st.Body["state"] != "active" {
		t.Fatalf("after cross-site submissions: %s, want no use spent", st.Raw)
	}
	if atts, _ := st.Body["attempts"].([]any); len(atts) != 0 {
		t.Errorf("refused submissions reached the trail as spends: %v", atts)
	}

	// The person's own: the form on the page (same-origin), the link typed
	// or opened from a mail app (none), an old browser or script (neither
	// header): each spends one use and opens the chat.
	for _, own := range []map[string]string{
		{"Sec-Fetch-Site": "same-origin", "Origin": s.URL},
		{"Sec-Fetch-Site": "none"},
		{},
	} {
		resp, _ := send(t, pageClient(t, ""), "POST", url, with(own), "")
		if resp.StatusCode != 303 || len(resp.Cookies()) != 1 {
			t.Fatalf("%v: %d with %d cookies, want 303 and the session cookie", own, resp.StatusCode, len(resp.Cookies()))
		}
	}
	st = s.post(t, "/token/status", c.auth, c.token, map[string]string{"url": url})
	if st.Body["uses"] != 3.0 || st.Body["state"] != "used_up" {
		t.Errorf("after three own submissions: %s", st.Raw)
	}
}

// openChat spends a link in a fresh browser and returns it and the chat's URL.
func openChat(t testing.TB, s *server, url string) (*http.Client, string) {
	t.Helper()
	b := pageClient(t, "")
	resp, _ := send(t, b, "POST", url, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "")
	if resp.StatusCode != 303 {
		t.Fatalf("spend: %d", resp.StatusCode)
	}
	return b, s.URL + resp.Header.Get("Location")
}

func TestAttackWebSendBurst(t *testing.T) { testkit.ForEachBackend(t, testAttackWebSendBurst) }

// testAttackWebSendBurst: one web session sends 60 messages at once. The
// first 20 (the burst) are stored and forwarded, then 429 with Retry-After;
// what is refused is not stored.
func testAttackWebSendBurst(t *testing.T) {
	s := startServer(t, "--web-send-limit", "1", "--web-send-burst", "20")
	c := s.demo()
	b, chat := openChat(t, s, s.issueLink(t, c, "flooder", 1))
	asJSON := map[string]string{"Content-Type": "application/json"}
	start := time.Now()
	accepted, refused := 0, 0
	for i := range 60 {
		resp, body := send(t, b, "POST", chat+"/messages", asJSON, fmt.Sprintf(`{"text":"spam %d","clientMsgId":"f%d"}`, i, i))
		switch resp.StatusCode {
		case 200:
			accepted++
		case 429:
			refused++
			if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
				t.Fatalf("429 without Retry-After: %q", resp.Header.Get("Retry-After"))
			}
			if !strings.Contains(body, `"error"`) {
				t.Errorf("429 body %q", body)
			}
		default:
			t.Fatalf("message %d: %d %s", i, resp.StatusCode, body)
		}
		if i < 20 && resp.StatusCode != 200 {
			t.Fatalf("message %d of the burst refused", i)
		}
	}
	// 20 at once, and one a second after that while the flood lasted.
	most := 20 + int(time.Since(start).Seconds()) + 1
	if accepted < 20 || accepted > most || refused == 0 {
		t.Fatalf("accepted %d, refused %d in %v: want 20 (at most %d), the rest refused", accepted, refused, time.Since(start), most)
	}
	resp, body := send(t, b, "GET", chat+"/messages", nil, "")
	if resp.StatusCode != 200 {
		t.Fatalf("history: %d", resp.StatusCode)
	}
	if n := strings.Count(body, `"spam `); n != accepted {
		t.Errorf("history holds %d of the flood, %d were accepted", n, accepted)
	}
}

func TestAttackProbeFlood(t *testing.T) { testkit.ForEachBackend(t, testAttackProbeFlood) }

// testAttackProbeFlood: one address (behind the reverse proxy: every
// visitor) tries unknown tokens until it is limited; a real link from it
// still opens, and spends, while unknown tokens stay refused.
func testAttackProbeFlood(t *testing.T) {
	s := startServer(t, "--probe-limit", "0.01", "--probe-burst", "5")
	c := s.demo()
	url := s.issueLink(t, c, "real", 2)
	b := pageClient(t, "")
	limited := false
	for i := range 30 {
		resp, _ := send(t, b, "GET", fmt.Sprintf("%s/l/imbl_guess%d", s.URL, i), nil, "")
		switch {
		case resp.StatusCode == 429 && resp.Header.Get("Retry-After") != "":
			limited = true
		case resp.StatusCode != 404:
			t.Fatalf("guess %d: %d", i, resp.StatusCode)
		case i >= 5:
			t.Fatalf("guess %d past the burst of 5: 404, want 429", i)
		}
	}
	if !limited {
		t.Fatal("the flood was never limited")
	}
	if resp, _ := send(t, b, "GET", url, nil, ""); resp.StatusCode != 200 {
		t.Fatalf("real link after the flood: %d, want the landing page", resp.StatusCode)
	}
	if resp, _ := send(t, b, "POST", url, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, ""); resp.StatusCode != 303 {
		t.Fatalf("spending the real link after the flood: %d, want 303", resp.StatusCode)
	}
	if resp, _ := send(t, b, "GET", s.URL+"/l/imbl_guess_again", nil, ""); resp.StatusCode != 429 {
		t.Errorf("an unknown token after the real link: %d, want 429", resp.StatusCode)
	}
}

// wrongAuth sends a call with wrong credentials from client, with the
// given X-Forwarded-For (none when empty).
func wrongAuth(t testing.TB, s *server, client *http.Client, xff string) envelope {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json", "Authorization": "imba_guess", "X-WOOS-KEY": "imbc_guess"}
	if xff != "" {
		h["X-Forwarded-For"] = xff
	}
	return decodeEnvelope(t, client, "POST", s.URL+"/token/status", h, `{"url":"x"}`)
}

// goodAuth is a correct /token/status from client.
func goodAuth(t testing.TB, s *server, client *http.Client, c corporate, xff string) envelope {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json", "Authorization": c.auth, "X-WOOS-KEY": c.token}
	if xff != "" {
		h["X-Forwarded-For"] = xff
	}
	return decodeEnvelope(t, client, "POST", s.URL+"/third_parties/user/new", h, `{"uniqueIdSha":"someone"}`)
}

func decodeEnvelope(t testing.TB, client *http.Client, method, url string, h map[string]string, body string) envelope {
	t.Helper()
	resp, raw := send(t, client, method, url, h, body)
	e := envelope{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if !envelopeShape.MatchString(raw) {
		t.Fatalf("not the envelope: %d %q", resp.StatusCode, raw)
	}
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAttackAuthFailureFlood(t *testing.T) { testkit.ForEachBackend(t, testAttackAuthFailureFlood) }

// testAttackAuthFailureFlood: one address guesses credentials. Past the
// burst it is answered 429 code 8 before any lookup, even with a right
// credential; wrong apikeys count too; another address is not affected.
func testAttackAuthFailureFlood(t *testing.T) {
	s := startServer(t, "--auth-fail-limit", "0.01", "--auth-fail-burst", "5")
	c := s.demo()
	u := s.newUser(t, c, "ana")
	attacker := pageClient(t, "127.0.0.1")
	for i := range 4 {
		expect(t, wrongAuth(t, s, attacker, ""), 401, 2)
		_ = i
	}
	// A wrong apikey on a user-level call is a failure too (code 3).
	e := decodeEnvelope(t, attacker, "POST", s.URL+"/chat/list", map[string]string{"Content-Type": "application/json", "Authorization": c.auth, "X-WOOS-KEY": "imbk_guess"}, `{}`)
	expect(t, e, 401, 3)
	e = wrongAuth(t, s, attacker, "")
	expect(t, e, 429, 8)
	if n, err := strconv.Atoi(e.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Errorf("Retry-After %q", e.Header.Get("Retry-After"))
	}
	// Refused before the lookup: a right credential from there waits too
	// (else the answer would tell a guess that hit), and so does the socket.
	expect(t, goodAuth(t, s, attacker, c, ""), 429, 8)
	e = decodeEnvelope(t, attacker, "GET", s.URL+"/chat/socket?conversationId=x", map[string]string{"Authorization": c.auth, "X-WOOS-KEY": u.apikey}, "")
	expect(t, e, 429, 8)

	// The integrator, from another address, is not held back.
	integrator := pageClient(t, "127.0.0.2")
	expect(t, goodAuth(t, s, integrator, c, ""), 200, 0)
	expect(t, wrongAuth(t, s, integrator, ""), 401, 2)
	// The refusals are in the access log, with the client address.
	if !strings.Contains(s.logs.String(), `"client":"127.0.0.1"`) || !strings.Contains(s.logs.String(), `"client":"127.0.0.2"`) {
		t.Errorf("access log lacks the client addresses")
	}
}

func TestAttackForwardedFor(t *testing.T) { testkit.ForEachBackend(t, testAttackForwardedFor) }

// testAttackForwardedFor: X-Forwarded-For is believed only from a trusted
// proxy. From anyone else a different forged address on each request does
// not earn a new bucket; through the trusted proxy, the limit keys on the
// forwarded client, and a forged left part does not change who that is.
func testAttackForwardedFor(t *testing.T) {
	t.Run("UntrustedPeer", func(t *testing.T) {
		s := startServer(t, "--auth-fail-limit", "0.01", "--auth-fail-burst", "3")
		cl := pageClient(t, "")
		for i := range 3 {
			expect(t, wrongAuth(t, s, cl, fmt.Sprintf("198.51.100.%d", i)), 401, 2)
		}
		expect(t, wrongAuth(t, s, cl, "198.51.100.99"), 429, 8)
		if strings.Contains(s.logs.String(), `"client":"198.51.100.`) {
			t.Error("the access log believed a forged X-Forwarded-For")
		}
	})
	t.Run("TrustedProxy", func(t *testing.T) {
		s := startServer(t, "--auth-fail-limit", "0.01", "--auth-fail-burst", "3", "--trusted-proxies", "127.0.0.0/8")
		c := s.demo()
		proxy := pageClient(t, "")
		for range 3 {
			expect(t, wrongAuth(t, s, proxy, "198.51.100.1"), 401, 2)
		}
		expect(t, wrongAuth(t, s, proxy, "198.51.100.1"), 429, 8)
		// The guesser cannot step out of its bucket by forging an entry
		// the proxy appends to.
		expect(t, wrongAuth(t, s, proxy, "203.0.113.50, 198.51.100.1"), 429, 8)
		// Another client behind the same proxy is not held back.
		expect(t, goodAuth(t, s, proxy, c, "198.51.100.2"), 200, 0)
		expect(t, goodAuth(t, s, proxy, c, "198.51.100.1, 198.51.100.2"), 200, 0)
		if !strings.Contains(s.logs.String(), `"client":"198.51.100.2"`) {
			t.Error("the access log does not name the forwarded client")
		}
	})
}

func TestAttackUnauthenticatedBody(t *testing.T) {
	testkit.ForEachBackend(t, testAttackUnauthenticatedBody)
}

// testAttackUnauthenticatedBody: 1 MiB bodies with wrong credentials, not
// JSON or JSON, on a call with the repeat fast path and one without, are
// answered code 2 (the body is not looked at before the credentials; the
// cost is measured by BenchmarkUnauthenticated in internal/api).
func testAttackUnauthenticatedBody(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	notJSON := strings.Repeat("{", 1<<20-1)
	object := `{"uniqueIdSha":"` + strings.Repeat("a", 1<<20-20) + `"}`
	for _, path := range []string{"/third_parties/user/new", "/token/new", "/chat/create"} {
		for name, body := range map[string]string{"not JSON": notJSON, "an object": object} {
			h := map[string]string{"Content-Type": "application/json", "Authorization": "imba_wrong", "X-WOOS-KEY": c.token}
			e := decodeEnvelope(t, pageClient(t, ""), "POST", s.URL+path, h, body)
			if e.Status != 401 || e.Code != 2 {
				t.Errorf("%s, 1 MiB %s, wrong Authorization: %d code %d, want 401 code 2", path, name, e.Status, e.Code)
			}
		}
	}
	// With good credentials the same body is judged: code 5.
	e := decodeEnvelope(t, pageClient(t, ""), "POST", s.URL+"/third_parties/user/new",
		map[string]string{"Content-Type": "application/json", "Authorization": c.auth, "X-WOOS-KEY": c.token}, notJSON)
	expect(t, e, 400, 5)
}

func TestAttackLeakedAPIKey(t *testing.T) { testkit.ForEachBackend(t, testAttackLeakedAPIKey) }

// testAttackLeakedAPIKey: one user's apikey, leaked, hammers the API. It
// gets 429 code 8 once past its share of the corporate's rate, and what it
// is refused does not count against the corporate: the integrator's own
// calls and another user's still succeed.
func testAttackLeakedAPIKey(t *testing.T) {
	s := startServer(t, "--rate-limit", "1", "--rate-burst", "30", "--user-rate-share", "0.1")
	c := s.demo()
	leaked, other := s.newUser(t, c, "leaked"), s.newUser(t, c, "other")
	refused := 0
	for range 100 {
		e := s.post(t, "/chat/list", c.auth, leaked.apikey, map[string]any{})
		switch {
		case e.Code == 8 && e.Status == 429:
			refused++
			if e.Header.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
		case e.Code != 0:
			t.Fatalf("leaked key: %s", e.Raw)
		}
	}
	if refused < 90 {
		t.Fatalf("the leaked key was refused %d times of 100, want all but its share (3 and a refill)", refused)
	}
	for i := range 10 {
		if e := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "fresh"}); e.Code != 0 {
			t.Fatalf("the integrator's call %d after the flood: %s", i, e.Raw)
		}
	}
	expect(t, s.post(t, "/chat/list", c.auth, other.apikey, map[string]any{}), 200, 0)
}

func TestAttackRecipientSpellings(t *testing.T) {
	testkit.ForEachBackend(t, testAttackRecipientSpellings)
}

// testAttackRecipientSpellings: eleven links in an hour to one mailbox (or
// one phone) spelled differently: the eleventh is refused, code 8.
func testAttackRecipientSpellings(t *testing.T) {
	s := startServer(t, "--recipient-limit", "10")
	c := s.demo()
	for _, tc := range []struct {
		field    string
		spelling []string
	}{
		{"mail", []string{"ana@example.com", "Ana@Example.com", "ANA@EXAMPLE.COM", "aNa@eXample.Com"}},
		{"celullar", []string{"+34600111222", "+34 600 11 12 22", "0034600111222", "+34-600-111-222"}},
	} {
		for i := range 11 {
			e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": fmt.Sprintf("%s%d", tc.field, i), "bot_idsha": c.bot, tc.field: tc.spelling[i%len(tc.spelling)]})
			if i < 10 {
				expect(t, e, 200, 0)
				continue
			}
			expect(t, e, 429, 8)
			if e.Header.Get("Retry-After") == "" {
				t.Errorf("%s: 429 without Retry-After", tc.field)
			}
		}
	}
}

package e2e

import (
	"bytes"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// visit opens url as a client with the given user-agent.
func visit(t testing.TB, c *http.Client, method, url, ua string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", ua)
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// attempts polls /token/status until the link's trail has n entries (views
// are recorded in batches, within a second) and returns them.
func (s *server) attempts(t testing.TB, c corporate, url string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e := s.post(t, "/token/status", c.auth, c.token, map[string]string{"url": url})
		expect(t, e, 200, 0)
		raw, _ := e.Body["attempts"].([]any)
		if len(raw) == n {
			out := make([]map[string]any, n)
			for i, a := range raw {
				out[i] = a.(map[string]any)
			}
			return out
		}
		if len(raw) > n || time.Now().After(deadline) {
			t.Fatalf("want %d attempts, have %d: %s", n, len(raw), e.Raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLinkAuditTrail(t *testing.T) { testkit.ForEachBackend(t, testLinkAuditTrail) }

func testLinkAuditTrail(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "audited", "bot_idsha": c.bot, "mail": "audited@example.com", "max_retries": 2})
	expect(t, e, 200, 0)
	url := e.str("url")
	if got := s.attempts(t, c, url, 0); len(got) != 0 {
		t.Fatal("a new link has attempts")
	}

	const (
		scannerUA = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"
		curlUA    = "curl/8.5.0"
		mobileUA  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1"
		desktopUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"
	)
	b := browser(t)
	steps := []struct {
		method, ua string
		status     int
		result     string
		agent      string
	}{
		{"GET", scannerUA, 200, "viewed", "scanner"},
		{"HEAD", curlUA, 200, "viewed", "bot"},
		{"POST", mobileUA, 303, "spent", "mobile"},
		{"POST", desktopUA, 303, "spent", "browser"},
		{"POST", desktopUA, 410, "used_up", "browser"},
		{"GET", "", 410, "used_up", "unknown"},
	}
	for i, st := range steps {
		if got := visit(t, b, st.method, url, st.ua); got != st.status {
			t.Fatalf("step %d: %s answered %d, want %d", i, st.method, got, st.status)
		}
		// Views are written later, in batches: the trail is still in the
		// order of the requests (to the millisecond).
		time.Sleep(3 * time.Millisecond)
	}
	got := s.attempts(t, c, url, len(steps))
	hash := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for i, a := range got {
		want := steps[len(steps)-1-i] // newest first
		if a["method"] != want.method || a["result"] != want.result || a["agent"] != want.agent {
			t.Errorf("attempt %d = %v, want %s %s %s", i, a, want.method, want.result, want.agent)
		}
		if !hash.MatchString(a["client"].(string)) || a["client"] != got[0]["client"] {
			t.Errorf("attempt %d client %v: want one 16-hex hash for this one address", i, a["client"])
		}
		if _, err := time.Parse(time.RFC3339, a["time"].(string)); err != nil {
			t.Errorf("attempt %d time: %v", i, err)
		}
	}
	// The user-agent's text is not stored, only its class.
	for name, data := range s.storedData(t) {
		for _, text := range []string{"iPhone OS 17_0", "ms-office", "curl/8.5.0"} {
			if bytes.Contains(data, []byte(text)) {
				t.Errorf("%s holds the user-agent text %q", name, text)
			}
		}
	}

	// The trail keeps the last 100 attempts.
	for range 120 {
		visit(t, b, "GET", url, desktopUA)
	}
	// The oldest (the six steps, POSTs among them) are gone, once the
	// views, written in batches after their answers, are all in: the
	// trail holds 100 at every moment, so wait for its content.
	deadline := time.Now().Add(10 * time.Second)
	for {
		old := -1
		var kept map[string]any
		for i, a := range s.attempts(t, c, url, 100) {
			if a["method"] != "GET" || a["agent"] != "browser" {
				old, kept = i, a
				break
			}
		}
		if old < 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("trimmed trail keeps an old attempt at %d: %v", old, kept)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

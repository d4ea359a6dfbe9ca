package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// TestServeOneClock: the command's clock is the whole server's. A link is
// issued on the API by its date (its default date_limit is 30 days from
// that day), and once the clock passes its end the API's status, the
// landing page and the store's spend all find it expired, although the
// real time is years before.
func TestServeOneClock(t *testing.T) {
	clock := testkit.NewClock() // 2030-03-14 09:00 UTC
	stdout, serverOut := io.Pipe()
	c := &cli{getenv: func(string) string { return "" }, stdout: serverOut, stderr: io.Discard, now: clock.Now}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		err := c.serve(ctx, []string{"--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(t.TempDir(), "imbee.db"),
			"--sqlite-synchronous", "normal"})
		serverOut.CloseWithError(err)
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})

	// Its stdout up to the address it listens on, after the demo
	// corporate's credentials.
	listening := regexp.MustCompile(`imbee listening on (http://\S+)`)
	var said strings.Builder
	lines := bufio.NewScanner(stdout)
	for !listening.MatchString(said.String()) {
		if !lines.Scan() {
			t.Fatalf("the server did not start (%v); it said:\n%s", lines.Err(), said.String())
		}
		said.WriteString(lines.Text() + "\n")
	}
	go io.Copy(io.Discard, stdout)
	out := said.String()
	base := listening.FindStringSubmatch(out)[1]
	credential := func(name string) string {
		return regexp.MustCompile(name + `:\s+(\S+)`).FindStringSubmatch(out)[1]
	}
	auth, token, bot := credential("Authorization"), credential("X-WOOS-KEY"), credential("bot_idsha")

	call := func(path, body string) map[string]any {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), "POST", base+path, strings.NewReader(body))
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-WOOS-KEY", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var env struct {
			Code int            `json:"code"`
			Body map[string]any `json:"body"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&env); err != nil || env.Code != 0 {
			t.Fatalf("%s: code %d, %v", path, env.Code, err)
		}
		return env.Body
	}
	link := call("/token/new", `{"virtual_user": "ana", "bot_idsha": "`+bot+`", "mail": "ana@example.com"}`)
	if link["date_limit"] != "2030-04-13" {
		t.Fatalf("date_limit %v, want 2030-04-13: 30 days from the clock's day", link["date_limit"])
	}
	url := link["url"].(string)

	clock.Advance(31 * 24 * time.Hour) // 2030-04-14 09:00: the link ended at midnight
	if st := call("/token/status", `{"url": "`+url+`"}`); st["state"] != "expired" {
		t.Errorf("API: state %v, want expired", st["state"])
	}
	for _, method := range []string{"GET", "POST"} { // the page's check, the store's spend
		req, _ := http.NewRequestWithContext(t.Context(), method, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusGone || !strings.Contains(string(page), "This link has expired") {
			t.Errorf("%s %s: %d, want 410 with the link expired", method, url, resp.StatusCode)
		}
	}
}

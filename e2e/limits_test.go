package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// TestInstallationRateLimit: a hostile tenant limited to 20 requests a
// second, burst 20, floods two imbee servers on one PostgreSQL database
// for 3 s, spreading its requests over both. The installation accepts
// what one server would (the burst and 20 a second, within 30 %), not
// twice that; so does a user's own share of the limit, on user-level
// calls.
func TestInstallationRateLimit(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		d := newDB(t)
		a := startProcess(t, d, "--user-rate-share", "0.5")
		b := startProcess(t, d, "--user-rate-share", "0.5")
		servers := []*server{a, b}
		if a.auth == "" {
			a, b = b, a
		}
		c, other := a.demo(), a.newCorporate(t, "Neighbour")
		u := a.newUser(t, other, "flooder")
		for _, id := range []int64{c.id, other.id} {
			if out, err := a.imbee("corporate", "update", "--id", fmt.Sprint(id), "--rate-limit", "20", "--rate-burst", "20"); err != nil {
				t.Fatal(out, err)
			}
		}

		t.Run("corporate", func(t *testing.T) {
			accepted, took := flood(t, servers, 3*time.Second, "/third_parties/user/new", c.auth, c.token, `{"uniqueIdSha":"flood"}`)
			checkRate(t, accepted, 20+20*took.Seconds())
		})
		t.Run("user", func(t *testing.T) {
			// Its share: half the corporate's 20/s and burst, 10/s and 10.
			accepted, took := flood(t, servers, 3*time.Second, "/chat/list", other.auth, u.apikey, `{}`)
			checkRate(t, accepted, 10+10*took.Seconds())
		})
	})
}

func TestRecipientLimitConcurrent(t *testing.T) {
	testkit.ForEachBackend(t, testRecipientLimitConcurrent)
}

// testRecipientLimitConcurrent: 20 links at once to one mailbox with a
// limit of 10 an hour, spread over two servers on PostgreSQL: exactly 10
// deliveries are queued, and the other 10 answered 429 code 8.
func testRecipientLimitConcurrent(t *testing.T) {
	d := newDB(t)
	var servers []*server
	if d.postgres() {
		servers = []*server{startProcess(t, d, "--recipient-limit", "10"), startProcess(t, d, "--recipient-limit", "10")}
		if servers[0].auth == "" {
			servers[0], servers[1] = servers[1], servers[0]
		}
	} else {
		servers = []*server{startServerOn(t, d, "--recipient-limit", "10")}
	}
	c := servers[0].demo()
	codes := concurrently(20, func(i int) error {
		body := fmt.Sprintf(`{"virtual_user":"u%d","bot_idsha":%q,"mail":"ana@example.com"}`, i, c.bot)
		code, err := limitedCall(servers[i%len(servers)].URL+"/token/new", c.auth, c.token, body)
		if err == nil && code != 0 {
			err = errRefused
		}
		return err
	})
	refused := 0
	for _, err := range codes {
		switch err {
		case nil:
		case errRefused:
			refused++
		default:
			t.Fatal(err)
		}
	}
	var queued int
	if err := d.openDB(t, true).QueryRow(`SELECT count(*) FROM deliveries`).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if queued != 10 || refused != 10 {
		t.Errorf("%d deliveries queued and %d links refused, want 10 and 10", queued, refused)
	}
}

var errRefused = errors.New("refused")

// checkRate fails unless accepted is within 30 % of want.
func checkRate(t *testing.T, accepted int, want float64) {
	t.Helper()
	t.Logf("%d requests accepted, one server would accept %.0f", accepted, want)
	if float64(accepted) > 1.3*want || float64(accepted) < 0.7*want {
		t.Errorf("%d requests accepted across the servers, want %.0f within 30 %%", accepted, want)
	}
}

// flood sends the request from 8 clients at once, turn about to each
// server, for d; it returns how many were accepted (code 0) and how long
// the flood took, from its first request sent to its last answered. Every
// other answer must be the rate limit's: 429, code 8, with Retry-After.
func flood(t *testing.T, servers []*server, d time.Duration, path, auth, key, body string) (accepted int, took time.Duration) {
	t.Helper()
	var mu sync.Mutex
	var failure error
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 8 {
		wg.Go(func() {
			for i := w; time.Since(start) < d; i++ {
				code, err := limitedCall(servers[i%len(servers)].URL+path, auth, key, body)
				mu.Lock()
				if err != nil && failure == nil {
					failure = err
				}
				if code == 0 {
					accepted++
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	took = time.Since(start)
	if failure != nil {
		t.Fatal(failure)
	}
	return accepted, took
}

// limitedCall posts body and returns the envelope's code; an answer that
// is neither a success nor the rate limit's is an error.
func limitedCall(url, auth, key, body string) (int, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	req.Header.Set("X-WOOS-KEY", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return 0, fmt.Errorf("%s: %d %q", url, resp.StatusCode, raw)
	}
	switch {
	case resp.StatusCode == 200 && e.Code == 0:
	case resp.StatusCode == 429 && e.Code == 8 && resp.Header.Get("Retry-After") != "":
	default:
		return 0, fmt.Errorf("%s: %d %q", url, resp.StatusCode, raw)
	}
	return e.Code, nil
}

// TestFailureLimitsAcrossServers: a hostile client spreads its tries over
// two imbee servers on one PostgreSQL database. The limits on failures
// hold for the installation, not for each server: wrong passes for one
// user (the right one refused too past the limit, on either server),
// unknown link tokens, and failed API authentications (where each server
// lets at most one more through, the one that tells it of the refusal).
// Sign-ins that succeed give their try back, on either server.
func TestFailureLimitsAcrossServers(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		d := newDB(t)
		flags := []string{"--web-signin-limit", "0.001", "--web-signin-burst", "3",
			"--probe-limit", "0.001", "--probe-burst", "4", "--auth-fail-limit", "0.001", "--auth-fail-burst", "5"}
		a := startProcess(t, d, flags...)
		b := startProcess(t, d, flags...)
		if a.auth == "" {
			a, b = b, a
		}
		servers := []*server{a, b}
		c := a.demo()
		pia, bea := a.newUser(t, c, "pia"), a.newUser(t, c, "bea")

		signIn := func(s *server, u user, pass string) int {
			t.Helper()
			req, _ := http.NewRequest("POST", s.URL+"/app", strings.NewReader(neturl.Values{"virtualUser": {u.idsha}, "pass": {pass}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := browser(t).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for i := range 6 {
			if st := signIn(servers[i%2], bea, bea.pass); st != http.StatusSeeOther {
				t.Fatalf("right pass %d of 6 (a burst of 3, each given back): HTTP %d, want 303", i+1, st)
			}
		}
		var got []int
		for i := range 6 {
			got = append(got, signIn(servers[i%2], pia, "wrong"))
		}
		if want := []int{401, 401, 401, 429, 429, 429}; !slices.Equal(got, want) {
			t.Errorf("wrong passes spread over two servers: %v, want %v (a burst of 3 for the installation)", got, want)
		}
		for _, s := range servers {
			if st := signIn(s, pia, pia.pass); st != http.StatusTooManyRequests {
				t.Errorf("the right pass past the limit: HTTP %d, want 429", st)
			}
		}

		got = nil
		for i := range 8 {
			st, _, _ := page(t, browser(t), "GET", fmt.Sprintf("%s/l/imbl_guess%d", servers[i%2].URL, i))
			got = append(got, st)
		}
		if want := []int{404, 404, 404, 404, 429, 429, 429, 429}; !slices.Equal(got, want) {
			t.Errorf("unknown link tokens spread over two servers: %v, want %v (a burst of 4 for the installation)", got, want)
		}

		failed := 0
		for i := range 12 {
			e := servers[i%2].post(t, "/third_parties/user/new", "imba_wrong", c.token, map[string]string{"uniqueIdSha": "x"})
			switch e.Status {
			case 401:
				failed++
			case 429:
			default:
				t.Fatalf("a wrong Authorization: HTTP %d", e.Status)
			}
		}
		if failed < 5 || failed > 5+len(servers) {
			t.Errorf("%d failed authentications answered over two servers, want 5 (the burst) to %d", failed, 5+len(servers))
		}
		for _, s := range servers {
			expect(t, s.post(t, "/third_parties/user/new", "imba_wrong", c.token, map[string]string{"uniqueIdSha": "x"}), 429, 8)
		}
	})
}

package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

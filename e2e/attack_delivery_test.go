package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imbee/imbee/client"
)

// strictWebhooks is the production default, after the harness's
// --allow-private-webhooks (the last flag wins).
const strictWebhooks = "--allow-private-webhooks=false"

// connCounter is a loopback listener that counts the connections it gets
// and answers 200 to anything: a local service a webhook must not reach.
type connCounter struct {
	*httptest.Server
	conns atomic.Int64
}

func newConnCounter(t testing.TB) *connCounter {
	c := &connCounter{}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	c.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			c.conns.Add(1)
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

// TestAttackWebhookLocalTarget: a tenant cannot point its bot's webhook at
// the server's own machine or network. Address literals in every spelling
// and localhost are refused when set (code 6, field url), through the API
// and the CLI; a name that resolves to loopback when the event is sent
// (DNS rebinding: here the bot's URL is changed under the server, as a
// name's records would be) is refused when dialled, before connecting, and
// the attempt is recorded failed.
func TestAttackWebhookLocalTarget(t *testing.T) { forEachBackend(t, testAttackWebhookLocalTarget) }

func testAttackWebhookLocalTarget(t *testing.T) {
	t.Parallel()
	s := startServer(t, append(fastWebhooks, strictWebhooks)...)
	c := s.demo()
	local := newConnCounter(t)
	port := local.Listener.Addr().(*net.TCPAddr).Port
	for _, bad := range []string{
		local.URL + "/hook",
		fmt.Sprintf("http://localhost:%d/hook", port),
		fmt.Sprintf("http://LocalHost.:%d/hook", port),
		fmt.Sprintf("http://api.localhost:%d/hook", port),
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/hook", port),
		fmt.Sprintf("http://[::ffff:7f00:1]:%d/hook", port),
		fmt.Sprintf("http://[64:ff9b::7f00:1]:%d/hook", port),
		fmt.Sprintf("http://[::1]:%d/hook", port),
		fmt.Sprintf("http://127.1:%d/hook", port),
		fmt.Sprintf("http://2130706433:%d/hook", port),
		"http://0.0.0.0/hook", "http://[::]/hook",
		"http://169.254.169.254/latest/meta-data/", "http://[fe80::1%25eth0]/",
		"http://10.0.0.1/hook", "https://172.16.5.4/hook", "http://192.168.1.1/hook", "http://100.64.0.1/hook", "http://[fd00::1]/hook",
		"http://224.0.0.1/hook", "http://255.255.255.255/hook",
	} {
		e := s.post(t, "/bot/webhook", c.auth, c.token, map[string]string{"bot_idsha": c.bot, "url": bad})
		if e.Status != 400 || e.Code != 6 || e.Body["field"] != "url" {
			t.Errorf("/bot/webhook %q: HTTP %d code %d body %v, want 400, code 6, field url", bad, e.Status, e.Code, e.Body)
		}
		if out, err := s.imbee("bot", "webhook", "--corporate", "1", "--bot", c.bot, "--url", bad); err == nil || !strings.Contains(err.Error(), "--url") {
			t.Errorf("imbee bot webhook --url %q: %v %s, want refused", bad, err, out)
		}
	}

	// A public-looking name is accepted (not resolved when set); then it
	// "rebinds" to loopback.
	e := s.post(t, "/bot/webhook", c.auth, c.token, map[string]string{"bot_idsha": c.bot, "url": "https://hooks.example.com/hook"})
	expect(t, e, 200, 0)
	rebound := fmt.Sprintf("http://localhost:%d/hook", port)
	if _, err := s.openDB(t, false).Exec(`UPDATE bots SET webhook_url = $1 WHERE idsha = $2`, rebound, c.bot); err != nil {
		t.Fatal(err)
	}
	b := botChat{c: c}
	b.u = s.newUser(t, c, "ana")
	b.conv = s.createChat(t, c, b.u, client.Contact{IDSha: c.bot})
	id := b.say(t, s, "hola")
	rows := waitRows(t, s, "dead", []string{id}, 10*time.Second)
	if msg := fmt.Sprint(rows[0]["last_error"]); !strings.Contains(msg, "prohibited IP address") {
		t.Errorf("last_error %q: want the refused address said", msg)
	}
	if n := local.conns.Load(); n != 0 {
		t.Errorf("the local service got %d connections", n)
	}
}

// TestAttackWebhookRedirect: a webhook that answers with a redirect to
// another (internal) address is not followed: the attempt fails with the
// 3xx and the other address is never asked.
func TestAttackWebhookRedirect(t *testing.T) { forEachBackend(t, testAttackWebhookRedirect) }

func testAttackWebhookRedirect(t *testing.T) {
	t.Parallel()
	// Private targets allowed: both servers are on loopback, so only the
	// refusal to follow redirects can stop the second request.
	s := startServer(t, fastWebhooks...)
	internal := newConnCounter(t)
	b := newBotChat(t, s)
	b.recv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.recv.serve(&redirectTo{ResponseWriter: w, url: internal.URL + "/admin"}, r)
	})
	b.recv.setAnswer(func(*hookHit, int) hookAnswer { return hookAnswer{status: http.StatusFound} })
	id := b.say(t, s, "follow me")
	rows := waitRows(t, s, "dead", []string{id}, 10*time.Second)
	if msg := fmt.Sprint(rows[0]["last_error"]); !strings.Contains(msg, "302") {
		t.Errorf("last_error %q: want the 302", msg)
	}
	if hits := b.recv.got(); len(hits) != 1 {
		t.Errorf("%d requests to the webhook, want 1: %s", len(hits), describeHits(hits))
	}
	if n := internal.conns.Load(); n != 0 {
		t.Errorf("the redirect was followed: the internal service got %d connections", n)
	}
}

// redirectTo adds a Location to whatever the receiver answers.
type redirectTo struct {
	http.ResponseWriter
	url string
}

func (r *redirectTo) WriteHeader(status int) {
	r.Header().Set("Location", r.url)
	r.ResponseWriter.WriteHeader(status)
}

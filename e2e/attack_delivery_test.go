package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/delivery"
	"github.com/imbee/imbee/internal/testkit"
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
func TestAttackWebhookLocalTarget(t *testing.T) {
	testkit.ForEachBackend(t, testAttackWebhookLocalTarget)
}

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
func TestAttackWebhookRedirect(t *testing.T) { testkit.ForEachBackend(t, testAttackWebhookRedirect) }

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

// smsGateway is an SMS provider of the "webhook" kind (a JSON POST) at a
// secret path and query: it answers 200, except for the numbers told to
// fail (with a status) or to hang (it holds the request until the test
// ends, as a provider that accepts connections and never answers).
type smsGateway struct {
	*httptest.Server
	path string // the endpoint, path and query, that only the operator knows

	mu     sync.Mutex
	fail   map[string]int // number → status
	hang   map[string]bool
	sent   map[string]int // number → requests answered 200
	held   atomic.Int64   // requests being held
	closed chan struct{}
	once   sync.Once
}

// release answers the held requests (they fail) and holds no more.
func (g *smsGateway) release() { g.once.Do(func() { close(g.closed) }) }

func newSMSGateway(t testing.TB) *smsGateway {
	g := &smsGateway{path: "/hooks/SECRETPATH-7f3a?key=SECRETKEY-91c2", fail: map[string]int{}, hang: map[string]bool{}, sent: map[string]int{}, closed: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(func() {
		g.release() // before Close, which waits for held requests
		g.Close()
	})
	return g
}

func (g *smsGateway) serve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		To string `json:"to"`
	}
	json.NewDecoder(r.Body).Decode(&body)
	g.mu.Lock()
	status, hang := g.fail[body.To], g.hang[body.To]
	if status == 0 && !hang {
		g.sent[body.To]++
	}
	g.mu.Unlock()
	if hang {
		g.held.Add(1)
		defer g.held.Add(-1)
		select {
		case <-r.Context().Done():
		case <-g.closed:
		}
		return
	}
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	io.WriteString(w, `{"id": "gw-1"}`)
}

func (g *smsGateway) sentTo(number string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sent[number]
}

// flags send SMS through the gateway at base (its URL, or another).
func (g *smsGateway) flags(base string) []string {
	return []string{"--sms-provider", "webhook", "--sms-url", base + g.path, "--sms-token", "gateway-signing-secret", "--sms-from", "Imbee"}
}

// TestAttackProviderDetail: a corporate reading its link's deliveries
// learns why a send failed (refused with the status, could not connect,
// timed out) and nothing of the operator's provider: not its host, port,
// path, query or the words of its errors. The operator's ledger
// (imbee deliveries list) keeps the whole error.
func TestAttackProviderDetail(t *testing.T) { testkit.ForEachBackend(t, testAttackProviderDetail) }

func testAttackProviderDetail(t *testing.T) {
	t.Parallel()
	g := newSMSGateway(t)
	g.fail["+34600000503"] = http.StatusServiceUnavailable
	g.hang["+34600000408"] = true
	down := "http://" + freeLoopbackAddr(t)
	slow := []string{"--delivery-first-retry", "1h", "--delivery-timeout", "1s"}
	for _, tc := range []struct {
		name, base, number, want string
	}{
		{"5xx", g.URL, "+34600000503", "refused by the provider: HTTP 503"},
		{"timeout", g.URL, "+34600000408", "timed out"},
		{"refused connection", down, "+34600000111", "could not connect"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, append(g.flags(tc.base), slow...)...)
			c := s.demo()
			e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "celullar": tc.number})
			expect(t, e, 200, 0)
			d := s.waitDelivery(t, c, e.str("url"), "sms", "failed", 15*time.Second)
			if d["last_error"] != tc.want {
				t.Errorf("last_error %q, want %q", d["last_error"], tc.want)
			}
			raw := s.linkStatus(t, c, e.str("url")).Raw
			for _, secret := range []string{"SECRETPATH", "SECRETKEY", "hooks", strings.TrimPrefix(tc.base, "http://"), "Post ", "dial", "provider answered"} {
				if strings.Contains(raw, secret) {
					t.Errorf("/token/status shows %q: %s", secret, raw)
				}
			}
			out, err := s.imbee("deliveries", "list", "--json")
			if err != nil {
				t.Fatal(err)
			}
			var rows []struct {
				LastError  string `json:"last_error"`
				LastReason string `json:"last_reason"`
			}
			if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
				t.Fatalf("deliveries list --json: %v %s", err, out)
			}
			if rows[0].LastError == "" || rows[0].LastError == tc.want || rows[0].LastReason != tc.want ||
				(tc.name != "5xx" && !strings.Contains(rows[0].LastError, "SECRETPATH")) {
				t.Errorf("the operator's ledger: last_error %q, last_reason %q; want the whole error and %q", rows[0].LastError, rows[0].LastReason, tc.want)
			}
		})
	}
}

// freeLoopbackAddr is a loopback address nothing listens on.
func freeLoopbackAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// tarpit is a webhook endpoint that accepts connections and never answers:
// each holds a sender until its timeout.
type tarpit struct {
	net.Listener
	accepted atomic.Int64
}

func newTarpit(t testing.TB) *tarpit {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tarpit{Listener: ln}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tp.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return tp
}

// tenantChat gives corporate c's bot a webhook at hook (and the secret to
// recv, if any), and opens a chat of a new user with the bot.
func tenantChat(t testing.TB, s *server, c corporate, hook string, recv *hookReceiver) botChat {
	t.Helper()
	b := botChat{c: c, recv: recv}
	e := s.post(t, "/bot/webhook", c.auth, c.token, map[string]string{"bot_idsha": c.bot, "url": hook})
	expect(t, e, 200, 0)
	if recv != nil {
		recv.setSecret(e.str("secret"))
	}
	b.u = s.newUser(t, c, "u-"+c.bot[:8])
	b.conv = s.createChat(t, c, b.u, client.Contact{IDSha: c.bot})
	return b
}

// TestAttackWebhookTarpit: a tenant whose webhook accepts connections and
// never answers, with many events queued, delays another tenant's webhook
// by no more than a few seconds: the workers claim as slots free, the
// tarpit holds at most its share of them, and its host's circuit opens.
func TestAttackWebhookTarpit(t *testing.T) { testkit.ForEachBackend(t, testAttackWebhookTarpit) }

func testAttackWebhookTarpit(t *testing.T) {
	t.Parallel()
	const queued, limit = 40, 5 * time.Second
	s := startServer(t)
	pit := newTarpit(t)
	a := tenantChat(t, s, s.demo(), "http://"+pit.Addr().String()+"/hook", nil)
	for i := range queued {
		a.say(t, s, fmt.Sprintf("a%d", i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for pit.accepted.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if pit.accepted.Load() == 0 {
		t.Fatal("the tarpit was never dialled")
	}
	// Once while A's first sends hang, once after they timed out (A's
	// events failed, its host's circuit open, its retries pending).
	for round, ready := range []func() bool{
		func() bool { return true },
		func() bool { return len(webhookRows(t, s, "failed")) > 0 },
	} {
		for deadline := time.Now().Add(30 * time.Second); !ready(); time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: not ready within 30 s", round)
			}
		}
		recv := newHookReceiver(t)
		b := tenantChat(t, s, s.newCorporate(t, fmt.Sprint("B", round)), recv.URL+"/hook", recv)
		sent := time.Now()
		id := b.say(t, s, "hola")
		hits := b.recv.waitAccepted(t, []string{id}, 40*time.Second)
		took := hits[0].at.Sub(sent)
		t.Logf("round %d: tenant B's event delivered %v after it was sent; the tarpit was dialled %d times", round, took.Round(time.Millisecond), pit.accepted.Load())
		if took > limit {
			t.Errorf("round %d: B's event took %v with A's webhook hanging, want under %v", round, took, limit)
		}
	}
}

// TestAttackHangingRecipients: a tenant whose SMS all hang at the provider
// (it accepts them and never answers), with many queued, delays another
// tenant's SMS by no more than a few seconds: it holds at most its share
// of the workers.
func TestAttackHangingRecipients(t *testing.T) {
	testkit.ForEachBackend(t, testAttackHangingRecipients)
}

func testAttackHangingRecipients(t *testing.T) {
	t.Parallel()
	const queued, limit = 30, 5 * time.Second
	g := newSMSGateway(t)
	s := startServer(t, g.flags(g.URL)...)
	t.Cleanup(g.release) // before the server stops: it waits for its sends
	a := s.demo()
	for i := range queued {
		number := fmt.Sprintf("+346001%05d", i)
		g.mu.Lock()
		g.hang[number] = true
		g.mu.Unlock()
		e := s.post(t, "/token/new", a.auth, a.token, map[string]any{"virtual_user": fmt.Sprint("a", i), "bot_idsha": a.bot, "celullar": number})
		expect(t, e, 200, 0)
	}
	for deadline := time.Now().Add(10 * time.Second); g.held.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("none of A's SMS is being held")
		}
	}
	b := s.newCorporate(t, "B")
	sent := time.Now()
	e := s.post(t, "/token/new", b.auth, b.token, map[string]any{"virtual_user": "b", "bot_idsha": b.bot, "celullar": "+34699000001"})
	expect(t, e, 200, 0)
	s.waitDelivery(t, b, e.str("url"), "sms", "sent", 60*time.Second)
	took := time.Since(sent)
	t.Logf("tenant B's SMS sent %v after its link was asked for, with %d of A's held by the provider", took.Round(time.Millisecond), g.held.Load())
	if took > limit {
		t.Errorf("B's SMS took %v with A's hanging, want under %v", took, limit)
	}
	if held := g.held.Load(); held > int64(delivery.DefaultWorkers) {
		t.Errorf("%d of A's SMS held at once: more than the workers", held)
	}
}

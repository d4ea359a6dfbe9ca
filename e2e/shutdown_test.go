package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// slowMailbox is a mailbox whose server takes delay to accept each mail
// (after the data, before the final 250), so that sends are in flight.
type slowMailbox struct {
	*mailbox
	delay  atomic.Int64 // nanoseconds
	inData atomic.Int64 // mails being held now
}

func newSlowMailbox(t testing.TB, delay time.Duration) *slowMailbox {
	m := &slowMailbox{}
	m.delay.Store(int64(delay))
	m.mailbox = &mailbox{MailServer: testkit.NewMailServer(t, testkit.MailOptions{Hold: m.hold})}
	return m
}

// hold keeps a mail for the delay before accepting it.
func (m *slowMailbox) hold(accept func()) {
	m.inData.Add(1)
	defer m.inData.Add(-1)
	time.Sleep(time.Duration(m.delay.Load()))
	accept()
}

// tracedCall is one API call of the load and what happened to it on the
// wire.
type tracedCall struct {
	env    envelope
	err    error
	wrote  bool // the request was written whole to a connection
	reused bool // ... to a kept-alive connection
}

// traced makes an API call and says whether its request was written.
func (c *csClient) traced(base, path, auth, key string, body any) tracedCall {
	var mu sync.Mutex
	var tc tracedCall
	trace := &httptrace.ClientTrace{
		GetConn: func(string) { mu.Lock(); tc.wrote, tc.reused = false, false; mu.Unlock() }, // each try starts here
		GotConn: func(info httptrace.GotConnInfo) { mu.Lock(); tc.reused = info.Reused; mu.Unlock() },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			mu.Lock()
			tc.wrote = info.Err == nil
			mu.Unlock()
		},
	}
	req, err := apiRequest(httptrace.WithClientTrace(context.Background(), trace), base, path, auth, key, body)
	if err != nil {
		return tracedCall{err: err}
	}
	resp, err := c.hc.Do(req)
	if err == nil {
		tc.env, err = readEnvelope(resp)
	}
	mu.Lock()
	defer mu.Unlock()
	tc.err = err
	return tc
}

// TestGracefulShutdown: SIGTERM under load (keep-alive clients, mails being
// sent to a slow mail server): the server exits 0 in time, every request
// that reached it gets its whole answer (later ones are refused, not cut),
// the sends in flight finish and are recorded, none is left "sending"; after
// a restart every acknowledged link's mail goes out exactly once.
func TestGracefulShutdown(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) { t.Parallel(); testGracefulShutdown(t) })
}

func testGracefulShutdown(t *testing.T) {
	const (
		public    = "http://chat.shutdown.test"
		clients   = 16
		mailDelay = 1500 * time.Millisecond
		exitLimit = 10 * time.Second
	)
	box := newSlowMailbox(t, mailDelay)
	box.Up()
	d := newDB(t)
	// The default --delivery-timeout (30 s) makes a claim's lease 60 s: a
	// delivery left "sending" would not be sent again within this test.
	args := append(box.flags(), "--public-url", public)
	s := startProcess(t, d, args...)
	c := s.demo()
	cl := newCSClient(t)

	type link struct{ virtualUser, mail, url string }
	var (
		mu          sync.Mutex
		links       []link
		unread      []string // ids of users whose creating request may have met an idle close
		problems    []string
		nextID      atomic.Int64
		terminating atomic.Bool
		exited      atomic.Bool
		answered    atomic.Int64 // answers to requests sent before SIGTERM and answered after it
		answeredNew atomic.Int64 // answers to requests sent after SIGTERM
		refused     atomic.Int64
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 50 {
			problems = append(problems, fmt.Sprintf(format, args...))
		}
	}
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for n := w; !exited.Load(); n++ {
				id := nextID.Add(1)
				var path, what string
				var body any
				var l link
				var user string
				if n%2 == 0 {
					user = fmt.Sprint("sd-", id)
					path, what = "/third_parties/user/new", "user/new "+user
					body = map[string]string{"uniqueIdSha": user}
				} else {
					user = fmt.Sprint("sdl-", id)
					l = link{virtualUser: user, mail: fmt.Sprintf("sdl-%d@example.com", id)}
					path, what = "/token/new", "token/new "+user
					body = map[string]any{"virtual_user": l.virtualUser, "bot_idsha": c.bot, "mail": l.mail}
				}
				after := terminating.Load()
				r := cl.traced(s.URL, path, c.auth, c.token, body)
				switch {
				case r.err == nil && (r.env.Status != 200 || r.env.Code != 0):
					problem("%s: HTTP %d code %d: %s", what, r.env.Status, r.env.Code, r.env.Raw)
				case r.err == nil:
					if terminating.Load() {
						if after {
							answeredNew.Add(1)
						} else {
							answered.Add(1)
						}
					}
					if l.mail != "" {
						l.url = r.env.str("url")
						mu.Lock()
						links = append(links, l)
						mu.Unlock()
					}
				case terminating.Load() && !r.wrote && isDialError(r.err):
					// Its connection was opened after the listener closed
					// (the request may have started a moment before
					// SIGTERM, when no kept-alive connection was free):
					// refused, it never reached the server. Fine.
					refused.Add(1)
					time.Sleep(5 * time.Millisecond)
				case terminating.Load() && r.reused && (!r.wrote || isConnClosed(r.err)):
					// Sent on a kept-alive connection just as the server
					// closed it as idle: the server never read it, so it
					// must have changed nothing (checked below). The
					// HTTP/1.1 race every server has; a client retries such
					// a request when it carries an Idempotency-Key.
					mu.Lock()
					unread = append(unread, user)
					mu.Unlock()
				case r.wrote:
					problem("%s: the request was written but its answer did not come whole (SIGTERM sent: %v): %v", what, terminating.Load(), r.err)
				default:
					problem("%s: failed (SIGTERM sent before it started: %v): %v", what, after, r.err)
				}
			}
		})
	}

	// Load for a while, and until mails are being held by the mail server.
	time.Sleep(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for box.inData.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	inFlight := box.inData.Load()
	before := len(box.Received())
	terminating.Store(true)
	sigterm := time.Now()
	err := s.stop()
	took := time.Since(sigterm)
	exited.Store(true)
	wg.Wait()
	mu.Lock()
	acked := append([]link(nil), links...)
	mu.Unlock()
	t.Logf("SIGTERM with %d mails being accepted; exit after %v (%v); %d links acknowledged; after SIGTERM: %d answers to earlier requests, %d to later ones, %d refused, %d unread on an idle close; mails %d before SIGTERM, %d at exit",
		inFlight, took.Round(time.Millisecond), err, len(acked), answered.Load(), answeredNew.Load(), refused.Load(), len(unread), before, len(box.Received()))
	if err != nil {
		t.Errorf("after SIGTERM the server exited with %v, want status 0; logs:\n%s", err, tail(s.logs.String(), 20))
	}
	if took > exitLimit {
		t.Errorf("the server took %v to exit, want under %v", took, exitLimit)
	}
	for _, p := range problems {
		t.Error(p)
	}
	if inFlight == 0 {
		t.Fatal("no mail was in flight at SIGTERM: the test proves nothing about the worker")
	}
	if refused.Load() == 0 {
		t.Error("no request was refused after SIGTERM: the clients did not run through the shutdown")
	}
	if len(acked) == 0 {
		t.Fatal("no link was acknowledged")
	}

	// At exit: nothing is "sending", and every mail the server handed over
	// is recorded as sent (so it will not go out again).
	statuses := deliveryStatuses(t, d)
	count := map[string]int{}
	for _, st := range statuses {
		count[st]++
	}
	t.Logf("deliveries at exit: %v", count)
	if count["sending"] != 0 {
		t.Errorf("%d deliveries left \"sending\" by a graceful shutdown", count["sending"])
	}
	mailed := box.Received()
	if len(mailed) <= before {
		t.Errorf("no mail was accepted between SIGTERM and the exit (%d before, %d after): the sends in flight did not finish", before, len(mailed))
	}
	for _, m := range mailed {
		for _, to := range m.To {
			if statuses[to] != "sent" {
				t.Errorf("the mail to %s was accepted, but its delivery is %q", to, statuses[to])
			}
		}
	}

	// Restart with a fast mail server: every acknowledged link's mail goes
	// out, once.
	box.delay.Store(0)
	s2 := startProcess(t, d, args...)

	// A request the server closed unread created nothing: no user, so no
	// link and no delivery either.
	for _, user := range unread {
		r, ok := cl.ok(t, s2.URL, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": user})
		if ok && r.Body["previously_registered"] != false {
			t.Errorf("%s: its request got no answer, yet the user exists: %s", user, r.Raw)
		}
	}
	want := map[string]bool{}
	for _, l := range acked {
		want[l.mail] = true
	}
	deadline = time.Now().Add(15 * time.Second)
	for {
		got := map[string]bool{}
		for _, m := range box.Received() {
			for _, to := range m.To {
				got[to] = true
			}
		}
		missing := 0
		for addr := range want {
			if !got[addr] {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged links' mails did not arrive within 15 s of the restart", missing, len(want))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // a duplicate would be on its way
	perAddr := map[string]int{}
	for _, m := range box.Received() {
		for _, to := range m.To {
			perAddr[to]++
		}
	}
	for addr, n := range perAddr {
		if n != 1 {
			t.Errorf("%s got %d mails, want 1", addr, n)
		}
	}
	inParallel(8, acked, func(l link) {
		for try := 0; ; try++ {
			st, ok := cl.ok(t, s2.URL, "/token/status", c.auth, c.token, map[string]string{"url": l.url})
			if !ok {
				return
			}
			ds := st.deliveries()
			if len(ds) == 1 && ds[0]["to"] == l.mail && ds[0]["status"] == "sent" {
				return
			}
			if try == 20 {
				t.Errorf("%s's link after the restart: %s, want its one mail delivery sent", l.virtualUser, st.Raw)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := s2.stop(); err != nil {
		t.Errorf("the restarted server did not stop cleanly: %v", err)
	}
}

// isConnClosed says whether err is the peer closing the connection
// (EOF or a reset) rather than a timeout or a malformed answer.
func isConnClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// deliveryStatuses reads a stopped server's delivery ledger: each
// recipient's status (the load sends one delivery to each address).
func deliveryStatuses(t *testing.T, d dbSpec) map[string]string {
	t.Helper()
	db := d.openDB(t, true)
	rows, err := db.Query(`SELECT recipient, status FROM deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var to, status string
		if err := rows.Scan(&to, &status); err != nil {
			t.Fatal(err)
		}
		if _, dup := out[to]; dup {
			t.Errorf("two deliveries to %s", to)
		}
		out[to] = status
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

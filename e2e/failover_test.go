package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/testkit"
)

// TestFailover: three servers on one PostgreSQL database under mixed load
// (users created, links sent by mail and SMS, messages in a group and in
// 1:1 chats, with members' sockets on all three). One server is SIGKILLed
// while it holds leased deliveries and sockets, with the load still going
// through it (a call cut off or refused is sent again to another server,
// as a client behind a load balancer would). Then:
//   - every delivery row, queued before or after the kill, is sent exactly
//     once (counted at the fakes), the victim's leased ones by another
//     server once their lease ends, never while the victim lived (checked
//     on its SMS, whose numbers its provider saw);
//   - every socket client of the victim reconnects to another server with
//     the last seq it saw, and every client ends with every message of its
//     conversation once, in order;
//   - every acknowledged write is there.
//
// The victim's providers never accept a send (its SMTP server never
// greets, its SMS provider never answers): the one window where the
// product allows a duplicate, a crash between the provider's acceptance
// and its record (docs/operations.md, "Deliveries"), is thereby closed, so
// exactly once is what the product promises here.
func TestFailover(t *testing.T) {
	t.Run("postgres", testFailover)
}

// The load's shape: chatters talk in one group and in 1:1 pairs, linkers
// request links (a new user each, mail and SMS); each does at least
// perPhase acknowledged writes before the kill and again after it.
const (
	chatters = 6
	linkers  = 2
	perPhase = 10
	// deliveryTimeout makes the lease (twice it) short, so the victim's
	// claims return within the test; sends to the survivors' fakes take
	// milliseconds.
	deliveryTimeout = 3 * time.Second
	// victim is the index of the server that is killed (not the one that
	// bootstrapped the demo corporate, though nothing depends on it).
	victim = 2
)

func testFailover(t *testing.T) {
	d := newDB(t)
	mail := &mailbox{MailServer: testkit.StartMailServer(t, testkit.MailOptions{})}
	sms := newSMSProvider(t)
	held := newHeldSends(t, sms)
	common := []string{"--public-url", "http://imbee.test", "--delivery-timeout", deliveryTimeout.String(),
		"--delivery-first-retry", "200ms", "--delivery-max-retry", "1s"}
	servers := make([]*server, 3)
	for i := range servers {
		providers := append(mail.flags(), sms.flags()...)
		if i == victim {
			providers = held.flags()
		}
		servers[i] = startProcess(t, d, append(common, providers...)...)
	}
	l := &failLoad{t: t, servers: servers, cl: newCSClient(t), c: servers[0].demo(), stop: make(chan struct{})}
	l.setup(t)
	start := time.Now()
	l.run()

	// Phase 1: every worker has written, the victim holds leased sends of
	// both channels. None of those has reached the other servers' fakes:
	// a live claim is not taken over.
	waitFor(t, 60*time.Second, "phase 1 of the load, and the victim holding a mail and an SMS", func() bool {
		return l.progress() >= perPhase && held.holding("mail") > 0 && held.holding("sms") > 0
	})
	victimSMS, victimMails := held.numbers(), held.holding("mail")
	servers[victim].kill()
	l.mark()
	for _, number := range victimSMS {
		if n := countSMS(sms, number); n != 0 {
			t.Errorf("the SMS to %s, leased by the live victim, was sent %d times by another server", number, n)
		}
	}
	t.Logf("%v: killed server %d holding %d SMS and %d mails", time.Since(start).Round(time.Millisecond), victim, len(victimSMS), victimMails)

	// Phase 2: the load goes on through the survivors.
	waitFor(t, 60*time.Second, "phase 2 of the load", func() bool { return l.progress() >= perPhase })
	l.end()
	t.Logf("%v: %s", time.Since(start).Round(time.Millisecond), l.counts())
	if t.Failed() {
		return
	}
	l.checkDeliveries(t, mail, sms, victimSMS)
	t.Logf("%v: deliveries checked", time.Since(start).Round(time.Millisecond))
	l.checkMessages(t)
	l.checkUsers(t)
}

// failLoad is the load and what it was answered.
type failLoad struct {
	t        *testing.T
	servers  []*server
	cl       *csClient
	c        corporate
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	users   []user   // the chatters
	group   string   // their group
	pairs   []string // 1:1 chats: chatters 2i and 2i+1
	clients []*liveClient

	mu      sync.Mutex
	acks    []int                       // acknowledged writes per worker (chatters, then linkers)
	since   []int                       // acks at the last mark
	retried map[bool]int                // calls sent again: cut off (false) or refused (true)
	sent    map[string]map[int64]string // per conversation: seq → text, as the sends were answered
	links   map[string][2]string        // url token → the mail and number of the acknowledged token/new
	people  map[string]string           // uniqueIdSha → apikey, as user/new answered
}

func (l *failLoad) setup(t *testing.T) {
	l.sent, l.links, l.people, l.retried = map[string]map[int64]string{}, map[string][2]string{}, map[string]string{}, map[bool]int{}
	l.acks, l.since = make([]int, chatters+linkers), make([]int, chatters+linkers)
	for i := range chatters {
		l.users = append(l.users, l.servers[i%3].newUser(t, l.c, fmt.Sprintf("chatter-%d", i)))
	}
	var others []client.Contact
	for _, u := range l.users[1:] {
		others = append(others, client.Contact{IDSha: u.idsha})
	}
	g, err := l.servers[1].client(t, l.c).AsUser(l.users[0].apikey).CreateChat(t.Context(), client.CreateChatRequest{Type: client.TypeGroup, Contacts: others})
	if err != nil {
		t.Fatal(err)
	}
	l.group = g.ConversationID
	for i := 0; i < chatters; i += 2 {
		l.pairs = append(l.pairs, l.servers[i%3].createChat(t, l.c, l.users[i], client.Contact{IDSha: l.users[i+1].idsha}))
	}
	// Each chatter's sockets: the group on one server, its pair on the
	// next, so every server holds sockets of both kinds.
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		for _, c := range l.clients {
			<-c.done
		}
	})
	for i, u := range l.users {
		for k, conv := range []string{l.group, l.pairs[i/2]} {
			c := &liveClient{u: u, conv: conv, home: (i + k) % 3, on: (i + k) % 3, done: make(chan struct{})}
			l.clients = append(l.clients, c)
			go c.run(ctx, l)
		}
	}
	waitFor(t, 30*time.Second, "every socket ready", func() bool {
		for _, c := range l.clients {
			if c.state().ready == 0 {
				return false
			}
		}
		return true
	})
}

// run starts the load: chatters send to their group and their pair in
// turn, linkers request links for new users, each through the servers in
// turn, until stop.
func (l *failLoad) run() {
	l.t.Cleanup(l.end)
	for w := range chatters + linkers {
		l.wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-l.stop:
					return
				default:
				}
				ok := false
				if w < chatters {
					ok = l.send(w, n)
				} else {
					ok = l.link(w, n)
				}
				if !ok {
					return
				}
				l.mu.Lock()
				l.acks[w]++
				l.mu.Unlock()
			}
		})
	}
}

// end stops the load and waits for the calls in flight.
func (l *failLoad) end() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// progress is the fewest acknowledged writes of one worker since the last
// mark.
func (l *failLoad) progress() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	least := -1
	for w, n := range l.acks {
		if least < 0 || n-l.since[w] < least {
			least = n - l.since[w]
		}
	}
	return least
}

func (l *failLoad) mark() {
	l.mu.Lock()
	defer l.mu.Unlock()
	copy(l.since, l.acks)
}

func (l *failLoad) counts() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("acknowledged writes per worker %v; calls sent again: %d cut off, %d refused", l.acks, l.retried[false], l.retried[true])
}

// call makes an API call through the servers in turn from the n-th: a
// call cut off or refused (the victim, dying or dead) is sent again, the
// same, to the next, as a client behind a load balancer would. Every
// retried call here is idempotent (clientMsgId, uniqueIdSha) or documented
// to repeat (a token/new repeat sends the link again). It fails the test
// unless some server answers code 0.
func (l *failLoad) call(n int, path, key string, body any) (envelope, bool) {
	var last error
	for try := range 2 * len(l.servers) {
		s := l.servers[(n+try)%len(l.servers)]
		e, err := l.cl.api(s.URL, path, l.c.auth, key, body)
		if err != nil {
			last = err
			l.mu.Lock()
			l.retried[isDialError(err)]++
			l.mu.Unlock()
			continue
		}
		if e.Status != 200 || e.Code != 0 {
			l.t.Errorf("%s %v: HTTP %d code %d: %s", path, body, e.Status, e.Code, e.Raw)
			return e, false
		}
		return e, true
	}
	l.t.Errorf("%s %v: no server answered: %v", path, body, last)
	return envelope{}, false
}

// send posts chatter w's n-th message, to its group or its pair in turn.
func (l *failLoad) send(w, n int) bool {
	conv := l.group
	if n%2 == 1 {
		conv = l.pairs[w/2]
	}
	text := fmt.Sprintf("chatter-%d says %d", w, n)
	e, ok := l.call(w+n, "/chat/message/send", l.users[w].apikey, map[string]any{"conversationId": conv, "text": text, "clientMsgId": text})
	if !ok {
		return false
	}
	m, _ := e.Body["message"].(map[string]any)
	seq, _ := m["seq"].(float64)
	if m["text"] != text || seq < 1 {
		l.t.Errorf("send %q answered %s", text, e.Raw)
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent[conv] == nil {
		l.sent[conv] = map[int64]string{}
	}
	if prev, dup := l.sent[conv][int64(seq)]; dup && prev != text {
		l.t.Errorf("seq %d answered to %q and %q", int64(seq), prev, text)
	}
	l.sent[conv][int64(seq)] = text
	return true
}

// link creates linker w's n-th user and requests a link for it, sent by
// mail and SMS to addresses of its own.
func (l *failLoad) link(w, n int) bool {
	id := fmt.Sprintf("visitor-%d-%d", w, n)
	e, ok := l.call(w+n, "/third_parties/user/new", l.c.token, map[string]string{"uniqueIdSha": id})
	if !ok {
		return false
	}
	l.mu.Lock()
	l.people[id] = e.str("apikey")
	l.mu.Unlock()
	mail, number := id+"@example.com", fmt.Sprintf("+3461%d%06d", w, n)
	e, ok = l.call(w+n+1, "/token/new", l.c.token, map[string]any{"virtual_user": id, "bot_idsha": l.c.bot, "mail": mail, "celullar": number})
	if !ok {
		return false
	}
	token := linkToken.FindStringSubmatch(e.str("url"))
	if token == nil {
		l.t.Errorf("token/new answered %s", e.Raw)
		return false
	}
	l.mu.Lock()
	l.links[token[1]] = [2]string{mail, number}
	l.mu.Unlock()
	return true
}

var linkToken = regexp.MustCompile(`/l/(imbl_[A-Za-z0-9_-]+)`)

// checkDeliveries waits until every delivery row is sent, then checks that
// the fakes got each exactly once, and each acknowledged link on both
// channels.
func (l *failLoad) checkDeliveries(t *testing.T, mail *mailbox, sms *smsProvider, victimSMS []string) {
	db := l.servers[0].openDB(t, true)
	type key struct{ channel, to string }
	rows := map[key]int{}
	var unsent string
	waitFor(t, 60*time.Second, "every delivery sent", func() bool {
		if err := db.QueryRow(`SELECT COALESCE(string_agg(status || '×' || attempts, ' '), '') FROM deliveries WHERE status <> 'sent'`).Scan(&unsent); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(unsent, "dead") {
			t.Fatalf("deliveries are dead: %s", unsent)
		}
		return unsent == ""
	}, func() string { return "unsent by status×attempts: " + unsent })
	r, err := db.Query(`SELECT channel, recipient, attempts FROM deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	total, repeats := 0, 0
	attempts := map[key]int{}
	for r.Next() {
		var k key
		var n int
		if err := r.Scan(&k.channel, &k.to, &n); err != nil {
			t.Fatal(err)
		}
		if rows[k]++; rows[k] > 1 {
			repeats++
		}
		attempts[k] = max(attempts[k], n)
		total++
	}
	r.Close()

	got := map[key]int{}
	tokens := map[key][]string{}
	accepted, _, bad := sms.sent()
	for _, f := range accepted {
		k := key{"sms", f.Get("To")}
		got[k]++
		if m := linkToken.FindStringSubmatch(f.Get("Body")); m != nil {
			tokens[k] = append(tokens[k], m[1])
		}
	}
	for _, m := range mail.Received() {
		text := m.Parse(t).Text
		for _, to := range m.To {
			k := key{"mail", to}
			got[k]++
			if m := linkToken.FindStringSubmatch(text); m != nil {
				tokens[k] = append(tokens[k], m[1])
			}
		}
	}
	if len(bad) > 0 {
		t.Errorf("malformed SMS requests: %q", bad)
	}
	for k, n := range rows {
		if got[k] != n {
			t.Errorf("%s to %s: %d delivery rows, sent %d times", k.channel, k.to, n, got[k])
		}
	}
	for k, n := range got {
		if rows[k] == 0 {
			t.Errorf("%s to %s sent %d times, with no delivery row", k.channel, k.to, n)
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for token, to := range l.links {
		for _, k := range []key{{"mail", to[0]}, {"sms", to[1]}} {
			if !slices.Contains(tokens[k], token) {
				t.Errorf("the acknowledged link %s… was not sent by %s to %s (sent %q)", token[:10], k.channel, k.to, tokens[k])
			}
		}
	}
	// Claimed by the victim, then by a survivor once the lease ran out.
	for _, number := range victimSMS {
		if k := (key{"sms", number}); rows[k] == 0 || got[k] != rows[k] || attempts[k] < 2 {
			t.Errorf("the victim's leased SMS to %s: %d rows, sent %d times, %d attempts", number, rows[k], got[k], attempts[k])
		}
	}
	t.Logf("%d deliveries (%d from token/new repeats of calls cut off) for %d acknowledged links, each sent once; %d SMS taken over from the victim",
		total, repeats, len(l.links), len(victimSMS))
}

// checkMessages: the acknowledged messages of each conversation are its
// seqs 1..N, and every member's client ends with all of them, in order,
// once; the victim's clients moved to another server.
func (l *failLoad) checkMessages(t *testing.T) {
	l.mu.Lock()
	sent := l.sent
	l.mu.Unlock()
	for conv, bySeq := range sent {
		for seq := int64(1); seq <= int64(len(bySeq)); seq++ {
			if _, ok := bySeq[seq]; !ok {
				t.Fatalf("conversation %s: %d messages acknowledged, none with seq %d", conv[:8], len(bySeq), seq)
			}
		}
	}
	waitFor(t, 30*time.Second, "every client caught up", func() bool {
		for _, c := range l.clients {
			if st := c.state(); st.err == nil && len(st.got) < len(sent[c.conv]) {
				return false
			}
		}
		return true
	})
	moved := 0
	for _, c := range l.clients {
		st := c.state()
		name := fmt.Sprintf("%s's client of %s (first on server %d)", c.u.idsha[:8], c.conv[:8], c.home)
		if st.err != nil {
			t.Errorf("%s: %v", name, st.err)
			continue
		}
		want := sent[c.conv]
		if len(st.got) != len(want) {
			t.Errorf("%s got %d messages, want %d", name, len(st.got), len(want))
		}
		for i, text := range st.got {
			if want[int64(i+1)] != text {
				t.Errorf("%s: seq %d is %q, its send was answered %q", name, i+1, text, want[int64(i+1)])
				break
			}
		}
		switch {
		case c.home == victim && (st.cuts == 0 || st.on == victim):
			t.Errorf("%s did not move to another server", name)
		case c.home == victim:
			moved++
		case st.cuts > 0:
			t.Errorf("%s, on a surviving server, was cut %d times", name, st.cuts)
		}
	}
	t.Logf("%d clients moved from the victim and resumed; conversations of %v messages", moved, func() []int {
		var n []int
		for _, m := range sent {
			n = append(n, len(m))
		}
		return n
	}())
}

// checkUsers: every user whose creation was acknowledged is there, with the
// apikey it was given.
func (l *failLoad) checkUsers(t *testing.T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, apikey := range l.people {
		e := l.servers[0].post(t, "/third_parties/user/new", l.c.auth, l.c.token, map[string]string{"uniqueIdSha": id})
		expect(t, e, 200, 0)
		if e.Body["previously_registered"] != true || e.str("apikey") != apikey {
			t.Errorf("user %s: %s, created with apikey %s…", id, e.Raw, apikey[:10])
		}
	}
}

// liveClient is a member's socket on one conversation that, when its
// server goes, reconnects to the next with the last seq it saw, checking
// that the seqs it gets run on, one after the other, once each.
type liveClient struct {
	u     user
	conv  string
	home  int
	done  chan struct{}
	mu    sync.Mutex
	on    int      // the server it is connected to, or last tried
	got   []string // texts by seq-1
	ready int      // "ready" frames seen
	cuts  int      // sockets that ended under it
	err   error    // the first frame out of order
}

func (c *liveClient) state() liveClient {
	c.mu.Lock()
	defer c.mu.Unlock()
	return liveClient{on: c.on, got: slices.Clone(c.got), ready: c.ready, cuts: c.cuts, err: c.err}
}

func (c *liveClient) run(ctx context.Context, l *failLoad) {
	defer close(c.done)
	for ctx.Err() == nil {
		c.mu.Lock()
		at, after := c.on, int64(len(c.got))
		c.mu.Unlock()
		url := strings.Replace(l.servers[at].URL, "http://", "ws://", 1) + fmt.Sprintf("/chat/socket?conversationId=%s&afterSeq=%d", c.conv, after)
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ws, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {l.c.auth}, "X-WOOS-KEY": {c.u.apikey}},
			HTTPClient: &http.Client{Transport: validated(l.t, http.DefaultTransport)}})
		cancel()
		connected := err == nil
		if connected {
			ws.SetReadLimit(1 << 20)
			err = c.read(ctx, ws)
			ws.CloseNow()
		}
		if ctx.Err() != nil || errors.Is(err, errOutOfOrder) {
			return
		}
		// The server is gone (or refused): the next one, after a moment
		// so that a dead server's refusals do not spin.
		c.mu.Lock()
		c.on = (at + 1) % len(l.servers)
		if connected {
			c.cuts++
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var errOutOfOrder = errors.New("frame out of order")

// read takes frames until the connection ends.
func (c *liveClient) read(ctx context.Context, ws *websocket.Conn) error {
	for {
		var f liveFrame
		_, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &f); err != nil {
			return c.fail(fmt.Errorf("frame %q: %v", b, err))
		}
		c.mu.Lock()
		switch {
		case f.Type == "ready" && f.Seq != int64(len(c.got)):
			c.mu.Unlock()
			return c.fail(fmt.Errorf("ready at seq %d after %d messages", f.Seq, len(c.got)))
		case f.Type == "ready":
			c.ready++
		case f.Type == "message" && (f.Message == nil || f.Message.Seq != int64(len(c.got))+1 || f.Message.ConversationID != c.conv):
			c.mu.Unlock()
			return c.fail(fmt.Errorf("after seq %d came %s", len(c.got), b))
		case f.Type == "message":
			c.got = append(c.got, f.Message.Text)
		}
		c.mu.Unlock()
	}
}

func (c *liveClient) fail(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
	return errOutOfOrder
}

// heldSends are the victim's providers: an SMTP server that never greets
// and an SMS provider that never answers. Each holds a send, unaccepted,
// until the sender gives up or dies, and they count the sends held now.
type heldSends struct {
	mail net.Listener
	sms  *smsProvider

	mu     sync.Mutex
	conns  map[net.Conn]bool
	number map[*http.Request]string // the SMS held now, by request
}

func newHeldSends(t *testing.T, real *smsProvider) *heldSends {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &heldSends{mail: ln, conns: map[net.Conn]bool{}, number: map[*http.Request]string{}}
	quit := make(chan struct{})
	h.sms = &smsProvider{account: real.account, token: real.token}
	h.sms.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		h.mu.Lock()
		h.number[r] = r.PostForm.Get("To")
		h.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-quit:
		}
		h.mu.Lock()
		delete(h.number, r)
		h.mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.conns[conn] = true
			h.mu.Unlock()
			go func() {
				io.Copy(io.Discard, conn) // until the sender hangs up or dies
				h.mu.Lock()
				delete(h.conns, conn)
				h.mu.Unlock()
				conn.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		close(quit)
		h.sms.Close()
		ln.Close()
		h.mu.Lock()
		defer h.mu.Unlock()
		for conn := range h.conns {
			conn.Close()
		}
	})
	return h
}

func (h *heldSends) flags() []string {
	return append([]string{"--smtp-addr", h.mail.Addr().String(), "--smtp-tls", "none", "--mail-from", "links@imbee.test"}, h.sms.flags()...)
}

// holding is how many sends of channel ("mail" or "sms") are held now.
func (h *heldSends) holding(channel string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if channel == "mail" {
		return len(h.conns)
	}
	return len(h.number)
}

// numbers are the numbers of the SMS held now.
func (h *heldSends) numbers() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, n := range h.number {
		out = append(out, n)
	}
	return out
}

func countSMS(p *smsProvider, number string) int {
	accepted, _, _ := p.sent()
	n := 0
	for _, f := range accepted {
		if f.Get("To") == number {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds, failing the test after within with
// what it waited for, and what it found.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool, found ...func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if t.Failed() {
			t.FailNow()
		}
		if time.Now().After(deadline) {
			for _, f := range found {
				what += ": " + f()
			}
			t.Fatalf("no %s within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

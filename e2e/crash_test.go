package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to check the file after the server stopped

	"github.com/imbee/imbee/internal/testkit"
)

// csClient talks to a server as many integrators at once, over keep-alive
// connections. Unlike server.post it returns errors instead of failing the
// test: calls are expected to fail once the server is killed or stopped.
type csClient struct {
	hc *http.Client
	// waiting counts the requests written whole whose answer has not begun:
	// the ones inside the server.
	waiting atomic.Int64
}

// do sends req, keeping waiting.
func (c *csClient) do(req *http.Request) (*http.Response, error) {
	var mu sync.Mutex
	counted := false
	settle := func() {
		mu.Lock()
		defer mu.Unlock()
		if counted {
			c.waiting.Add(-1)
			counted = false
		}
	}
	trace := &httptrace.ClientTrace{
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			mu.Lock()
			defer mu.Unlock()
			if info.Err == nil && !counted {
				c.waiting.Add(1)
				counted = true
			}
		},
		GotFirstResponseByte: settle,
	}
	defer settle()
	return c.hc.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}

func newCSClient(t testing.TB) *csClient {
	tr := &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}
	c := &csClient{hc: &http.Client{Transport: validated(t, tr), Timeout: 15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// apiRequest is an API call as an *http.Request.
func apiRequest(ctx context.Context, base, path, auth, key string, body any) (*http.Request, error) {
	j, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(j))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	req.Header.Set("X-WOOS-KEY", key)
	return req, nil
}

// readEnvelope reads a whole answer and decodes the envelope; an answer cut
// short or not in the envelope's shape is an error.
func readEnvelope(resp *http.Response) (envelope, error) {
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return envelope{}, fmt.Errorf("reading the answer (HTTP %d): %w", resp.StatusCode, err)
	}
	e := envelope{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if !envelopeShape.Match(raw) {
		return e, fmt.Errorf("the answer is not the envelope: HTTP %d %q", resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return e, fmt.Errorf("%v: %q", err, raw)
	}
	return e, nil
}

// api calls base+path and returns the decoded envelope.
func (c *csClient) api(base, path, auth, key string, body any) (envelope, error) {
	req, err := apiRequest(context.Background(), base, path, auth, key, body)
	if err != nil {
		return envelope{}, err
	}
	resp, err := c.do(req)
	if err != nil {
		return envelope{}, err
	}
	return readEnvelope(resp)
}

// ok calls the API and fails the test (from any goroutine: t.Errorf) unless
// the answer is code 0; it says whether it was.
func (c *csClient) ok(t testing.TB, base, path, auth, key string, body any) (envelope, bool) {
	e, err := c.api(base, path, auth, key, body)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return e, false
	}
	if e.Status != 200 || e.Code != 0 {
		t.Errorf("%s %v: HTTP %d code %d: %s", path, body, e.Status, e.Code, e.Raw)
		return e, false
	}
	return e, true
}

// spend presses a link page's button: POST url. It returns the status.
func (c *csClient) spend(url string) (int, error) {
	req, err := http.NewRequest("POST", url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, fmt.Errorf("reading the page (HTTP %d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, nil
}

// isDialError says that a request failed before it reached the server: its
// connection was refused.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// inParallel runs f on every item, n at a time.
func inParallel[T any](n int, items []T, f func(T)) {
	ch := make(chan T)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for it := range ch {
				f(it)
			}
		})
	}
	for _, it := range items {
		ch <- it
	}
	close(ch)
	wg.Wait()
}

// The acknowledged (code 0) writes of the load, with what they returned.
type (
	ackUser struct {
		uniqueID string
		u        user
	}
	ackChat struct {
		creator, contact user
		conv             string
	}
	ackLink struct {
		virtualUser, mail, url, userIDSha string
	}
	ackMessage struct {
		chat      int // index in the talk chats
		sender    user
		key, text string
		seq       int
	}
)

// TestCrashSafety: many clients write (user/new, chat/create, token/new,
// link spends, messages) while the server is SIGKILLed; after a restart on
// the same database every write that was answered code 0 is there, exactly
// as answered, repeats are idempotent, no spent use is refunded or lost,
// seqs have no gaps, and the database passes its integrity checks.
func TestCrashSafety(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) { t.Parallel(); testCrashSafety(t) })
}

// The crash test's load.
const (
	crashPublic    = "http://chat.crash.test" // the same link URLs on both runs
	crashClients   = 16
	crashPoolSize  = 50 // users whose pairs chat/create takes
	crashTalks     = 6  // chats that messages go to
	crashSpendable = 4  // links that the load spends
	crashMaxUses   = 1000
	crashLoadFor   = 2 * time.Second
)

func testCrashSafety(t *testing.T) {
	d := newDB(t)
	args := []string{"--public-url", crashPublic}
	s := startProcess(t, d, args...)
	pid := childPID(t, d)
	l := &crashLoad{s: s, c: s.demo(), cl: newCSClient(t)}
	l.makeFixtures(t)
	l.run(t, pid)
	l.checkAcknowledged(t)

	// Restart on the same database.
	restart := time.Now()
	s2 := startProcess(t, d, args...)
	t.Logf("restarted in %v", time.Since(restart).Round(time.Millisecond))
	base := s2.URL
	verify := time.Now()
	l.verifyUsers(t, base)
	l.verifyChats(t, base)
	l.verifyLinks(t, base)
	l.verifySpends(t, base)
	l.verifyMessages(t, base)
	t.Logf("verified in %v", time.Since(verify).Round(time.Millisecond))

	if err := s2.stop(); err != nil {
		t.Errorf("the restarted server did not stop cleanly: %v\n%s", err, s2.logs.String())
	}
	checkDatabase(t, d)
}

// crashLoad is the crash test's load: the fixtures it works on, its
// clients' state, and the writes acknowledged to them.
type crashLoad struct {
	s  *server
	c  corporate
	cl *csClient

	// The fixtures, made before the load.
	pairs     []crashPair // pairs of pool users, for chat/create
	chats     []crashTalk // the chats that messages go to
	spendURLs []string    // the links that the load spends

	mu        sync.Mutex
	users     []ackUser
	created   []ackChat
	links     []ackLink
	msgs      []ackMessage
	problems  []string // answers that are wrong whenever they come
	early     []string // transport errors before the kill
	spendTry  [crashSpendable]atomic.Int64
	spendOK   [crashSpendable]atomic.Int64
	nextID    atomic.Int64
	nextPair  atomic.Int64
	killing   atomic.Bool
	stop      atomic.Bool
	cutShort  atomic.Int64 // requests sent before the kill that it cut off
	afterKill atomic.Int64 // requests sent after it (refused)
	atKill    int64        // requests inside the server at the kill
}

type crashPair struct{ creator, contact user }

type crashTalk struct {
	members [2]user
	conv    string
}

// makeFixtures makes the users whose pairs chat/create takes, the chats
// that messages go to and the links that the load spends.
func (l *crashLoad) makeFixtures(t *testing.T) {
	s, c := l.s, l.c
	pool := make([]user, crashPoolSize)
	for i := range pool {
		pool[i] = s.newUser(t, c, fmt.Sprintf("pool-%02d", i))
	}
	for i := range pool {
		for j := i + 1; j < len(pool); j++ {
			if len(l.pairs)%2 == 0 {
				l.pairs = append(l.pairs, crashPair{pool[i], pool[j]})
			} else {
				l.pairs = append(l.pairs, crashPair{pool[j], pool[i]})
			}
		}
	}
	l.chats = make([]crashTalk, crashTalks)
	for k := range l.chats {
		a, b := s.newUser(t, c, fmt.Sprint("talk-a-", k)), s.newUser(t, c, fmt.Sprint("talk-b-", k))
		e := s.post(t, "/chat/create", c.auth, a.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": b.idsha}}})
		expect(t, e, 200, 0)
		l.chats[k] = crashTalk{members: [2]user{a, b}, conv: e.str("conversationId")}
	}
	l.spendURLs = make([]string, crashSpendable)
	for k := range l.spendURLs {
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": fmt.Sprint("spender-", k), "bot_idsha": c.bot,
			"mail": fmt.Sprintf("spender-%d@example.com", k), "max_retries": crashMaxUses})
		expect(t, e, 200, 0)
		l.spendURLs[k] = e.str("url")
		if !strings.HasPrefix(l.spendURLs[k], crashPublic+"/l/") {
			t.Fatalf("link %q is not under --public-url %s", l.spendURLs[k], crashPublic)
		}
	}
}

// run has crashClients clients write for crashLoadFor, kills the server
// with requests inside it, and stops the clients once they were refused.
func (l *crashLoad) run(t *testing.T, pid int) {
	ops := []func(id int64) bool{l.newUser, l.newChat, l.newLink, l.spend, l.send}
	var wg sync.WaitGroup
	for w := range crashClients {
		wg.Go(func() {
			for n := w; !l.stop.Load(); n++ {
				id := l.nextID.Add(1)
				for i := range ops {
					if ops[(n+i)%len(ops)](id) {
						break
					}
				}
				if l.killing.Load() {
					time.Sleep(5 * time.Millisecond) // refused now: no need to spin
				}
			}
		})
	}
	loadStart := time.Now()
	time.Sleep(crashLoadFor)
	l.kill(t, pid)
	time.Sleep(100 * time.Millisecond) // the clients keep trying: refused
	l.stop.Store(true)
	wg.Wait()
	t.Logf("load: %v, then SIGKILL; acknowledged: %d user/new, %d chat/create, %d token/new, %d messages, spends %v of %v tried; %d requests inside the server at the kill, %d cut short by it, %d refused after it",
		time.Since(loadStart).Round(time.Millisecond), len(l.users), len(l.created), len(l.links), len(l.msgs), loads(l.spendOK[:]), loads(l.spendTry[:]), l.atKill, l.cutShort.Load(), l.afterKill.Load())
}

// kill kills the server with requests inside it: it freezes it (SIGSTOP),
// lets the answers it already sent arrive, and kills it if some are still
// awaited (those it can no longer answer); else thaws it and tries again.
func (l *crashLoad) kill(t *testing.T, pid int) {
	for try := 0; ; try++ {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if l.cl.waiting.Load() > 0 || try == 50 {
			break
		}
		syscall.Kill(pid, syscall.SIGCONT)
		time.Sleep(time.Duration(1+try) * time.Millisecond)
	}
	l.killing.Store(true)
	l.atKill = l.cl.waiting.Load()
	l.s.kill()
}

// checkAcknowledged fails the test on wrong answers and early failures, and
// unless the kill caught requests inside the server and every kind of write
// was acknowledged: else the test proves nothing about them.
func (l *crashLoad) checkAcknowledged(t *testing.T) {
	for _, p := range l.problems {
		t.Error(p)
	}
	for _, e := range l.early {
		t.Errorf("a request failed before the kill: %s", e)
	}
	if l.atKill == 0 || l.cutShort.Load() == 0 {
		t.Error("no request was inside the server when it was killed: the test proves nothing about them")
	}
	if len(l.users) == 0 || len(l.created) == 0 || len(l.links) == 0 || len(l.msgs) == 0 || sum(loads(l.spendOK[:])) == 0 {
		t.Fatal("some kind of write was never acknowledged: the load did not cover it")
	}
}

// problem records an answer that is wrong whenever it comes.
func (l *crashLoad) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.problems = append(l.problems, fmt.Sprintf(format, args...))
}

// failed files a transport error by when its request was sent.
func (l *crashLoad) failed(sentAfterKill bool, what string, err error) {
	switch {
	case sentAfterKill:
		l.afterKill.Add(1)
	case l.killing.Load():
		l.cutShort.Add(1)
	default:
		l.mu.Lock()
		l.early = append(l.early, fmt.Sprintf("%s: %v", what, err))
		l.mu.Unlock()
	}
}

// call makes an API call of the load; it says whether it was acknowledged.
func (l *crashLoad) call(what, path, key string, body any) (envelope, bool) {
	after := l.killing.Load()
	e, err := l.cl.api(l.s.URL, path, l.c.auth, key, body)
	if err != nil {
		l.failed(after, what, err)
		return e, false
	}
	if e.Status != 200 || e.Code != 0 {
		l.problem("%s: HTTP %d code %d: %s", what, e.Status, e.Code, e.Raw)
		return e, false
	}
	return e, true
}

// The load's operations: each writes one thing, or says false when it has
// nothing left to write.

func (l *crashLoad) newUser(id int64) bool {
	uid := fmt.Sprint("new-", id)
	e, ok := l.call("user/new "+uid, "/third_parties/user/new", l.c.token, map[string]string{"uniqueIdSha": uid})
	if ok {
		if e.Body["previously_registered"] != false {
			l.problem("user/new %s: a new id answered %s", uid, e.Raw)
		}
		l.mu.Lock()
		l.users = append(l.users, ackUser{uid, user{idsha: e.str("virtualUser"), pass: e.str("pass"), apikey: e.str("apikey")}})
		l.mu.Unlock()
	}
	return true
}

// newChat creates the chat of a new pair.
func (l *crashLoad) newChat(int64) bool {
	i := l.nextPair.Add(1) - 1
	if int(i) >= len(l.pairs) {
		return false
	}
	p := l.pairs[i]
	e, ok := l.call("chat/create", "/chat/create", p.creator.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": p.contact.idsha}}})
	if ok {
		if e.Body["previously_created"] != false {
			l.problem("chat/create of a new pair answered %s", e.Raw)
		}
		l.mu.Lock()
		l.created = append(l.created, ackChat{p.creator, p.contact, e.str("conversationId")})
		l.mu.Unlock()
	}
	return true
}

// newLink makes a link for a new user.
func (l *crashLoad) newLink(id int64) bool {
	vu := fmt.Sprint("tok-", id)
	mail := vu + "@example.com"
	e, ok := l.call("token/new "+vu, "/token/new", l.c.token, map[string]any{"virtual_user": vu, "bot_idsha": l.c.bot, "mail": mail})
	if ok {
		if e.Body["previously_created"] != false {
			l.problem("token/new %s: a new user's link answered %s", vu, e.Raw)
		}
		l.mu.Lock()
		l.links = append(l.links, ackLink{vu, mail, e.str("url"), e.str("user_idsha")})
		l.mu.Unlock()
	}
	return true
}

// spend spends a use of one of the spendable links.
func (l *crashLoad) spend(id int64) bool {
	k := id % crashSpendable
	if l.spendTry[k].Add(1) > crashMaxUses-10 { // never run out: a 410 would hide nothing but prove nothing
		l.spendTry[k].Add(-1)
		return false
	}
	after := l.killing.Load()
	code, err := l.cl.spend(l.s.URL + strings.TrimPrefix(l.spendURLs[k], crashPublic))
	switch {
	case err != nil && isDialError(err):
		// Refused: it never reached the server, so it spent nothing.
		l.spendTry[k].Add(-1)
		l.failed(after, "spend", err)
	case err != nil:
		l.failed(after, "spend", err)
	case code == http.StatusSeeOther:
		l.spendOK[k].Add(1)
	default:
		l.problem("spend: HTTP %d", code)
	}
	return true
}

// send sends a message to one of the chats.
func (l *crashLoad) send(id int64) bool {
	k := int(id % crashTalks)
	sender := l.chats[k].members[id/crashTalks%2]
	key, text := fmt.Sprint("m-", id), fmt.Sprintf("message %d «%d»", id, k)
	e, ok := l.call("message/send", "/chat/message/send", sender.apikey, map[string]any{"conversationId": l.chats[k].conv, "text": text, "clientMsgId": key})
	if ok {
		m, _ := e.Body["message"].(map[string]any)
		if e.Body["previously_sent"] != false || m["text"] != text || m["clientMsgId"] != key || num(m["seq"]) < 1 {
			l.problem("message/send %s answered %s", key, e.Raw)
		}
		l.mu.Lock()
		l.msgs = append(l.msgs, ackMessage{k, sender, key, text, num(m["seq"])})
		l.mu.Unlock()
	}
	return true
}

// verifyUsers: each acknowledged user/new is there with the credentials
// it answered.
func (l *crashLoad) verifyUsers(t *testing.T, base string) {
	c, cl := l.c, l.cl
	inParallel(8, l.users, func(a ackUser) {
		e, ok := cl.ok(t, base, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": a.uniqueID})
		if ok && (e.Body["previously_registered"] != true || e.str("virtualUser") != a.u.idsha || e.str("pass") != a.u.pass || e.str("apikey") != a.u.apikey) {
			t.Errorf("user/new %s after the crash = %s, acknowledged before as %+v", a.uniqueID, e.Raw, a.u)
		}
	})
}

// verifyChats: each acknowledged chat/create is there, its creator first.
func (l *crashLoad) verifyChats(t *testing.T, base string) {
	c, cl := l.c, l.cl
	inParallel(8, l.created, func(a ackChat) {
		// From the other side: the same chat, its creator first.
		e, ok := cl.ok(t, base, "/chat/create", c.auth, a.contact.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": a.creator.idsha}}})
		if !ok {
			return
		}
		contacts, _ := e.Body["contacts"].([]any)
		var first map[string]any
		if len(contacts) > 0 {
			first, _ = contacts[0].(map[string]any)
		}
		if e.Body["previously_created"] != true || e.str("conversationId") != a.conv || len(contacts) != 2 || first["idsha"] != a.creator.idsha {
			t.Errorf("chat/create after the crash = %s, acknowledged before as %s created by %s", e.Raw, a.conv, a.creator.idsha)
		}
	})
}

// verifyLinks: each acknowledged token/new is there, unspent, with its
// delivery, and asking again answers the same link.
func (l *crashLoad) verifyLinks(t *testing.T, base string) {
	c, cl := l.c, l.cl
	inParallel(8, l.links, func(a ackLink) {
		st, ok := cl.ok(t, base, "/token/status", c.auth, c.token, map[string]string{"url": a.url})
		if !ok {
			return
		}
		found := false
		for _, d := range st.deliveries() {
			found = found || d["channel"] == "mail" && d["to"] == a.mail
		}
		if st.str("url") != a.url || st.str("user_idsha") != a.userIDSha || st.str("bot_idsha") != c.bot || st.Body["uses"] != 0.0 || !found {
			t.Errorf("token/status of %s's link after the crash = %s", a.virtualUser, st.Raw)
		}
		e, ok := cl.ok(t, base, "/token/new", c.auth, c.token, map[string]any{"virtual_user": a.virtualUser, "bot_idsha": c.bot, "mail": a.mail})
		if ok && (e.Body["previously_created"] != true || e.str("url") != a.url || e.str("user_idsha") != a.userIDSha) {
			t.Errorf("token/new %s after the crash = %s, acknowledged before as %s", a.virtualUser, e.Raw, a.url)
		}
	})
}

// verifySpends: each spendable link has at least its acknowledged spends
// and at most the ones tried; none refunded, none counted twice.
func (l *crashLoad) verifySpends(t *testing.T, base string) {
	c, cl := l.c, l.cl
	for k, url := range l.spendURLs {
		st, ok := cl.ok(t, base, "/token/status", c.auth, c.token, map[string]string{"url": url})
		if !ok {
			continue
		}
		uses, acked, tried := num(st.Body["uses"]), int(l.spendOK[k].Load()), int(l.spendTry[k].Load())
		if uses < acked || uses > tried || num(st.Body["uses_left"]) != crashMaxUses-uses {
			t.Errorf("link %d: %d uses (%v left) after the crash; %d spends were acknowledged and %d tried", k, uses, st.Body["uses_left"], acked, tried)
		}
	}
}

// verifyMessages: each chat's seqs are 1..N without gaps, each acknowledged
// message is at the seq it was answered, and resending it is a repeat.
func (l *crashLoad) verifyMessages(t *testing.T, base string) {
	c, cl := l.c, l.cl
	byChat := make([][]ackMessage, crashTalks)
	for _, m := range l.msgs {
		byChat[m.chat] = append(byChat[m.chat], m)
	}
	for k, ch := range l.chats {
		type stored struct {
			seq                     int
			sender, text, clientKey string
		}
		var all []stored
		lastSeq := -1
		for after := 0; ; {
			e, ok := cl.ok(t, base, "/chat/message/list", c.auth, ch.members[0].apikey, map[string]any{"conversationId": ch.conv, "afterSeq": after, "limit": 200})
			if !ok {
				t.FailNow()
			}
			lastSeq = num(e.Body["last_seq"])
			page, _ := e.Body["messages"].([]any)
			for _, p := range page {
				m, _ := p.(map[string]any)
				cm, _ := m["clientMsgId"].(string)
				sender, _ := m["sender"].(string)
				text, _ := m["text"].(string)
				all = append(all, stored{num(m["seq"]), sender, text, cm})
			}
			if e.Body["has_more"] != true {
				break
			}
			if len(page) == 0 {
				t.Fatalf("chat %d: has_more with an empty page after %d", k, after)
			}
			after = all[len(all)-1].seq
		}
		for i, m := range all {
			if m.seq != i+1 {
				t.Fatalf("chat %d: the %d-th message has seq %d: seqs are not 1..N without gaps", k, i+1, m.seq)
			}
		}
		if lastSeq != len(all) {
			t.Errorf("chat %d: last_seq %d but %d messages", k, lastSeq, len(all))
		}
		acked := byChat[k]
		for _, a := range acked {
			if a.seq < 1 || a.seq > len(all) {
				t.Errorf("chat %d: message %s acknowledged as seq %d is not there (%d messages)", k, a.key, a.seq, len(all))
				continue
			}
			if m := all[a.seq-1]; m.text != a.text || m.sender != a.sender.idsha || m.clientKey != a.key {
				t.Errorf("chat %d: seq %d is %+v, acknowledged as %s %q from %s", k, a.seq, m, a.key, a.text, a.sender.idsha)
			}
		}
		inParallel(8, acked, func(a ackMessage) {
			e, ok := cl.ok(t, base, "/chat/message/send", c.auth, a.sender.apikey, map[string]any{"conversationId": ch.conv, "text": a.text, "clientMsgId": a.key})
			if !ok {
				return
			}
			m, _ := e.Body["message"].(map[string]any)
			if e.Body["previously_sent"] != true || num(m["seq"]) != a.seq {
				t.Errorf("chat %d: resending %s after the crash = %s, acknowledged before as seq %d", k, a.key, e.Raw, a.seq)
			}
		})
	}
}

// childPID finds the "imbee serve" process that this test started on d:
// a child of this process whose arguments name d's database.
func childPID(t *testing.T, d dbSpec) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--db" && args[i+1] == d.db {
				return pid
			}
		}
	}
	t.Fatalf("no child process serves %s", d.db)
	return 0
}

func loads(a []atomic.Int64) []int {
	out := make([]int, len(a))
	for i := range a {
		out[i] = int(a[i].Load())
	}
	return out
}

func sum(a []int) int {
	n := 0
	for _, v := range a {
		n += v
	}
	return n
}

// checkDatabase checks a stopped server's database: SQLite's integrity and
// foreign-key checks, or PostgreSQL's B-tree indexes (amcheck, when the
// server has it); on both, the invariants that imbee's transactions keep.
func checkDatabase(t *testing.T, d dbSpec) {
	t.Helper()
	db := d.openDB(t, true)
	rows := func(query string) []string {
		t.Helper()
		r, err := db.Query(query)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		defer r.Close()
		cols, _ := r.Columns()
		var out []string
		for r.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := r.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprint(vals...))
		}
		if err := r.Err(); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return out
	}

	if !d.postgres() {
		if got := rows(`PRAGMA integrity_check`); len(got) != 1 || got[0] != "ok" {
			t.Errorf("PRAGMA integrity_check: %v", got)
		}
		if got := rows(`PRAGMA foreign_key_check`); len(got) != 0 {
			t.Errorf("PRAGMA foreign_key_check: %v", got)
		}
	} else if _, err := db.Exec(`CREATE EXTENSION IF NOT EXISTS amcheck`); err != nil {
		t.Logf("no amcheck (%v): B-tree indexes not checked", err)
	} else {
		indexes := rows(`
			SELECT c.relname FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid
			JOIN pg_namespace n ON n.oid = c.relnamespace
			JOIN pg_am am ON am.oid = c.relam
			WHERE n.nspname = 'public' AND am.amname = 'btree'
			AND c.relkind = 'i' -- a partitioned table's index: in its partitions'`)
		if len(indexes) < 10 {
			t.Errorf("only %d B-tree indexes found: %v", len(indexes), indexes)
		}
		for _, ix := range indexes {
			if _, err := db.Exec(`SELECT bt_index_check(index => $1::regclass, heapallindexed => true)`, ix); err != nil {
				t.Errorf("bt_index_check(%s): %v", ix, err)
			}
		}
	}

	for what, query := range map[string]string{
		"conversations whose last_seq is not their messages' count and greatest seq": `
			SELECT c.id, c.last_seq, COUNT(m.id), COALESCE(MAX(m.seq), 0) FROM conversations c
			LEFT JOIN messages m ON m.conversation_id = c.id
			GROUP BY c.id, c.last_seq
			HAVING c.last_seq <> COUNT(m.id) OR c.last_seq <> COALESCE(MAX(m.seq), 0)`,
		"deliveries of no link": `
			SELECT d.id, d.link_id FROM deliveries d LEFT JOIN links l ON l.id = d.link_id WHERE l.id IS NULL`,
		"links without a delivery (both are committed together)": `
			SELECT l.id FROM links l WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.link_id = l.id)`,
		"links whose uses are not their sessions (a spend opens one)": `
			SELECT l.id, l.uses, COUNT(s.id) FROM links l LEFT JOIN sessions s ON s.link_id = l.id
			GROUP BY l.id, l.uses HAVING COUNT(s.id) <> l.uses`,
		"chats without exactly two members": `
			SELECT c.id, COUNT(m.idsha) FROM conversations c LEFT JOIN conversation_members m ON m.conversation_id = c.id
			WHERE c.type = 'chat' GROUP BY c.id HAVING COUNT(m.idsha) <> 2`,
	} {
		if got := rows(query); len(got) != 0 {
			t.Errorf("%s: %v", what, got)
		}
	}
	var convs, msgs int
	if err := db.QueryRow(`SELECT (SELECT COUNT(*) FROM conversations), (SELECT COUNT(*) FROM messages)`).Scan(&convs, &msgs); err != nil {
		t.Fatal(err)
	}
	if convs == 0 || msgs == 0 {
		t.Errorf("the checked database has %d conversations and %d messages: not the one the test wrote", convs, msgs)
	}
}

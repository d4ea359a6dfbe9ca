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
	forEachBackend(t, func(t *testing.T) { t.Parallel(); testCrashSafety(t) })
}

func testCrashSafety(t *testing.T) {
	const (
		public    = "http://chat.crash.test" // the same link URLs on both runs
		clients   = 16
		poolSize  = 50 // users whose pairs chat/create takes
		talks     = 6  // chats that messages go to
		spendable = 4  // links that the load spends
		maxUses   = 1000
		loadFor   = 2 * time.Second
	)
	d := newDB(t)
	args := []string{"--public-url", public}
	s := startProcess(t, d, args...)
	pid := childPID(t, d)
	c := s.demo()
	cl := newCSClient(t)

	// The fixtures, before the load.
	pool := make([]user, poolSize)
	for i := range pool {
		pool[i] = s.newUser(t, c, fmt.Sprintf("pool-%02d", i))
	}
	type pair struct{ creator, contact user }
	var pairs []pair
	for i := range pool {
		for j := i + 1; j < len(pool); j++ {
			if len(pairs)%2 == 0 {
				pairs = append(pairs, pair{pool[i], pool[j]})
			} else {
				pairs = append(pairs, pair{pool[j], pool[i]})
			}
		}
	}
	type talk struct {
		members [2]user
		conv    string
	}
	chats := make([]talk, talks)
	for k := range chats {
		a, b := s.newUser(t, c, fmt.Sprint("talk-a-", k)), s.newUser(t, c, fmt.Sprint("talk-b-", k))
		e := s.post(t, "/chat/create", c.auth, a.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": b.idsha}}})
		expect(t, e, 200, 0)
		chats[k] = talk{members: [2]user{a, b}, conv: e.str("conversationId")}
	}
	spendURLs := make([]string, spendable)
	for k := range spendURLs {
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": fmt.Sprint("spender-", k), "bot_idsha": c.bot,
			"mail": fmt.Sprintf("spender-%d@example.com", k), "max_retries": maxUses})
		expect(t, e, 200, 0)
		spendURLs[k] = e.str("url")
		if !strings.HasPrefix(spendURLs[k], public+"/l/") {
			t.Fatalf("link %q is not under --public-url %s", spendURLs[k], public)
		}
	}

	// The load.
	var (
		mu        sync.Mutex
		users     []ackUser
		created   []ackChat
		links     []ackLink
		msgs      []ackMessage
		problems  []string // answers that are wrong whenever they come
		early     []string // transport errors before the kill
		spendTry  [spendable]atomic.Int64
		spendOK   [spendable]atomic.Int64
		nextID    atomic.Int64
		nextPair  atomic.Int64
		killing   atomic.Bool
		stop      atomic.Bool
		cutShort  atomic.Int64 // requests sent before the kill that it cut off
		afterKill atomic.Int64 // requests sent after it (refused)
	)
	problem := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	// failed files a transport error by when its request was sent.
	failed := func(sentAfterKill bool, what string, err error) {
		switch {
		case sentAfterKill:
			afterKill.Add(1)
		case killing.Load():
			cutShort.Add(1)
		default:
			mu.Lock()
			early = append(early, fmt.Sprintf("%s: %v", what, err))
			mu.Unlock()
		}
	}
	call := func(what, path, key string, body any) (envelope, bool) {
		after := killing.Load()
		e, err := cl.api(s.URL, path, c.auth, key, body)
		if err != nil {
			failed(after, what, err)
			return e, false
		}
		if e.Status != 200 || e.Code != 0 {
			problem("%s: HTTP %d code %d: %s", what, e.Status, e.Code, e.Raw)
			return e, false
		}
		return e, true
	}
	ops := []func(id int64) bool{
		func(id int64) bool { // a new user
			uid := fmt.Sprint("new-", id)
			e, ok := call("user/new "+uid, "/third_parties/user/new", c.token, map[string]string{"uniqueIdSha": uid})
			if ok {
				if e.Body["previously_registered"] != false {
					problem("user/new %s: a new id answered %s", uid, e.Raw)
				}
				mu.Lock()
				users = append(users, ackUser{uid, user{idsha: e.str("virtualUser"), pass: e.str("pass"), apikey: e.str("apikey")}})
				mu.Unlock()
			}
			return true
		},
		func(id int64) bool { // a chat for a new pair
			i := nextPair.Add(1) - 1
			if int(i) >= len(pairs) {
				return false
			}
			p := pairs[i]
			e, ok := call("chat/create", "/chat/create", p.creator.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": p.contact.idsha}}})
			if ok {
				if e.Body["previously_created"] != false {
					problem("chat/create of a new pair answered %s", e.Raw)
				}
				mu.Lock()
				created = append(created, ackChat{p.creator, p.contact, e.str("conversationId")})
				mu.Unlock()
			}
			return true
		},
		func(id int64) bool { // a link for a new user
			vu := fmt.Sprint("tok-", id)
			mail := vu + "@example.com"
			e, ok := call("token/new "+vu, "/token/new", c.token, map[string]any{"virtual_user": vu, "bot_idsha": c.bot, "mail": mail})
			if ok {
				if e.Body["previously_created"] != false {
					problem("token/new %s: a new user's link answered %s", vu, e.Raw)
				}
				mu.Lock()
				links = append(links, ackLink{vu, mail, e.str("url"), e.str("user_idsha")})
				mu.Unlock()
			}
			return true
		},
		func(id int64) bool { // a spend
			k := id % spendable
			if spendTry[k].Add(1) > maxUses-10 { // never run out: a 410 would hide nothing but prove nothing
				spendTry[k].Add(-1)
				return false
			}
			after := killing.Load()
			code, err := cl.spend(s.URL + strings.TrimPrefix(spendURLs[k], public))
			switch {
			case err != nil && isDialError(err):
				// Refused: it never reached the server, so it spent nothing.
				spendTry[k].Add(-1)
				failed(after, "spend", err)
			case err != nil:
				failed(after, "spend", err)
			case code == http.StatusSeeOther:
				spendOK[k].Add(1)
			default:
				problem("spend: HTTP %d", code)
			}
			return true
		},
		func(id int64) bool { // a message
			k := int(id % talks)
			sender := chats[k].members[id/talks%2]
			key, text := fmt.Sprint("m-", id), fmt.Sprintf("message %d «%d»", id, k)
			e, ok := call("message/send", "/chat/message/send", sender.apikey, map[string]any{"conversationId": chats[k].conv, "text": text, "clientMsgId": key})
			if ok {
				m, _ := e.Body["message"].(map[string]any)
				if e.Body["previously_sent"] != false || m["text"] != text || m["clientMsgId"] != key || num(m["seq"]) < 1 {
					problem("message/send %s answered %s", key, e.Raw)
				}
				mu.Lock()
				msgs = append(msgs, ackMessage{k, sender, key, text, num(m["seq"])})
				mu.Unlock()
			}
			return true
		},
	}
	var wg sync.WaitGroup
	for w := range clients {
		wg.Go(func() {
			for n := w; !stop.Load(); n++ {
				id := nextID.Add(1)
				for i := range ops {
					if ops[(n+i)%len(ops)](id) {
						break
					}
				}
				if killing.Load() {
					time.Sleep(5 * time.Millisecond) // refused now: no need to spin
				}
			}
		})
	}
	loadStart := time.Now()
	time.Sleep(loadFor)
	// Kill with requests inside the server: freeze it (SIGSTOP), let the
	// answers it already sent arrive, and kill it if some are still
	// awaited (those it can no longer answer); else thaw it and try again.
	for try := 0; ; try++ {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
		if cl.waiting.Load() > 0 || try == 50 {
			break
		}
		syscall.Kill(pid, syscall.SIGCONT)
		time.Sleep(time.Duration(1+try) * time.Millisecond)
	}
	killing.Store(true)
	atKill := cl.waiting.Load()
	s.kill()
	time.Sleep(100 * time.Millisecond) // the clients keep trying: refused
	stop.Store(true)
	wg.Wait()
	t.Logf("load: %v, then SIGKILL; acknowledged: %d user/new, %d chat/create, %d token/new, %d messages, spends %v of %v tried; %d requests inside the server at the kill, %d cut short by it, %d refused after it",
		time.Since(loadStart).Round(time.Millisecond), len(users), len(created), len(links), len(msgs), loads(spendOK[:]), loads(spendTry[:]), atKill, cutShort.Load(), afterKill.Load())
	for _, p := range problems {
		t.Error(p)
	}
	for _, e := range early {
		t.Errorf("a request failed before the kill: %s", e)
	}
	if atKill == 0 || cutShort.Load() == 0 {
		t.Error("no request was inside the server when it was killed: the test proves nothing about them")
	}
	if len(users) == 0 || len(created) == 0 || len(links) == 0 || len(msgs) == 0 || sum(loads(spendOK[:])) == 0 {
		t.Fatal("some kind of write was never acknowledged: the load did not cover it")
	}

	// Restart on the same database.
	restart := time.Now()
	s2 := startProcess(t, d, args...)
	t.Logf("restarted in %v", time.Since(restart).Round(time.Millisecond))
	base := s2.URL
	verify := time.Now()

	inParallel(8, users, func(a ackUser) {
		e, ok := cl.ok(t, base, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": a.uniqueID})
		if ok && (e.Body["previously_registered"] != true || e.str("virtualUser") != a.u.idsha || e.str("pass") != a.u.pass || e.str("apikey") != a.u.apikey) {
			t.Errorf("user/new %s after the crash = %s, acknowledged before as %+v", a.uniqueID, e.Raw, a.u)
		}
	})
	inParallel(8, created, func(a ackChat) {
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
	inParallel(8, links, func(a ackLink) {
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
	for k, url := range spendURLs {
		st, ok := cl.ok(t, base, "/token/status", c.auth, c.token, map[string]string{"url": url})
		if !ok {
			continue
		}
		uses, acked, tried := num(st.Body["uses"]), int(spendOK[k].Load()), int(spendTry[k].Load())
		if uses < acked || uses > tried || num(st.Body["uses_left"]) != maxUses-uses {
			t.Errorf("link %d: %d uses (%v left) after the crash; %d spends were acknowledged and %d tried", k, uses, st.Body["uses_left"], acked, tried)
		}
	}
	byChat := make([][]ackMessage, talks)
	for _, m := range msgs {
		byChat[m.chat] = append(byChat[m.chat], m)
	}
	for k, ch := range chats {
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
	t.Logf("verified in %v", time.Since(verify).Round(time.Millisecond))

	if err := s2.stop(); err != nil {
		t.Errorf("the restarted server did not stop cleanly: %v\n%s", err, s2.logs.String())
	}
	checkDatabase(t, d)
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
			WHERE n.nspname = 'public' AND am.amname = 'btree'`)
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

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/testkit"
)

// TestIsolationMatrix sends, to every endpoint, a request that would succeed
// with corporate A's credentials, under every wrong credential (missing,
// unknown, malformed, the other corporate's, rotated, a user's secret in
// the wrong header), and requests with A's credentials that name B's
// objects. Each is refused with the documented status and code, answers as
// if B's objects did not exist, and the whole database is the same before
// and after. The same requests with the right credentials then succeed, so
// the matrix tests what it claims to.
func TestIsolationMatrix(t *testing.T) { testkit.ForEachBackend(t, testIsolationMatrix) }

// isoTenant is a corporate with three users, a 1:1 chat (u1, u2) with a
// message, a chat of u1 with the bot with a bot message, and a link.
type isoTenant struct {
	corporate
	u1, u2, u3    user
	conv, botConv string
	link          string
}

func newIsoTenant(t testing.TB, s *server, name string) isoTenant {
	t.Helper()
	tn := isoTenant{corporate: s.newCorporate(t, name)}
	c := tn.corporate
	tn.u1, tn.u2, tn.u3 = s.newUser(t, c, "u1"), s.newUser(t, c, "u2"), s.newUser(t, c, "u3")
	tn.conv = s.createChat(t, c, tn.u1, client.Contact{IDSha: tn.u2.idsha})
	tn.botConv = s.createChat(t, c, tn.u1, client.Contact{BotIDSha: c.bot})
	api, ctx := s.client(t, c), t.Context()
	if _, err := api.AsUser(tn.u1.apikey).SendMessage(ctx, client.SendMessageRequest{ConversationID: tn.conv, Text: "hello from " + name, ClientMsgID: "setup-1"}); err != nil {
		t.Fatalf("isoTenant %s: send: %v", name, err)
	}
	if _, err := api.BotSendMessage(ctx, client.BotSendMessageRequest{BotIDSha: c.bot, ConversationID: tn.botConv, Text: "bot says hi", ClientMsgID: "setup-bot-1"}); err != nil {
		t.Fatalf("isoTenant %s: bot send: %v", name, err)
	}
	link, err := api.NewToken(ctx, client.NewTokenRequest{VirtualUser: "u1", BotIDSha: c.bot, Mail: "u1@example.com"})
	if err != nil {
		t.Fatalf("isoTenant %s: link: %v", name, err)
	}
	tn.link = link.URL
	if tn.conv == "" || tn.botConv == "" || tn.link == "" {
		t.Fatalf("isoTenant %s: missing conversation or link", name)
	}
	return tn
}

// rotate rotates c's credentials with the CLI and returns the new ones.
func (s *server) rotateCorporate(t testing.TB, c corporate) corporate {
	t.Helper()
	out, err := s.imbee("corporate", "rotate", "--id", fmt.Sprint(c.id), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Auth           string `json:"auth"`
		CorporateToken string `json:"corporate_token"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.Auth == "" || r.CorporateToken == "" {
		t.Fatalf("corporate rotate --json: %v: %s", err, out)
	}
	if r.Auth == c.auth || r.CorporateToken == c.token {
		t.Fatalf("rotate gave back the old credentials")
	}
	c.auth, c.token = r.Auth, r.CorporateToken
	return c
}

// unissuedSecret is a well-formed secret of the given prefix that nobody issued.
func unissuedSecret(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func unknownID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// isoProbe is one request of the matrix.
type isoProbe struct {
	name string
	user bool   // X-WOOS-KEY is a user's apikey (else the corporate token)
	get  bool   // GET /chat/socket (path holds the query), else POST path with body
	path string // "/chat/socket?…" for the socket
	body string
}

// isoOutcome is how the server answered a isoProbe.
type isoOutcome struct {
	status   int // 101 when a socket was accepted
	code     int
	message  string
	body     string // the envelope's body, as JSON
	raw      string
	envelope bool // the answer was the envelope
}

func (o isoOutcome) String() string {
	return fmt.Sprintf("HTTP %d code %d %q", o.status, o.code, o.raw)
}

// echoedID is an id or link token that an answer may echo back: the
// caller's own input, which tells nothing.
var echoedID = regexp.MustCompile(`[0-9a-f]{40}|imbl_[A-Za-z0-9_-]+`)

// same says whether two refusals are indistinguishable (time, and the ids
// the request itself named, aside).
func (o isoOutcome) same(p isoOutcome) bool {
	norm := func(s string) string { return echoedID.ReplaceAllString(s, "<id>") }
	return o.status == p.status && o.code == p.code && norm(o.message) == norm(p.message) && norm(o.body) == norm(p.body)
}

// send sends p with exactly these credentials ("" leaves a header out).
func (s *server) sendProbe(t testing.TB, p isoProbe, auth, key string) isoOutcome {
	t.Helper()
	h := http.Header{}
	if auth != "" {
		h["Authorization"] = []string{auth}
	}
	if key != "" {
		h["X-WOOS-KEY"] = []string{key}
	}
	var resp *http.Response
	if p.get {
		url := strings.Replace(s.URL, "http://", "ws://", 1) + p.path
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, r, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h, HTTPClient: &http.Client{Transport: validated(t, http.DefaultTransport)}})
		if err == nil {
			c.CloseNow()
			return isoOutcome{status: http.StatusSwitchingProtocols, raw: "(socket accepted)"}
		}
		if r == nil {
			t.Fatalf("%s: no HTTP answer: %v", p.name, err)
		}
		resp = r
	} else {
		req, err := http.NewRequest("POST", s.URL+p.path, strings.NewReader(p.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header = h
		req.Header.Set("Content-Type", "application/json")
		if resp, err = (&http.Client{Transport: validated(t, http.DefaultTransport)}).Do(req); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	o := isoOutcome{status: resp.StatusCode, raw: string(raw)}
	var e struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Body    json.RawMessage `json:"body"`
	}
	if envelopeShape.Match(raw) && json.Unmarshal(raw, &e) == nil {
		o.envelope, o.code, o.message, o.body = true, e.Code, e.Message, string(e.Body)
	} else {
		o.code = -1
	}
	return o
}

// isoCred is a credential variant and the code it must get.
type isoCred struct {
	name      string
	auth, key string
	code      int
}

func testIsolationMatrix(t *testing.T) {
	start := time.Now()
	s := startServer(t)
	a := newIsoTenant(t, s, "Alpha")
	b := newIsoTenant(t, s, "Beta")
	aOld := a.corporate
	a.corporate = s.rotateCorporate(t, a.corporate)
	// The links' deliveries (logged: no transport) settle before the snapshot.
	s.waitDelivery(t, a.corporate, a.link, "mail", "sent", 10*time.Second)
	s.waitDelivery(t, b.corporate, b.link, "mail", "sent", 10*time.Second)

	// Requests that succeed with A's credentials (checked at the end).
	js := func(v any) string {
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return string(j)
	}
	contact := func(ids ...string) []any {
		var out []any
		for _, id := range ids {
			out = append(out, map[string]string{"idsha": id})
		}
		return out
	}
	valid := []isoProbe{
		{name: "user/new (new user)", path: "/third_parties/user/new", body: js(map[string]string{"uniqueIdSha": "matrix_new"})},
		{name: "user/new (repeat)", path: "/third_parties/user/new", body: js(map[string]string{"uniqueIdSha": "u1"})},
		{name: "user/new (repeat, new device)", path: "/third_parties/user/new", body: js(map[string]string{"uniqueIdSha": "u2", "platform": "ios", "deviceName": "phone"})},
		{name: "token/new", path: "/token/new", body: js(map[string]any{"virtual_user": "u2", "bot_idsha": a.bot, "mail": "u2@example.com"})},
		{name: "token/new (repeat)", path: "/token/new", body: js(map[string]any{"virtual_user": "u1", "bot_idsha": a.bot, "mail": "u1@example.com"})},
		{name: "token/status", path: "/token/status", body: js(map[string]string{"url": a.link})},
		{name: "bot/message/send", path: "/bot/message/send", body: js(map[string]any{"bot_idsha": a.bot, "conversationId": a.botConv, "text": "bot again", "clientMsgId": "matrix-bot"})},
		{name: "bot/webhook", path: "/bot/webhook", body: js(map[string]string{"bot_idsha": a.bot, "url": "http://127.0.0.1:9/hook"})},
		{name: "chat/create (new chat)", user: true, path: "/chat/create", body: js(map[string]any{"type": "chat", "contacts": contact(a.u3.idsha)})},
		{name: "chat/create (repeat)", user: true, path: "/chat/create", body: js(map[string]any{"type": "chat", "contacts": contact(a.u2.idsha)})},
		{name: "chat/create (group)", user: true, path: "/chat/create", body: js(map[string]any{"type": "group", "name": "G", "contacts": contact(a.u2.idsha, a.bot)})},
		{name: "chat/message/send", user: true, path: "/chat/message/send", body: js(map[string]any{"conversationId": a.conv, "text": "again", "clientMsgId": "matrix-1"})},
		{name: "chat/message/list", user: true, path: "/chat/message/list", body: js(map[string]any{"conversationId": a.conv})},
		{name: "chat/list", user: true, path: "/chat/list", body: "{}"},
		{name: "chat/read", user: true, path: "/chat/read", body: js(map[string]any{"conversationId": a.conv, "seq": 1})},
		{name: "chat/socket", user: true, get: true, path: "/chat/socket?conversationId=" + a.conv + "&afterSeq=0"},
		{name: "token/revoke", path: "/token/revoke", body: js(map[string]string{"url": a.link})}, // last: it ends the link
	}

	long := "imba_" + strings.Repeat("A", 4995)
	malformedAuth := []isoCred{
		{name: "Authorization missing"},
		{name: "Authorization blank", auth: "   "},
		{name: "Authorization unknown", auth: unissuedSecret("imba_")},
		{name: "Authorization \"Bearer\"", auth: "Bearer"},
		{name: "Authorization \"Bearer \" and nothing", auth: "Bearer    "},
		{name: "Authorization Bearer Bearer", auth: "Bearer Bearer " + a.auth},
		{name: "Authorization of 5000 characters", auth: long},
		{name: "Authorization non-ASCII", auth: "imba_ñandú_漢字_" + a.auth[5:]},
		{name: "Authorization invalid UTF-8", auth: "imba_\xff\xfe\x80" + a.auth[5:]},
		{name: "Authorization with a tab inside", auth: a.auth[:12] + "\t" + a.auth[12:]},
		{name: "Authorization truncated", auth: a.auth[:len(a.auth)-1]},
		{name: "Authorization with a suffix", auth: a.auth + "x"},
		{name: "Authorization upper-cased", auth: strings.ToUpper(a.auth)},
		{name: "Authorization twice", auth: a.auth + " " + a.auth},
		{name: "A's old Authorization", auth: aOld.auth},
		{name: "A's corporate token as Authorization", auth: a.token},
		{name: "A's old corporate token as Authorization", auth: aOld.token},
		{name: "a user's pass as Authorization", auth: a.u1.pass},
		{name: "a user's apikey as Authorization", auth: a.u1.apikey},
		{name: "B's user's apikey as Authorization", auth: b.u1.apikey},
	}
	corpCreds := []isoCred{
		{name: "B's Authorization with A's key", auth: b.auth, key: a.token, code: 3},
		{name: "A's Authorization with B's key", auth: a.auth, key: b.token, code: 3},
		{name: "A's old Authorization and old key", auth: aOld.auth, key: aOld.token, code: 2},
		{name: "A's Authorization with the old key", auth: a.auth, key: aOld.token, code: 3},
		{name: "X-WOOS-KEY missing", auth: a.auth, code: 3},
		{name: "X-WOOS-KEY blank", auth: a.auth, key: "  ", code: 3},
		{name: "X-WOOS-KEY unknown", auth: a.auth, key: unissuedSecret("imbc_"), code: 3},
		{name: "X-WOOS-KEY of 5000 characters", auth: a.auth, key: "imbc_" + strings.Repeat("B", 4995), code: 3},
		{name: "X-WOOS-KEY non-ASCII", auth: a.auth, key: "imbc_ñ漢" + a.token[5:], code: 3},
		{name: "X-WOOS-KEY with a suffix", auth: a.auth, key: a.token + "x", code: 3},
		{name: "A's Authorization as X-WOOS-KEY", auth: a.auth, key: a.auth, code: 3},
		{name: "a user's apikey as X-WOOS-KEY", auth: a.auth, key: a.u1.apikey, code: 3},
		{name: "a user's pass as X-WOOS-KEY", auth: a.auth, key: a.u1.pass, code: 3},
		{name: "both unknown", auth: unissuedSecret("imba_"), key: unissuedSecret("imbc_"), code: 2},
	}
	userCreds := []isoCred{
		{name: "B's Authorization with A's user's apikey", auth: b.auth, key: a.u1.apikey, code: 3},
		{name: "A's Authorization with B's user's apikey", auth: a.auth, key: b.u1.apikey, code: 3},
		{name: "A's old Authorization with the apikey", auth: aOld.auth, key: a.u1.apikey, code: 2},
		{name: "A's corporate token instead of an apikey", auth: a.auth, key: a.token, code: 3},
		{name: "A's old corporate token instead of an apikey", auth: a.auth, key: aOld.token, code: 3},
		{name: "B's corporate token instead of an apikey", auth: a.auth, key: b.token, code: 3},
		{name: "the user's pass instead of the apikey", auth: a.auth, key: a.u1.pass, code: 3},
		{name: "A's Authorization as X-WOOS-KEY", auth: a.auth, key: a.auth, code: 3},
		{name: "X-WOOS-KEY missing", auth: a.auth, code: 3},
		{name: "X-WOOS-KEY blank", auth: a.auth, key: "  ", code: 3},
		{name: "X-WOOS-KEY unknown", auth: a.auth, key: unissuedSecret("imbk_"), code: 3},
		{name: "X-WOOS-KEY of 5000 characters", auth: a.auth, key: "imbk_" + strings.Repeat("C", 4995), code: 3},
		{name: "X-WOOS-KEY non-ASCII", auth: a.auth, key: "imbk_ñ漢" + a.u1.apikey[5:], code: 3},
		{name: "apikey with a suffix", auth: a.auth, key: a.u1.apikey + "x", code: 3},
		{name: "both unknown", auth: unissuedSecret("imba_"), key: unissuedSecret("imbk_"), code: 2},
	}

	// References to the other corporate's objects, with valid credentials
	// of the sender, each paired with the same request naming an object
	// that does not exist: both must answer alike.
	type refCase struct {
		name           string
		p, nonexistent isoProbe
		auth, key      string
	}
	fakeConv, fakeBot, fakeUser := unknownID(), unknownID(), unknownID()
	fakeLink := a.link[:strings.LastIndex(a.link, "/")+1] + unissuedSecret("imbl_")
	refCases := func(me, them isoTenant) []refCase {
		var out []refCase
		add := func(name, path string, user bool, theirs, none any) {
			key := me.token
			if user {
				key = me.u1.apikey
			}
			out = append(out, refCase{
				name: corpName(me.corporate) + " → " + corpName(them.corporate) + "'s " + name,
				p:    isoProbe{name: name, user: user, path: path, body: js(theirs)}, nonexistent: isoProbe{name: name + " (none)", user: user, path: path, body: js(none)},
				auth: me.auth, key: key,
			})
		}
		tokenOf := func(u string) string { return u[strings.LastIndex(u, "/")+1:] }
		add("bot in /token/new", "/token/new", false,
			map[string]any{"virtual_user": "u1", "bot_idsha": them.bot, "mail": "x@example.com"},
			map[string]any{"virtual_user": "u1", "bot_idsha": fakeBot, "mail": "x@example.com"})
		add("bot in /token/new for a new user", "/token/new", false,
			map[string]any{"virtual_user": "nobody_yet", "bot_idsha": them.bot, "celullar": "+34612345678"},
			map[string]any{"virtual_user": "nobody_yet", "bot_idsha": fakeBot, "celullar": "+34612345678"})
		add("link url in /token/status", "/token/status", false, map[string]string{"url": them.link}, map[string]string{"url": fakeLink})
		add("link token in /token/status", "/token/status", false, map[string]string{"url": tokenOf(them.link)}, map[string]string{"url": tokenOf(fakeLink)})
		add("link url in /token/revoke", "/token/revoke", false, map[string]string{"url": them.link}, map[string]string{"url": fakeLink})
		add("link token in /token/revoke", "/token/revoke", false, map[string]string{"url": tokenOf(them.link)}, map[string]string{"url": tokenOf(fakeLink)})
		add("bot in /bot/message/send", "/bot/message/send", false,
			map[string]any{"bot_idsha": them.bot, "conversationId": me.botConv, "text": "x", "clientMsgId": "ref"},
			map[string]any{"bot_idsha": fakeBot, "conversationId": me.botConv, "text": "x", "clientMsgId": "ref"})
		add("conversation in /bot/message/send", "/bot/message/send", false,
			map[string]any{"bot_idsha": me.bot, "conversationId": them.botConv, "text": "x", "clientMsgId": "ref"},
			map[string]any{"bot_idsha": me.bot, "conversationId": fakeConv, "text": "x", "clientMsgId": "ref"})
		add("bot and conversation in /bot/message/send", "/bot/message/send", false,
			map[string]any{"bot_idsha": them.bot, "conversationId": them.botConv, "text": "x", "clientMsgId": "ref"},
			map[string]any{"bot_idsha": fakeBot, "conversationId": fakeConv, "text": "x", "clientMsgId": "ref"})
		add("bot in /bot/webhook", "/bot/webhook", false,
			map[string]string{"bot_idsha": them.bot, "url": "http://127.0.0.1:9/hook"},
			map[string]string{"bot_idsha": fakeBot, "url": "http://127.0.0.1:9/hook"})
		add("bot in /bot/webhook (removal)", "/bot/webhook", false,
			map[string]string{"bot_idsha": them.bot, "url": ""}, map[string]string{"bot_idsha": fakeBot, "url": ""})
		add("user with a chat as contact", "/chat/create", true,
			map[string]any{"type": "chat", "contacts": contact(them.u2.idsha)}, map[string]any{"type": "chat", "contacts": contact(fakeUser)})
		add("user without chats as contact", "/chat/create", true,
			map[string]any{"type": "chat", "contacts": contact(them.u3.idsha)}, map[string]any{"type": "chat", "contacts": contact(fakeUser)})
		add("u1 (same uniqueIdSha as mine) as contact", "/chat/create", true,
			map[string]any{"type": "chat", "contacts": contact(them.u1.idsha)}, map[string]any{"type": "chat", "contacts": contact(fakeUser)})
		add("bot as contact (idsha)", "/chat/create", true,
			map[string]any{"type": "chat", "contacts": contact(them.bot)}, map[string]any{"type": "chat", "contacts": contact(fakeBot)})
		add("bot as contact (bot_idsha)", "/chat/create", true,
			map[string]any{"type": "chat", "contacts": []any{map[string]string{"bot_idsha": them.bot}}},
			map[string]any{"type": "chat", "contacts": []any{map[string]string{"bot_idsha": fakeBot}}})
		add("user in a group", "/chat/create", true,
			map[string]any{"type": "group", "contacts": contact(me.u2.idsha, them.u1.idsha)}, map[string]any{"type": "group", "contacts": contact(me.u2.idsha, fakeUser)})
		add("bot in a group", "/chat/create", true,
			map[string]any{"type": "group", "contacts": contact(me.u2.idsha, them.bot)}, map[string]any{"type": "group", "contacts": contact(me.u2.idsha, fakeBot)})
		for _, conv := range []string{them.conv, them.botConv} {
			add("conversation in /chat/message/send", "/chat/message/send", true,
				map[string]any{"conversationId": conv, "text": "x", "clientMsgId": "ref"}, map[string]any{"conversationId": fakeConv, "text": "x", "clientMsgId": "ref"})
			add("conversation in /chat/message/list", "/chat/message/list", true,
				map[string]any{"conversationId": conv}, map[string]any{"conversationId": fakeConv})
			add("conversation in /chat/read", "/chat/read", true,
				map[string]any{"conversationId": conv, "seq": 1}, map[string]any{"conversationId": fakeConv, "seq": 1})
		}
		out = append(out, refCase{
			name:        corpName(me.corporate) + " → " + corpName(them.corporate) + "'s conversation on /chat/socket",
			p:           isoProbe{name: "socket", user: true, get: true, path: "/chat/socket?conversationId=" + them.conv + "&afterSeq=0"},
			nonexistent: isoProbe{name: "socket (none)", user: true, get: true, path: "/chat/socket?conversationId=" + fakeConv + "&afterSeq=0"},
			auth:        me.auth, key: me.u1.apikey,
		})
		return out
	}

	before := s.dumpDB(t)
	if again := s.dumpDB(t); !equalDumps(before, again) {
		t.Fatalf("the database changes on its own (a worker is still busy): %s", diffDumps(before, again))
	}

	n, failed := 0, 0
	check := func(what string, got isoOutcome, status, code int) {
		n++
		if !got.envelope || got.status != status || got.code != code {
			failed++
			t.Errorf("%s: got %s, want HTTP %d code %d", what, got, status, code)
		}
	}
	for _, p := range valid {
		key := a.token
		creds := corpCreds
		if p.user {
			key, creds = a.u1.apikey, userCreds
		}
		for _, c := range malformedAuth {
			check(p.name+" with "+c.name, s.sendProbe(t, p, c.auth, key), 401, 2)
		}
		for _, c := range creds {
			check(p.name+" with "+c.name, s.sendProbe(t, p, c.auth, c.key), 401, c.code)
		}
	}
	for _, rc := range append(refCases(a, b), refCases(b, a)...) {
		got := s.sendProbe(t, rc.p, rc.auth, rc.key)
		check(rc.name, got, 404, 7)
		if none := s.sendProbe(t, rc.nonexistent, rc.auth, rc.key); !got.same(none) {
			t.Errorf("%s: answers unlike a missing object: %s vs %s", rc.name, got, none)
		}
	}
	t.Logf("%d refusals checked (%d wrong) in %v", n, failed, time.Since(start).Round(time.Millisecond))

	after := s.dumpDB(t)
	if !equalDumps(before, after) {
		t.Errorf("refused requests changed the database: %s", diffDumps(before, after))
	}

	// The same requests with A's credentials succeed, and change the
	// database: the matrix's bodies were good and the dump sees writes.
	for _, p := range valid {
		key := a.token
		if p.user {
			key = a.u1.apikey
		}
		want := 200
		if p.get {
			want = http.StatusSwitchingProtocols
		}
		if got := s.sendProbe(t, p, a.auth, key); got.status != want || (!p.get && got.code != 0) {
			t.Errorf("%s with A's credentials: %s, want success", p.name, got)
		}
	}
	if equalDumps(after, s.dumpDB(t)) {
		t.Error("successful requests left the dump unchanged: it cannot see changes")
	}
	// And B's full credentials still work on B (nothing was locked).
	expect(t, s.post(t, "/chat/message/list", b.auth, b.u1.apikey, map[string]any{"conversationId": b.conv}), 200, 0)
}

func corpName(c corporate) string { return fmt.Sprintf("corporate %d", c.id) }

// dump is every row of every table (and, on PostgreSQL, every sequence's
// position), read through database/sql: table → its rows as text, sorted.
func (s *server) dumpDB(t testing.TB) map[string][]string {
	t.Helper()
	db := s.openDB(t, true)
	tablesQuery := `SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1`
	if s.postgres() {
		tablesQuery = `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`
	}
	// One transaction: a consistent view of every table.
	opts := &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
	if !s.postgres() {
		opts = nil // SQLite: a read transaction is a snapshot already
	}
	tx, err := db.BeginTx(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var names []string
	rows, err := tx.Query(tablesQuery)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	rows.Close()
	if len(names) < 5 {
		t.Fatalf("only %d tables found: %v", len(names), names)
	}
	out := map[string][]string{}
	for _, n := range names {
		out[n] = dumpRows(t, tx, `SELECT * FROM "`+n+`"`)
	}
	if s.postgres() {
		out["(sequences)"] = dumpRows(t, tx, `SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'`)
	}
	return out
}

func dumpRows(t testing.TB, tx *sql.Tx, q string) []string {
	t.Helper()
	rows, err := tx.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteString(" | ")
			}
			b.WriteString(cols[i] + "=")
			switch v := v.(type) {
			case []byte:
				b.WriteString("x" + hex.EncodeToString(v))
			case time.Time:
				b.WriteString(v.UTC().Format(time.RFC3339Nano))
			default:
				fmt.Fprintf(&b, "%v", v)
			}
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	sort.Strings(out)
	return out
}

func equalDumps(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			return false
		}
	}
	return true
}

// diffDumps describes what differs: per table, the rows only before and
// only after.
func diffDumps(a, b map[string][]string) string {
	var out bytes.Buffer
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	}) {
		if slices.Equal(a[k], b[k]) {
			continue
		}
		fmt.Fprintf(&out, "\n table %s: %d rows → %d rows", k, len(a[k]), len(b[k]))
		for _, r := range a[k] {
			if !slices.Contains(b[k], r) {
				fmt.Fprintf(&out, "\n   - %s", r)
			}
		}
		for _, r := range b[k] {
			if !slices.Contains(a[k], r) {
				fmt.Fprintf(&out, "\n   + %s", r)
			}
		}
	}
	return out.String()
}

package linkpage

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/writes"
)

// FuzzLinkPages fuzzes the link pages (docs/api.md, "The link"): the
// segment after /l/ and /w/, the method, the session cookie and the JSON
// body of POST /w/{conversation}/messages. Whatever the input: no panic, no
// 5xx, an HTML page (or, for the chat's JSON calls, a JSON object) with the
// pages' headers, the status the document gives for the link or session
// named; and a fuzzed token never finds a link, let alone spends one: a
// real link nobody is given keeps 0 uses, and the link the placeholder $LINK
// names is spent exactly once per 303; and the store is only given text
// PostgreSQL can hold (no NUL, valid UTF-8), although the one under test is
// SQLite, which takes anything.
//
// An input is (route, method, seg, cookie, body): route's low nibble picks
// the path seg goes in (see pagesFuzz.check), its high nibble the
// Content-Type; method picks GET, HEAD, POST or another method; cookie is
// the imbee_session cookie's value ("" for none). Placeholders in seg and
// cookie ($LINK, $CONV, $SESSION… see pagesFuzz.values) stand for the
// store's real tokens and ids.
func FuzzLinkPages(f *testing.F) {
	w := newPagesFuzz(f)
	type seed struct {
		route, method byte
		seg, cookie   string
		body          string
	}
	const (
		get, head, post, put = 0, 1, 2, 3
		link, chat, msgs     = 0, 4, 6
		before, sock, asset  = 9, 10, 11
		raw                  = 12
	)
	seeds := []seed{
		// The document's flow: the landing page, the button, the chat.
		{link, get, "$LINK", "", ""}, {link, head, "$LINK", "", ""}, {link, post, "$LINK", "", ""},
		{chat, get, "$CONV", "$SESSION", ""}, {chat, get, "$CONV", "", ""}, {chat, head, "$CONV", "$SESSION", ""},
		{msgs, get, "$CONV", "$SESSION", ""}, {msgs, post, "$CONV", "$SESSION", `{"text":"hello","clientMsgId":"c-1"}`},
		{before, get, "5", "$SESSION", ""}, {sock, get, "$CONV", "$SESSION", ""}, {asset, get, "chat.js", "", ""},
		// Ended links and sessions.
		{link, get, "$USEDLINK", "", ""}, {link, post, "$USEDLINK", "", ""}, {link, get, "$REVOKEDLINK", "", ""},
		{link, post, "$REVOKEDLINK", "", ""}, {chat, get, "$ENDEDCONV", "$ENDEDSESSION", ""},
		{msgs, post, "$ENDEDCONV", "$ENDEDSESSION", `{"text":"hi"}`}, {sock, get, "$ENDEDCONV", "$ENDEDSESSION", ""},
		// Another conversation's cookie, forged cookies.
		{chat, get, "$OTHERCONV", "$SESSION", ""}, {msgs, get, "$OTHERCONV", "$SESSION", ""},
		{msgs, post, "$OTHERCONV", "$SESSION", `{"text":"hi"}`}, {chat, get, "$CONV", "imbs_forged", ""},
		{chat, get, "$CONV", "$SESSION; imbee_session=x", ""}, {chat, get, "$CONV", `"$SESSION"`, ""},
		{chat, get, "$CONV", " $SESSION ", ""}, {chat, get, "$CONV", "$SESSIONx", ""}, {chat, get, "$CONV", "\xff\xfe", ""},
		{chat, get, "$CONV", strings.Repeat("c", 5000), ""}, {chat, get, "$CONV", "a\x00b", ""},
		// Fuzzed tokens: near misses of a real one, odd bytes, long.
		{link, get, "imbl_unknown", "", ""}, {link, post, "imbl_unknown", "", ""}, {link, post, "$LINK ", "", ""},
		{link, post, "$LINKx", "", ""}, {link, post, " $LINK", "", ""}, {link, post, "$LINK/", "", ""},
		{link, post, "$LINK/..", "", ""}, {link, post, "x/../$LINK", "", ""}, {link, post, "$LINK%00", "", ""},
		{link, post, "$LINK\x00", "", ""}, {link, post, "$LINK?x=1", "", ""}, {link, post, "$LINK#f", "", ""},
		{link, post, "", "", ""}, {link, get, ".", "", ""}, {link, get, "..", "", ""}, {link, get, "%2e%2e", "", ""},
		{link, get, "\xff\xfe", "", ""}, {link, get, "ñ", "", ""}, {link, get, strings.Repeat("t", 10000), "", ""},
		{link, get, "<script>alert(1)</script>", "", ""}, {link, put, "$LINK", "", ""}, {link, 7, "$LINK", "", ""},
		{raw, post, "l/$LINK", "", ""}, {raw, post, "l//$LINK", "", ""}, {raw, get, "", "", ""}, {raw, get, "w", "", ""},
		{raw, get, "assets", "", ""}, {raw, get, "favicon.ico", "", ""}, {raw, post, "L/$LINK", "", ""},
		{asset, get, "", "", ""}, {asset, get, "../templates/chat.html", "", ""}, {asset, get, "index.html", "", ""},
		{asset, head, "chat.js", "", ""}, {asset, post, "chat.js", "", ""},
		// The chat's JSON body.
		{msgs, post, "$CONV", "$SESSION", `{"text":"` + strings.Repeat("é", 4000) + `"}`},
		{msgs, post, "$CONV", "$SESSION", `{"text":"` + strings.Repeat("é", 4001) + `"}`},
		{msgs, post, "$CONV", "$SESSION", `{"text":"  padded  "}`}, {msgs, post, "$CONV", "$SESSION", `{"text":""}`},
		{msgs, post, "$CONV", "$SESSION", `{"text":"a\u0000b"}`}, {msgs, post, "$CONV", "$SESSION", "{\"text\":\"\xff\"}"},
		{msgs, post, "$CONV", "$SESSION", `{"text":"hi","clientMsgId":"` + strings.Repeat("c", 65) + `"}`},
		{msgs, post, "$CONV", "$SESSION", `{"text":"hi","clientMsgId":"` + strings.Repeat("ñ", 64) + `"}`},
		{msgs, post, "$CONV", "$SESSION", `{"text":"hi","clientMsgId":"a\u0000"}`},
		{msgs, post, "$CONV", "$SESSION", `{"text":"hi","clientMsgId":"  "}`},
		{msgs, post, "$CONV", "$SESSION", `{"text":5}`}, {msgs, post, "$CONV", "$SESSION", `{"text":null}`},
		{msgs, post, "$CONV", "$SESSION", `null`}, {msgs, post, "$CONV", "$SESSION", `[]`}, {msgs, post, "$CONV", "$SESSION", ``},
		{msgs, post, "$CONV", "$SESSION", `{"text":"a"} trailing`}, {msgs, post, "$CONV", "$SESSION", `{"text":"a","text":"b"}`},
		{msgs, post, "$CONV", "$SESSION", `{"TEXT":"upper"}`}, {msgs, post, "$CONV", "$SESSION", `{"text":["a"]}`},
		{msgs, post, "$CONV", "$SESSION", `{"text":"` + strings.Repeat("x", 70000) + `"}`},
		{msgs, post, "$CONV", "$SESSION", strings.Repeat("[", 20000)},
		{msgs | 13<<4, post, "$CONV", "$SESSION", `{"text":"as text/plain"}`},
		{msgs | 14<<4, post, "$CONV", "$SESSION", `{"text":"no type"}`},
		{msgs | 15<<4, post, "$CONV", "$SESSION", `text=form`},
		{msgs | 12<<4, post, "$CONV", "$SESSION", `{"text":"charset"}`},
		{msgs, post, "$CONV", "", `{"text":"no cookie"}`},
		// The history's ?before=.
		{before, get, "-1", "$SESSION", ""}, {before, get, "x", "$SESSION", ""}, {before, get, "9223372036854775808", "$SESSION", ""},
		{before, get, "0", "$SESSION", ""}, {before, get, "1e3", "$SESSION", ""},
	}
	for _, s := range seeds {
		f.Add(s.route, s.method, s.seg, s.cookie, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, route, method byte, seg, cookie string, body []byte) {
		w.check(t, route, method, seg, cookie, body)
	})
}

// pagesFuzz is the pages over a real store, made once per process.
type pagesFuzz struct {
	h      http.Handler
	store  *store.Store
	pg     *pgTextStore
	values map[string]string
	// sacred is a real, active link's token that no input is given; spend
	// is the token $LINK names, spent spent times so far.
	sacred, spend string
	spent         int
	// sessions maps a session cookie to its conversation.
	sessions map[string]string
	ended    map[string]bool // sessions that have ended
	// sent is the text first accepted under each clientMsgId: a repeat
	// answers that message, whatever its own text.
	sent map[string]string
}

func newPagesFuzz(f *testing.F) *pagesFuzz {
	f.Helper()
	ctx := context.Background()
	keys, err := secret.NewKeyring(make([]byte, secret.KeySize))
	if err != nil {
		f.Fatal(err)
	}
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(f.TempDir(), "pages.db"), keys, store.Options{Synchronous: "normal"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	corp, _, err := s.CreateCorporate(ctx, corpName, "UTC")
	if err != nil {
		f.Fatal(err)
	}
	bot, err := s.CreateBot(ctx, corp.ID, botName)
	if err != nil {
		f.Fatal(err)
	}
	issue := func(user string, uses int) string {
		exp := time.Now().Add(30 * 24 * time.Hour)
		l, err := s.IssueLink(ctx, imbee.LinkRequest{CorporateID: corp.ID, UniqueID: user, BotIDSha: bot.IDSha,
			MaxUses: uses, DateLimit: exp.Format(time.DateOnly), ExpiresAt: exp})
		if err != nil {
			f.Fatal(err)
		}
		return l.Token
	}
	spend := func(token string) imbee.Session {
		sess, st, err := s.SpendLink(ctx, token, imbee.LinkAttempt{Method: "POST", Address: "192.0.2.1", Agent: "browser"})
		if err != nil || st != imbee.LinkActive {
			f.Fatalf("spend: %v %v", st, err)
		}
		return sess
	}
	w := &pagesFuzz{store: s, sessions: map[string]string{}, ended: map[string]bool{}, sent: map[string]string{}}
	w.sacred = issue("sacred", 3)
	w.spend = issue("ana", 1_000_000) // not used up by a long run
	mine := spend(w.spend)
	w.spent = 1
	other := spend(issue("bea", 5))
	used := issue("cid", 1)
	spend(used)
	revoked := issue("dan", 5)
	endedSess := spend(revoked)
	if _, err := s.RevokeLink(ctx, corp.ID, revoked); err != nil {
		f.Fatal(err)
	}
	for _, sess := range []imbee.Session{mine, other, endedSess} {
		w.sessions[sess.Token] = sess.ConversationID
	}
	w.ended[endedSess.Token] = true
	w.values = map[string]string{
		"$LINK": w.spend, "$USEDLINK": used, "$REVOKEDLINK": revoked,
		"$SESSION": mine.Token, "$CONV": mine.ConversationID,
		"$OTHERSESSION": other.Token, "$OTHERCONV": other.ConversationID,
		"$ENDEDSESSION": endedSess.Token, "$ENDEDCONV": endedSess.ConversationID,
	}
	w.pg = &pgTextStore{Store: s}
	w.h = New(w.pg, writes.New(w.pg, writes.Effects{}, nil), Config{PublicURL: "https://chat.example.test"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return w
}

// expand replaces the placeholders in s by their values.
func (w *pagesFuzz) expand(s string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var args []string
	for _, p := range []string{"$REVOKEDLINK", "$USEDLINK", "$LINK", "$OTHERSESSION", "$ENDEDSESSION", "$SESSION", "$OTHERCONV", "$ENDEDCONV", "$CONV"} {
		args = append(args, p, w.values[p])
	}
	return strings.NewReplacer(args...).Replace(s)
}

// cleanPath is net/http's: what a ServeMux redirects a path to.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] != '/' {
		p = "/" + p
	}
	np := path.Clean(p)
	if p[len(p)-1] == '/' && np != "/" {
		np += "/"
	}
	return np
}

// check sends one fuzzed request and checks the answer.
func (w *pagesFuzz) check(t *testing.T, route, methodSel byte, rawSeg, rawCookie string, rawBody []byte) {
	seg := w.expand(rawSeg)
	u := &url.URL{}
	switch r := route & 0x0f; {
	case r <= 3:
		u.Path = "/l/" + seg
	case r <= 5:
		u.Path = "/w/" + seg
	case r <= 8:
		u.Path = "/w/" + seg + "/messages"
	case r == 9:
		u.Path, u.RawQuery = "/w/"+w.values["$CONV"]+"/messages", "before="+url.QueryEscape(seg)
	case r == 10:
		u.Path = "/w/" + seg + "/socket"
	case r == 11:
		u.Path = "/assets/" + seg
	default:
		u.Path = "/" + seg
	}
	var method string
	if m := methodSel % 4; m < 3 {
		method = []string{http.MethodGet, http.MethodHead, http.MethodPost}[m]
	} else {
		method = []string{http.MethodPut, http.MethodDelete, http.MethodOptions, http.MethodPatch}[(methodSel>>2)%4]
	}
	contentType := "application/json"
	switch route >> 4 {
	case 12:
		contentType = "application/json; charset=utf-8"
	case 13:
		contentType = "text/plain"
	case 14:
		contentType = ""
	case 15:
		contentType = "application/x-www-form-urlencoded"
	}

	req := httptest.NewRequest(method, "/", bytes.NewReader(rawBody))
	req.URL, req.RequestURI, req.Host = u, u.RequestURI(), "chat.example.test"
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	cookie := w.expand(rawCookie)
	if cookie != "" && validHeaderValue(cookie) {
		req.Header.Set("Cookie", cookieName+"="+strings.Trim(cookie, " \t"))
	}
	sessCookie, hasSession := "", false
	if c, err := req.Cookie(cookieName); err == nil {
		sessCookie, hasSession = c.Value, true
	}
	rec := httptest.NewRecorder()
	w.pg.take()
	w.h.ServeHTTP(rec, req)
	res := rec.Result()
	got := rec.Body.Bytes()
	status := rec.Code
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s %s (cookie %q): HTTP %d: "+format+"; body %.300q", append([]any{method, u.RequestURI(), sessCookie, status}, append(args, got)...)...)
	}
	if status >= 500 {
		fail("a server error")
	}
	if what := w.pg.take(); what != "" {
		fail("the store was given text PostgreSQL refuses (a 500 there): %s", what)
	}
	ctype := res.Header.Get("Content-Type")
	html := func(statuses ...int) {
		t.Helper()
		if !inList(status, statuses) {
			fail("want one of %v", statuses)
		}
		if ctype != "text/html; charset=utf-8" {
			fail("Content-Type %q, want an HTML page", ctype)
		}
		if method != http.MethodHead && !bytes.Contains(got, []byte("</html>")) {
			fail("not a whole HTML page")
		}
	}
	jsonAnswer := func(statuses ...int) map[string]json.RawMessage {
		t.Helper()
		if !inList(status, statuses) {
			fail("want one of %v", statuses)
		}
		var obj map[string]json.RawMessage
		if ctype != "application/json; charset=utf-8" || json.Unmarshal(got, &obj) != nil || obj == nil {
			fail("Content-Type %q: want a JSON object", ctype)
		}
		if status != http.StatusOK {
			var msg string
			if json.Unmarshal(obj["error"], &msg) != nil || msg == "" {
				fail("an error without {\"error\": …}")
			}
		}
		return obj
	}

	// What the request names, as the pages' ServeMux sees it.
	escaped := u.EscapedPath()
	parts := strings.Split(u.Path[1:], "/")
	kind := "other"
	switch {
	case cleanPath(escaped) != escaped:
		kind = "redirect"
	case len(parts) == 2 && parts[0] == "l" && parts[1] != "":
		kind = "link"
	case len(parts) == 2 && parts[0] == "w" && parts[1] != "":
		kind = "chat"
	case len(parts) == 3 && parts[0] == "w" && parts[1] != "" && parts[2] == "messages":
		kind = "messages"
	case len(parts) == 3 && parts[0] == "w" && parts[1] != "" && parts[2] == "socket":
		kind = "socket"
	case len(parts) >= 2 && parts[0] == "assets":
		kind = "assets"
	}
	// The pages' headers (docs/api.md: their URL is a secret). The assets'
	// URLs are not: net/http's file server drops Cache-Control from its
	// errors (a missing file's 404), and that is fine.
	for h, v := range map[string]string{"Cache-Control": "no-store", "Referrer-Policy": "same-origin", "X-Content-Type-Options": "nosniff"} {
		if res.Header.Get(h) != v && !(h == "Cache-Control" && kind == "assets" && status != http.StatusOK) {
			fail("%s is %q, want %q", h, res.Header.Get(h), v)
		}
	}
	if !strings.Contains(res.Header.Get("X-Robots-Tag"), "noindex") {
		fail("no X-Robots-Tag: noindex")
	}
	readable := method == http.MethodGet || method == http.MethodHead
	// The session the cookie opens for this path's conversation: "none"
	// (401), "ended" (410) or "live".
	session := "none"
	if hasSession {
		session = "ended" // an unknown cookie, or another conversation's
		if conv, known := w.sessions[sessCookie]; known && !w.ended[sessCookie] && len(parts) > 1 && conv == parts[1] {
			session = "live"
		}
	}

	spent := false
	switch {
	case kind == "other" && u.Path == "/assets" && status == http.StatusNotFound:
		html(http.StatusNotFound)
	case kind == "redirect" || kind == "other" && u.Path == "/assets":
		if status != http.StatusTemporaryRedirect && status != http.StatusMovedPermanently || res.Header.Get("Location") == "" {
			fail("want the ServeMux's redirect to the clean path")
		}
	case kind == "link" && (readable || method == http.MethodPost):
		token := parts[1]
		switch token {
		case w.spend:
			if method == http.MethodPost {
				if status == http.StatusSeeOther {
					spent = true
					break
				}
				html(http.StatusGone) // used up by earlier inputs
				break
			}
			html(http.StatusOK, http.StatusGone)
		case w.values["$USEDLINK"], w.values["$REVOKEDLINK"]:
			html(http.StatusGone)
		case w.sacred:
			fail("an input named the sacred link")
		default:
			html(http.StatusNotFound) // a fuzzed token finds no link
		}
		if status == http.StatusSeeOther {
			loc := res.Header.Get("Location")
			cs := res.Cookies()
			if loc != "/w/"+w.values["$CONV"] || len(cs) != 1 || cs[0].Name != cookieName || !cs[0].HttpOnly || !cs[0].Secure ||
				cs[0].SameSite != http.SameSiteLaxMode || cs[0].Path != loc {
				fail("303 to %q with cookies %v", loc, res.Header.Values("Set-Cookie"))
			}
		}
	case kind == "chat" && readable:
		switch session {
		case "none":
			html(http.StatusUnauthorized)
		case "ended":
			html(http.StatusGone)
		default:
			html(http.StatusOK)
		}
	case kind == "messages" && (readable || method == http.MethodPost), kind == "socket" && readable:
		switch session {
		case "none":
			jsonAnswer(http.StatusUnauthorized)
		case "ended":
			jsonAnswer(http.StatusGone)
		default:
			switch {
			case kind == "socket":
				// Not a WebSocket handshake: the WebSocket library refuses it.
				if !inList(status, []int{http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusUpgradeRequired}) {
					fail("want the handshake refused")
				}
			case readable:
				jsonAnswer(http.StatusOK, http.StatusBadRequest)
			default:
				w.checkSend(t, contentType, rawBody, jsonAnswer(http.StatusOK, http.StatusBadRequest, http.StatusUnsupportedMediaType), status, fail)
			}
		}
	case kind == "assets" && readable:
		if !inList(status, []int{http.StatusOK, http.StatusMovedPermanently, http.StatusNotFound}) {
			fail("want a file, a redirect or 404")
		}
	default:
		// Any other method or path: the pages' 404.
		html(http.StatusNotFound)
	}

	// No input but $LINK's exact token spends a link, and that one once
	// per 303.
	if spent {
		w.spent++
	}
	for token, want := range map[string]int{w.sacred: 0, w.spend: w.spent} {
		p, err := w.store.LinkByToken(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		if p.Link.Uses != min(want, p.Link.MaxUses) {
			fail("a link has %d uses, want %d", p.Link.Uses, want)
		}
	}
}

// checkSend checks POST /w/{conversation}/messages with a live session.
func (w *pagesFuzz) checkSend(t *testing.T, contentType string, body []byte, obj map[string]json.RawMessage, status int, fail func(string, ...any)) {
	t.Helper()
	mt, _, _ := strings.Cut(contentType, ";")
	if strings.TrimSpace(mt) != "application/json" {
		if status != http.StatusUnsupportedMediaType {
			fail("Content-Type %q accepted", contentType)
		}
		return
	}
	var req struct {
		Text        string `json:"text"`
		ClientMsgID string `json:"clientMsgId"`
	}
	if json.NewDecoder(bytes.NewReader(body)).Decode(&req) != nil {
		if status != http.StatusBadRequest {
			fail("a body that is not a JSON object accepted")
		}
		return
	}
	text := req.Text
	// A message as the API takes it (docs/api.md, /chat/message/send):
	// 1 to 4000 characters of valid UTF-8 without NUL, not blank, kept as
	// sent; a clientMsgId of at most 64 characters without NUL.
	valid := strings.TrimSpace(text) != "" && utf8.RuneCountInString(text) <= 4000 && utf8.ValidString(text) && !strings.ContainsRune(text, 0) &&
		utf8.RuneCountInString(req.ClientMsgID) <= 64 && !strings.ContainsRune(req.ClientMsgID, 0)
	if status == http.StatusOK {
		if !valid {
			fail("an invalid message accepted: text %q clientMsgId %q", text, req.ClientMsgID)
		}
		var sent struct {
			Text           string `json:"text"`
			ConversationID string `json:"conversationId"`
		}
		var again bool
		if json.Unmarshal(obj["message"], &sent) != nil || json.Unmarshal(obj["previously_sent"], &again) != nil {
			fail("the answer is not a message")
		}
		id := strings.TrimSpace(req.ClientMsgID) // the key as the rule keeps it
		want, seen := w.sent[id]
		seen = seen && id != ""
		if !seen {
			want = text
		}
		if sent.Text != want || sent.ConversationID != w.values["$CONV"] || again != seen {
			fail("the answer is not the message sent (or, for a repeated clientMsgId, the first one sent)")
		}
		if id != "" && !seen {
			w.sent[id] = text
		}
	}
}

func inList(v int, list []int) bool {
	for _, x := range list {
		if v == x {
			return true
		}
	}
	return false
}

// validHeaderValue says whether a client can send v as a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// pgTextStore is the store, noting text PostgreSQL would refuse (NUL, or
// invalid UTF-8) in what the chat's calls store or look up; SQLite takes it.
type pgTextStore struct {
	*store.Store
	mu      sync.Mutex
	problem string
}

func (p *pgTextStore) note(op string, texts ...string) {
	for _, s := range texts {
		if strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
			p.mu.Lock()
			if p.problem == "" {
				p.problem = op + ": " + strconv.Quote(s)
			}
			p.mu.Unlock()
		}
	}
}

// take returns the first problem noted since the last call.
func (p *pgTextStore) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	what := p.problem
	p.problem = ""
	return what
}

func (p *pgTextStore) SendMessage(ctx context.Context, req imbee.MessageRequest) (imbee.Message, bool, error) {
	p.note("SendMessage", req.ConversationID, req.Sender, req.ClientMsgID, req.Text)
	return p.Store.SendMessage(ctx, req)
}

func (p *pgTextStore) Messages(ctx context.Context, corporateID int64, conversationID, member string, pg imbee.MessagePage) ([]imbee.Message, bool, int64, int64, error) {
	p.note("Messages", conversationID, member)
	return p.Store.Messages(ctx, corporateID, conversationID, member, pg)
}

func (p *pgTextStore) MessagesAfter(ctx context.Context, corporateID int64, conversationID string, seq int64, limit int) ([]imbee.Message, error) {
	p.note("MessagesAfter", conversationID)
	return p.Store.MessagesAfter(ctx, corporateID, conversationID, seq, limit)
}

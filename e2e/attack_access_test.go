package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/testkit"
)

// The attacker here holds access that has been ended: a link revoked, a
// user's apikey rotated, a bot retired, a corporate rotated or disabled.
// Whatever socket they opened before must close at once (1008) on every
// server, and nothing sent after the revocation may reach it.

// closeWithin is the promise: a socket closes within 2 s of the answer to
// the revocation.
const closeWithin = 2 * time.Second

// webChat is a person's web chat opened through a link: its URL, the
// session cookie the link's POST set and the conversation it leads to.
type webChat struct {
	link, conv string
	cookie     *http.Cookie
}

// openWebChat issues a link to uniqueID with bot, and spends it as a
// browser does.
func openWebChat(t testing.TB, s *server, c corporate, bot, uniqueID string) webChat {
	t.Helper()
	l, err := s.client(t, c).NewToken(t.Context(), client.NewTokenRequest{VirtualUser: uniqueID, BotIDSha: bot, Mail: uniqueID + "@example.com", MaxRetries: 5})
	if err != nil {
		t.Fatalf("issue a link: %v", err)
	}
	code, _, resp := page(t, browser(t), "POST", l.URL)
	if code != 303 {
		t.Fatalf("spend the link: %d", code)
	}
	w := webChat{link: l.URL, conv: strings.TrimPrefix(resp.Header.Get("Location"), "/w/")}
	for _, ck := range resp.Cookies() {
		if ck.Name == "imbee_session" {
			w.cookie = ck
		}
	}
	if w.cookie == nil || w.conv == "" {
		t.Fatalf("no session from the link: %v", resp.Header)
	}
	return w
}

// dialWebRaw dials the web chat's socket with the session cookie.
func dialWebRaw(s *server, w webChat) (*websocket.Conn, *http.Response, error) {
	url := strings.Replace(s.URL, "http://", "ws://", 1) + "/w/" + w.conv + "/socket"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {w.cookie.String()}}})
}

// dialWeb opens the web chat's socket and waits until it is ready.
func dialWeb(t testing.TB, s *server, w webChat) *socketClient {
	t.Helper()
	c, _, err := dialWebRaw(s, w)
	if err != nil {
		t.Fatalf("dial the web chat's socket: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	sc := &socketClient{c: c}
	if f := mustReadLive(t, sc, 5*time.Second); f.Type != "ready" {
		t.Fatalf("first frame: %+v", f)
	}
	return sc
}

// signInApp signs u in to the web app and returns the session's cookie.
func signInApp(t testing.TB, s *server, u user) *http.Cookie {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL+"/app", strings.NewReader(neturl.Values{"virtualUser": {u.idsha}, "pass": {u.pass}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := browser(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, ck := range resp.Cookies() {
		if ck.Name == "imbee_app" && resp.StatusCode == http.StatusSeeOther {
			return ck
		}
	}
	t.Fatalf("sign in to the app: %d %v", resp.StatusCode, resp.Header)
	return nil
}

// dialApp opens the web app's socket on conv with an app session's cookie
// and waits until it is ready.
func dialApp(t testing.TB, s *server, cookie *http.Cookie, conv string) *socketClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(s.URL, "http://", "ws://", 1)+"/app/c/"+conv+"/socket",
		&websocket.DialOptions{HTTPHeader: http.Header{"Cookie": {cookie.String()}}})
	if err != nil {
		t.Fatalf("dial the app's socket: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	sc := &socketClient{c: c}
	for { // past the catch-up to "ready"
		if f := mustReadLive(t, sc, 5*time.Second); f.Type == "ready" {
			return sc
		} else if f.Type != "message" && f.Type != "read" {
			t.Fatalf("frame before ready: %+v", f)
		}
	}
}

// dialAPI opens /chat/socket with an apikey and waits until it is ready.
func dialAPI(t testing.TB, s *server, auth, apikey, conv string) *socketClient {
	t.Helper()
	sc := dialSocket(t, s, auth, apikey, conv, 0)
	if f := mustReadLive(t, sc, 5*time.Second); f.Type != "ready" {
		t.Fatalf("first frame: %+v", f)
	}
	return sc
}

// botSays sends text as the bot in conv; the answer is not checked (the
// bot may have been revoked: then nothing is sent at all).
func botSays(t testing.TB, s *server, c corporate, bot, conv, text string) envelope {
	t.Helper()
	return s.post(t, "/bot/message/send", c.auth, c.token, map[string]any{"conversationId": conv, "bot_idsha": bot, "text": text})
}

// wantPolicyClose reads sc until it closes: the close must be 1008 and
// come within closeWithin of since, and no frame may carry forbidden.
func wantPolicyClose(t testing.TB, sc *socketClient, since time.Time, forbidden string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := sc.c.Read(ctx)
		if err != nil {
			if st := websocket.CloseStatus(err); st != websocket.StatusPolicyViolation {
				t.Fatalf("socket ended with %v (status %d), want close 1008", err, st)
			}
			if d := time.Since(since); d >= closeWithin {
				t.Errorf("the socket closed %v after the revocation was answered, want < %v", d, closeWithin)
			}
			return
		}
		if strings.Contains(string(b), forbidden) {
			t.Fatalf("a message sent after the revocation reached the revoked socket: %s", b)
		}
	}
}

// wantMessage reads sc until a message with text arrives: a socket the
// revocation did not name stays open and live.
func wantMessage(t testing.TB, sc *socketClient, text string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f, err := readLive(sc, time.Until(deadline))
		if err != nil {
			t.Fatalf("waiting for %q on a socket that should stay open: %v", text, err)
		}
		if f.Type == "message" && f.Message.Text == text {
			return
		}
	}
}

func (s *server) mustImbee(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.imbee(args...)
	if err != nil {
		t.Fatalf("imbee %v: %v", args, err)
	}
	return out
}

// TestAttackRevokedSocketsClose: each way of ending access closes the
// sockets opened with it (a link's web chat socket, an apikey's
// /chat/socket) within 2 s with 1008, a bot message sent right after does
// not reach them, and sockets opened with other access stay open. The
// CLI's revocations come from another process's store: the server learns
// of them from the revocations log alone.
func TestAttackRevokedSocketsClose(t *testing.T) {
	testkit.ForEachBackend(t, testAttackRevokedSocketsClose)
}

func testAttackRevokedSocketsClose(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	type revocation struct {
		name string
		// web: whether the revocation ends the web chat's socket; api:
		// the apikey socket's; app: the web app's (the user signed in).
		web, api, app bool
		// revoke ends the access of uniqueID (with link w, bot, in
		// corporate co, signed in to the app with appCookie) and returns
		// the corporate's credentials after it.
		revoke func(t *testing.T, co corporate, uniqueID string, w webChat, bot string) corporate
	}
	var appCookie *http.Cookie // the case's app session
	cases := []revocation{
		{"APILinkRevoke", true, false, false, func(t *testing.T, co corporate, _ string, w webChat, _ string) corporate {
			expect(t, s.post(t, "/token/revoke", co.auth, co.token, map[string]string{"url": w.link}), 200, 0)
			return co
		}},
		{"APIUserLinksRevoke", true, false, false, func(t *testing.T, co corporate, uid string, _ webChat, _ string) corporate {
			expect(t, s.post(t, "/token/revoke", co.auth, co.token, map[string]string{"virtual_user": uid}), 200, 0)
			return co
		}},
		{"CLILinkRevoke", true, false, false, func(t *testing.T, co corporate, _ string, w webChat, _ string) corporate {
			s.mustImbee(t, "link", "revoke", "--url", w.link)
			return co
		}},
		{"CLIUserLinksRevoke", true, false, false, func(t *testing.T, co corporate, uid string, _ webChat, _ string) corporate {
			s.mustImbee(t, "link", "revoke", "--corporate", fmt.Sprint(co.id), "--user", uid)
			return co
		}},
		{"CLIBotRevoke", true, false, false, func(t *testing.T, co corporate, _ string, _ webChat, bot string) corporate {
			s.mustImbee(t, "bot", "revoke", "--corporate", fmt.Sprint(co.id), "--bot", bot)
			return co
		}},
		{"APIUserRotate", false, true, true, func(t *testing.T, co corporate, uid string, _ webChat, _ string) corporate {
			expect(t, s.post(t, "/third_parties/user/rotate", co.auth, co.token, map[string]string{"uniqueIdSha": uid}), 200, 0)
			return co
		}},
		{"CLIUserRotate", false, true, true, func(t *testing.T, co corporate, uid string, _ webChat, _ string) corporate {
			s.mustImbee(t, "user", "rotate", "--corporate", fmt.Sprint(co.id), "--user", uid)
			return co
		}},
		{"CLICorporateRotate", false, true, false, func(t *testing.T, co corporate, _ string, _ webChat, _ string) corporate {
			var creds struct {
				Auth  string `json:"auth"`
				Token string `json:"corporate_token"`
			}
			if err := json.Unmarshal([]byte(s.mustImbee(t, "corporate", "rotate", "--id", fmt.Sprint(co.id), "--json")), &creds); err != nil {
				t.Fatal(err)
			}
			co.auth, co.token = creds.Auth, creds.Token
			return co
		}},
		{"CLICorporateDisable", true, true, true, func(t *testing.T, co corporate, _ string, _ webChat, _ string) corporate {
			s.mustImbee(t, "corporate", "disable", "--id", fmt.Sprint(co.id))
			return co
		}},
		{"AppSignOut", false, false, true, func(t *testing.T, co corporate, _ string, _ webChat, _ string) corporate {
			req, _ := http.NewRequest("POST", s.URL+"/app/signout", nil)
			req.AddCookie(appCookie)
			resp, err := browser(t).Do(req)
			if err != nil || resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign out: %v %v", resp, err)
			}
			resp.Body.Close()
			return co
		}},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			co := c
			bot := c.bot
			switch {
			case strings.HasPrefix(tc.name, "CLICorporate"):
				co = s.newCorporate(t, tc.name) // its own: the others' keep working
				bot = co.bot
			case tc.name == "CLIBotRevoke":
				var b struct {
					BotIDSha string `json:"bot_idsha"`
				}
				json.Unmarshal([]byte(s.mustImbee(t, "bot", "create", "--corporate", "1", "--name", "Doomed", "--json")), &b)
				bot = b.BotIDSha
			}
			uid := fmt.Sprintf("victim%d", i)
			w := openWebChat(t, s, co, bot, uid)
			u := s.newUser(t, co, uid) // the link made the user: this gives the apikey
			web := dialWeb(t, s, w)
			api := dialAPI(t, s, co.auth, u.apikey, w.conv)
			appCookie = signInApp(t, s, u)
			app := dialApp(t, s, appCookie, w.conv)

			co = tc.revoke(t, co, uid, w, bot)
			since := time.Now()
			after := "sent after the revocation " + tc.name
			sent := botSays(t, s, co, bot, w.conv, after)
			if sent.Code != 0 && !tc.api {
				// A revoked bot says nothing more: its user still may.
				sent = s.post(t, "/chat/message/send", co.auth, u.apikey, map[string]any{"conversationId": w.conv, "text": after})
			}
			if !tc.web || !tc.api || !tc.app {
				expect(t, sent, 200, 0) // or the check below proves nothing
			}

			for _, sock := range []struct {
				sc    *socketClient
				ended bool
			}{{web, tc.web}, {api, tc.api}, {app, tc.app}} {
				if sock.ended {
					wantPolicyClose(t, sock.sc, since, after)
				} else {
					wantMessage(t, sock.sc, after)
				}
			}
		})
	}
}

// TestAttackSessionExpiryClosesSocket: a web chat's socket closes when its
// session does, with 1008, even with nothing else happening.
func TestAttackSessionExpiryClosesSocket(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		s := startServer(t)
		c := s.demo()
		w := openWebChat(t, s, c, c.bot, "shortlived")
		// The session's end is its link's date_limit, days away: bring it
		// to two seconds from now, as if the day were ending.
		expires := time.Now().Add(2 * time.Second).Truncate(time.Second).Add(time.Second)
		db := s.openDB(t, false)
		if _, err := db.Exec(`UPDATE sessions SET expires_at = ` + fmt.Sprint(expires.Unix()) + ` WHERE link_id = (SELECT max(id) FROM links)`); err != nil {
			t.Fatal(err)
		}
		sock := dialWeb(t, s, w)
		wantPolicyClose(t, sock, expires, "never")
		if time.Now().Before(expires.Add(-time.Second)) {
			t.Errorf("the socket closed before its session's end")
		}
		if _, resp, err := dialWebRaw(s, w); err == nil || resp == nil || resp.StatusCode != 410 {
			t.Errorf("a socket after the session's end: %v %v, want 410", resp, err)
		}
	})
}

// TestAttackRevokeAcrossServers: two servers on one PostgreSQL database.
// A revocation answered by one closes the sockets held on the other within
// 2 s, and a bot message sent right after, through either server, never
// reaches them.
func TestAttackRevokeAcrossServers(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		d := newDB(t)
		a := startServerOn(t, d)
		b := startServerOn(t, d)
		c := a.demo()
		for i, via := range []*server{a, b} {
			t.Run(fmt.Sprintf("MessageThroughServer%d", i+1), func(t *testing.T) {
				uid := fmt.Sprintf("roaming%d", i)
				w := openWebChat(t, a, c, c.bot, uid)
				u := a.newUser(t, c, uid)
				web := dialWeb(t, b, w)
				api := dialAPI(t, b, c.auth, u.apikey, w.conv)

				expect(t, a.post(t, "/token/revoke", c.auth, c.token, map[string]string{"url": w.link}), 200, 0)
				since := time.Now()
				after := fmt.Sprintf("after the link's revocation %d", i)
				expect(t, botSays(t, via, c, c.bot, w.conv, after), 200, 0)
				wantPolicyClose(t, web, since, after)
				wantMessage(t, api, after) // the apikey socket was not opened with the link

				expect(t, a.post(t, "/third_parties/user/rotate", c.auth, c.token, map[string]string{"uniqueIdSha": uid}), 200, 0)
				since = time.Now()
				after = fmt.Sprintf("after the rotation %d", i)
				expect(t, botSays(t, via, c, c.bot, w.conv, after), 200, 0)
				wantPolicyClose(t, api, since, after)
			})
		}
	})
}

// TestAttackSocketCap: a sixth socket per web session, or per apikey, is
// refused before the upgrade (429); closing one lets the next in.
func TestAttackSocketCap(t *testing.T) { testkit.ForEachBackend(t, testAttackSocketCap) }

func testAttackSocketCap(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	w := openWebChat(t, s, c, c.bot, "hoarder")
	u := s.newUser(t, c, "hoarder")
	var webs, apis []*socketClient
	for range 5 {
		webs = append(webs, dialWeb(t, s, w))
		apis = append(apis, dialAPI(t, s, c.auth, u.apikey, w.conv))
	}

	_, resp, err := dialWebRaw(s, w)
	if err == nil || resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a sixth web chat socket: %v %v, want 429 with Retry-After", resp, err)
	}
	if b, _ := io.ReadAll(resp.Body); !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || !strings.Contains(string(b), `"error"`) {
		t.Errorf("the web chat's 429 is not its JSON error: %s", b)
	}
	url := strings.Replace(s.URL, "http://", "ws://", 1) + "/chat/socket?conversationId=" + w.conv
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, resp, err = websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {c.auth}, "X-WOOS-KEY": {u.apikey}}})
	if err == nil || resp == nil || resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a sixth apikey socket: %v %v, want 429 with Retry-After", resp, err)
	}
	var e envelope
	if b, _ := io.ReadAll(resp.Body); json.Unmarshal(b, &e) != nil || e.Code != 8 {
		t.Errorf("the sixth apikey socket's answer: %s, want code 8", b)
	}

	// Another user's and another session's sockets are not counted with
	// these.
	other := openWebChat(t, s, c, c.bot, "neighbour")
	dialWeb(t, s, other)

	// A socket closed frees its place (once the server has seen it go).
	webs[0].c.Close(websocket.StatusNormalClosure, "")
	apis[0].c.Close(websocket.StatusNormalClosure, "")
	// Each is dialled until it gets in, and kept: a socket that got in
	// holds the freed place, so dialling it again would be a sixth.
	var web, api *websocket.Conn
	var errWeb, errAPI error
	deadline := time.Now().Add(10 * time.Second)
	for web == nil || api == nil {
		if web == nil {
			web, _, errWeb = dialWebRaw(s, w)
		}
		if api == nil {
			dctx, dcancel := context.WithTimeout(context.Background(), 5*time.Second)
			api, _, errAPI = websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {c.auth}, "X-WOOS-KEY": {u.apikey}}})
			dcancel()
		}
		if time.Now().After(deadline) {
			t.Fatalf("closing a socket did not free its place: %v, %v", errWeb, errAPI)
		}
		time.Sleep(50 * time.Millisecond)
	}
	web.CloseNow()
	api.CloseNow()
}

// TestAttackCorporateDisable: a disabled corporate stops at once: its
// credentials answer code 2, its links' pages 410, its web sessions end;
// enabled again, it all works as before (links and credentials unchanged).
func TestAttackCorporateDisable(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		s := startServer(t)
		co := s.newCorporate(t, "Wayward")
		bystander := s.demo()
		l, err := s.client(t, co).NewToken(t.Context(), client.NewTokenRequest{VirtualUser: "fresh", BotIDSha: co.bot, Mail: "fresh@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		w := openWebChat(t, s, co, co.bot, "member")
		u := s.newUser(t, co, "member")
		chat := s.URL + "/w/" + w.conv

		s.mustImbee(t, "corporate", "disable", "--id", fmt.Sprint(co.id))
		if out := s.mustImbee(t, "corporate", "list"); !strings.Contains(out, "STATE") || !lineHas(out, "Wayward", "disabled") {
			t.Errorf("corporate list does not show the state:\n%s", out)
		}
		expect(t, s.post(t, "/third_parties/user/new", co.auth, co.token, map[string]string{"uniqueIdSha": "x"}), 401, 2)
		expect(t, s.post(t, "/chat/list", co.auth, u.apikey, map[string]any{}), 401, 2)
		dialRefused(t, s, http.Header{"Authorization": {co.auth}, "X-WOOS-KEY": {u.apikey}}, w.conv, "0", 401, 2)
		if code, html, _ := page(t, browser(t), "GET", l.URL); code != 410 {
			t.Errorf("a disabled corporate's link: %d %s", code, html)
		}
		if code, _, _ := page(t, browser(t), "POST", l.URL); code != 410 {
			t.Errorf("spending a disabled corporate's link: %d", code)
		}
		b := browser(t)
		chatURL, _ := neturl.Parse(chat)
		b.Jar.SetCookies(chatURL, []*http.Cookie{w.cookie})
		if code, _, _ := page(t, b, "GET", chat); code != 410 {
			t.Errorf("a disabled corporate's web session: %d", code)
		}
		// Other corporates are untouched.
		expect(t, s.post(t, "/third_parties/user/new", bystander.auth, bystander.token, map[string]string{"uniqueIdSha": "x"}), 200, 0)

		s.mustImbee(t, "corporate", "enable", "--id", fmt.Sprint(co.id))
		if out := s.mustImbee(t, "corporate", "list"); !lineHas(out, "Wayward", "enabled") {
			t.Errorf("corporate list after enable:\n%s", out)
		}
		expect(t, s.post(t, "/third_parties/user/new", co.auth, co.token, map[string]string{"uniqueIdSha": "x"}), 200, 0)
		if code, _, _ := page(t, browser(t), "GET", l.URL); code != 200 {
			t.Errorf("the link after enable: %d", code)
		}
		if code, _, _ := page(t, b, "GET", chat); code != 200 {
			t.Errorf("the web session after enable: %d", code)
		}
		dialWeb(t, s, w)
		dialAPI(t, s, co.auth, u.apikey, w.conv)
	})
}

// lineHas says whether a line of out has all of words.
func lineHas(out string, words ...string) bool {
	for line := range strings.SplitSeq(out, "\n") {
		all := true
		for _, w := range words {
			all = all && strings.Contains(line, w)
		}
		if all {
			return true
		}
	}
	return false
}

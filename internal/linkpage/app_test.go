package linkpage

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/clientaddr"
)

// form POSTs a form to path with the headers and cookies given.
func (e *env) form(t *testing.T, path string, v url.Values, header map[string]string, cookies ...*http.Cookie) response {
	t.Helper()
	return e.send(t, http.MethodPost, path, "application/x-www-form-urlencoded", v.Encode(), header, cookies...)
}

func appCookieOf(r response) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == appCookie {
			return c
		}
	}
	return nil
}

func signInForm(user, pass string) url.Values {
	return url.Values{"virtualUser": {user}, "pass": {pass}}
}

// signIn signs in and returns the session's cookie.
func (e *env) signIn(t *testing.T, user, pass string) *http.Cookie {
	t.Helper()
	r := e.form(t, "/app", signInForm(user, pass), nil)
	c := appCookieOf(r)
	if r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/app" || c == nil || c.Value == "" {
		t.Fatalf("sign in: status %d, Location %q, cookies %v; body:\n%s", r.StatusCode, r.Header.Get("Location"), r.Header.Values("Set-Cookie"), r.body)
	}
	return c
}

var signInFormShape = regexp.MustCompile(`(?s)<form method="post" action="/app".*name="virtualUser".*name="pass" type="password"`)

// TestAppSignIn: a user's virtualUser and pass sign in to the web app,
// which lists the user's chats and opens any of them with the chat's own
// calls; a wrong pass, another site's form, a conversation of others and a
// link's cookie get nothing; rotating the credentials, signing out and
// disabling the corporate end the session at once.
func TestAppSignIn(t *testing.T) {
	e := setup(t, func(c *Config) { c.PublicURL = "https://example.test" })
	ctx := context.Background()
	l := e.issue(t, "ana", 3)
	linkConv, linkCookie := e.spend(t, l.Token) // ana's 1:1 with the bot
	ana, _, err := e.store.RegisterUser(ctx, e.corp.ID, "ana", nil)
	if err != nil {
		t.Fatal(err)
	}
	bea, _, err := e.store.RegisterUser(ctx, e.corp.ID, "bea", nil)
	if err != nil {
		t.Fatal(err)
	}
	withBea, err := e.store.CreateConversation(ctx, imbee.ChatRequest{CorporateID: e.corp.ID, Type: imbee.ConversationChat,
		Creator: ana.IDSha, Contacts: []string{bea.IDSha}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.store.SendMessage(ctx, imbee.MessageRequest{CorporateID: e.corp.ID, ConversationID: withBea.PublicID, Sender: bea.IDSha, Text: "hi ana"}); err != nil {
		t.Fatal(err)
	}
	// A chat ana is not in.
	cal, _, _ := e.store.RegisterUser(ctx, e.corp.ID, "cal", nil)
	notHers, err := e.store.CreateConversation(ctx, imbee.ChatRequest{CorporateID: e.corp.ID, Type: imbee.ConversationChat,
		Creator: bea.IDSha, Contacts: []string{cal.IDSha}})
	if err != nil {
		t.Fatal(err)
	}

	home := e.do(t, http.MethodGet, "/app")
	wantStatus(t, home, http.StatusOK, "the app without a session")
	if !signInFormShape.MatchString(home.body) {
		t.Fatalf("GET /app without a session is not the sign-in form:\n%s", home.body)
	}
	for _, bad := range []url.Values{signInForm(ana.IDSha, bea.Pass), signInForm(ana.IDSha, ""), signInForm("nobody", ana.Pass), signInForm(ana.IDSha, ana.Pass+"x")} {
		r := e.form(t, "/app", bad, nil)
		wantStatus(t, r, http.StatusUnauthorized, "a wrong sign-in")
		if appCookieOf(r) != nil || !signInFormShape.MatchString(r.body) || !strings.Contains(r.body, `role="alert"`) {
			t.Errorf("a wrong sign-in (%v): cookies %v, want the form again with an error:\n%s", bad.Get("virtualUser"), r.Header.Values("Set-Cookie"), r.body)
		}
	}
	cross := e.form(t, "/app", signInForm(ana.IDSha, ana.Pass), map[string]string{"Origin": "https://evil.test", "Sec-Fetch-Site": "cross-site"})
	wantStatus(t, cross, http.StatusForbidden, "a sign-in posted from another site")
	if appCookieOf(cross) != nil {
		t.Error("a cross-site sign-in set a cookie")
	}

	cookie := e.signIn(t, ana.IDSha, ana.Pass)
	if !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/app" {
		t.Errorf("session cookie %+v: want HttpOnly, Secure (https public URL), SameSite=Lax, Path=/app", cookie)
	}
	if again := e.signIn(t, ana.IDSha, ana.Pass); again.Value == cookie.Value {
		t.Error("a second sign-in got the same session token: sessions are not rotated on sign-in")
	}

	list := e.do(t, http.MethodGet, "/app", cookie)
	wantStatus(t, list, http.StatusOK, "the chat list")
	for _, want := range []string{`href="/app/c/` + linkConv + `"`, botName, `href="/app/c/` + withBea.PublicID + `"`, "hi ana", `aria-label="1 unread"`, `action="/app/signout"`} {
		if !strings.Contains(list.body, want) {
			t.Errorf("the chat list lacks %q:\n%s", want, list.body)
		}
	}
	if strings.Contains(list.body, notHers.PublicID) {
		t.Error("the chat list shows a chat the user is not in")
	}

	// Starting a chat with a bot: the corporate's bots that are not
	// retired are offered; one already chatted with opens that chat.
	second, err := e.store.CreateBot(ctx, e.corp.ID, "Second Bot")
	if err != nil {
		t.Fatal(err)
	}
	retired, err := e.store.CreateBot(ctx, e.corp.ID, "Retired Bot")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.RevokeBot(ctx, e.corp.ID, retired.IDSha); err != nil {
		t.Fatal(err)
	}
	list = e.do(t, http.MethodGet, "/app", cookie)
	for _, b := range []imbee.Bot{e.bot, second} {
		if !strings.Contains(list.body, `name="bot" value="`+b.IDSha+`"`) || !strings.Contains(list.body, "Chat with "+b.Name) {
			t.Errorf("the chat list does not offer a chat with %s", b.Name)
		}
	}
	if strings.Contains(list.body, retired.IDSha) {
		t.Error("the chat list offers a chat with a retired bot")
	}
	start := func(bot string, header map[string]string) response {
		t.Helper()
		return e.form(t, "/app/chats", url.Values{"bot": {bot}}, header, cookie)
	}
	if r := start(e.bot.IDSha, nil); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/app/c/"+linkConv {
		t.Errorf("a chat with the bot the link opened: %d to %q, want 303 to that chat", r.StatusCode, r.Header.Get("Location"))
	}
	r := start(second.IDSha, nil)
	secondConv, _ := strings.CutPrefix(r.Header.Get("Location"), "/app/c/")
	if r.StatusCode != http.StatusSeeOther || secondConv == "" {
		t.Fatalf("a chat with a new bot: %d to %q", r.StatusCode, r.Header.Get("Location"))
	}
	if c, err := e.store.MemberChat(ctx, e.corp.ID, secondConv, ana.IDSha); err != nil || len(c.Members) != 2 || c.Members[1].IDSha != second.IDSha {
		t.Errorf("the new chat: %+v (%v)", c, err)
	}
	before, _ := e.store.Chats(ctx, e.corp.ID, ana.IDSha, 100)
	for _, bad := range []string{retired.IDSha, cal.IDSha, "nobody", ""} {
		wantStatus(t, start(bad, nil), http.StatusNotFound, "a chat with "+bad+" (retired bot, a user, unknown, none)")
	}
	wantStatus(t, start(second.IDSha, map[string]string{"Sec-Fetch-Site": "cross-site"}), http.StatusForbidden, "starting a chat from another site")
	if r := e.form(t, "/app/chats", url.Values{"bot": {second.IDSha}}, nil); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/app" {
		t.Errorf("starting a chat without a session: %d to %q, want 303 to the sign-in", r.StatusCode, r.Header.Get("Location"))
	}
	if after, _ := e.store.Chats(ctx, e.corp.ID, ana.IDSha, 100); len(after) != len(before) {
		t.Errorf("refused chat starts made chats: %d before, %d after", len(before), len(after))
	}

	base := "/app/c/" + withBea.PublicID
	// Reading marks the chat read: the unread count goes.
	read := func(body, contentType string, cookies ...*http.Cookie) response {
		t.Helper()
		return e.send(t, http.MethodPost, base+"/read", contentType, body, nil, cookies...)
	}
	wantStatus(t, read(`{"seq":1}`, "text/plain", cookie), http.StatusUnsupportedMediaType, "a read mark not in JSON")
	wantStatus(t, read(`{"seq":-1}`, "application/json", cookie), http.StatusBadRequest, "a negative read mark")
	wantStatus(t, read(`{}`, "application/json", cookie), http.StatusBadRequest, "a read mark without seq")
	wantStatus(t, read(`{"seq":1}`, "application/json"), http.StatusUnauthorized, "a read mark without a session")
	if r := read(`{"seq":99}`, "application/json", cookie); r.StatusCode != http.StatusOK || r.body != `{"read_seq":1}` {
		t.Errorf("a read mark past the last message: %d %s, want read_seq 1 (the last)", r.StatusCode, r.body)
	}
	if list := e.do(t, http.MethodGet, "/app", cookie); strings.Contains(list.body, `class="unread"`) {
		t.Errorf("the chat list after reading everything still shows unread:\n%s", list.body)
	}
	page := e.do(t, http.MethodGet, base, cookie)
	wantStatus(t, page, http.StatusOK, "an app chat")
	if !strings.Contains(page.body, `data-base="`+base+`"`) || !strings.Contains(page.body, `<main`) {
		t.Errorf("the app chat page:\n%s", page.body)
	}
	wantStatus(t, e.send(t, http.MethodPost, base+"/messages", "application/json", `{"text":"hello bea","clientMsgId":"a1"}`, nil, cookie), http.StatusOK, "send in an app chat")
	ms, _, _, _, err := e.store.Messages(ctx, e.corp.ID, withBea.PublicID, bea.IDSha, imbee.MessagePage{Limit: 10})
	if err != nil || len(ms) != 2 || ms[1].Text != "hello bea" || ms[1].Sender != ana.IDSha {
		t.Fatalf("bea's view after ana's send: %+v (%v)", ms, err)
	}
	hist := e.do(t, http.MethodGet, base+"/messages", cookie)
	wantStatus(t, hist, http.StatusOK, "an app chat's history")
	if !strings.Contains(hist.body, "hello bea") {
		t.Errorf("history = %s", hist.body)
	}

	// Others' chats and a link's cookie open nothing here.
	wantStatus(t, e.do(t, http.MethodGet, "/app/c/"+notHers.PublicID, cookie), http.StatusNotFound, "a chat the user is not in")
	wantStatus(t, e.do(t, http.MethodGet, "/app/c/"+notHers.PublicID+"/messages", cookie), http.StatusNotFound, "the history of a chat the user is not in")
	if r := e.form(t, "/app/c/"+notHers.PublicID+"/read", nil, nil, cookie); r.StatusCode != http.StatusNotFound {
		t.Errorf("a read mark on a chat the user is not in: %d", r.StatusCode)
	}
	wantStatus(t, e.do(t, http.MethodGet, "/app/c/"+linkConv+"/messages", linkCookie), http.StatusUnauthorized, "a link's cookie on the app")
	wantStatus(t, e.do(t, http.MethodGet, "/w/"+linkConv+"/messages", &http.Cookie{Name: cookieName, Value: cookie.Value}), http.StatusGone, "an app session as a link's cookie")

	// Rotating the user's credentials ends the session at once.
	rotated, err := e.store.RotateUser(ctx, e.corp.ID, "ana")
	if err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, http.MethodGet, "/app", cookie); !signInFormShape.MatchString(r.body) {
		t.Errorf("after a rotation the old session still shows the app:\n%s", r.body)
	}
	wantStatus(t, e.do(t, http.MethodGet, base+"/messages", cookie), http.StatusGone, "history after a rotation")
	if r := e.do(t, http.MethodGet, base, cookie); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/app" {
		t.Errorf("an app chat after a rotation: status %d Location %q, want 303 to the sign-in", r.StatusCode, r.Header.Get("Location"))
	}
	wantStatus(t, e.form(t, "/app", signInForm(ana.IDSha, ana.Pass), nil), http.StatusUnauthorized, "the old pass after a rotation")

	// Signing out ends the session; the cookie is cleared.
	cookie = e.signIn(t, ana.IDSha, rotated.Pass)
	out := e.form(t, "/app/signout", nil, nil, cookie)
	if c := appCookieOf(out); out.StatusCode != http.StatusSeeOther || c == nil || c.MaxAge >= 0 {
		t.Errorf("sign out: status %d, cookies %v", out.StatusCode, out.Header.Values("Set-Cookie"))
	}
	wantStatus(t, e.do(t, http.MethodGet, base+"/messages", cookie), http.StatusGone, "history after signing out")

	// Disabling the corporate ends its sessions and refuses sign-ins.
	cookie = e.signIn(t, ana.IDSha, rotated.Pass)
	if _, err := e.store.SetCorporateDisabled(ctx, e.corp.ID, true); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do(t, http.MethodGet, base+"/messages", cookie), http.StatusGone, "history while the corporate is disabled")
	wantStatus(t, e.form(t, "/app", signInForm(ana.IDSha, rotated.Pass), nil), http.StatusUnauthorized, "a sign-in while the corporate is disabled")
	if _, err := e.store.SetCorporateDisabled(ctx, e.corp.ID, false); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do(t, http.MethodGet, base+"/messages", cookie), http.StatusOK, "history once the corporate is enabled again")
}

// TestAppSignInLimits: failed sign-ins spend a per-user and a per-address
// limit, even when tried at once; past it the form refuses without checking
// the pass (the right one included); a success gives its try back; another
// address may still try the user, within the user's own limit.
func TestAppSignInLimits(t *testing.T) {
	clients, err := clientaddr.New([]string{"127.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	const burst = 3
	e := setup(t, func(c *Config) { c.SignInLimit, c.SignInBurst, c.Clients = 0.001, burst, clients })
	ctx := context.Background()
	ana, _, err := e.store.RegisterUser(ctx, e.corp.ID, "ana", nil)
	if err != nil {
		t.Fatal(err)
	}
	bea, _, err := e.store.RegisterUser(ctx, e.corp.ID, "bea", nil)
	if err != nil {
		t.Fatal(err)
	}
	from := func(addr string) map[string]string { return map[string]string{"X-Forwarded-For": addr} }

	// A success spends nothing.
	for range burst + 1 {
		if r := e.form(t, "/app", signInForm(ana.IDSha, ana.Pass), from("198.51.100.1")); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("a right sign-in: status %d", r.StatusCode)
		}
	}

	// Concurrent wrong tries for ana from one address: exactly burst are
	// checked.
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for range 4 * burst {
		wg.Go(func() {
			r := e.form(t, "/app", signInForm(ana.IDSha, "wrong"), from("198.51.100.2"))
			mu.Lock()
			got[r.StatusCode]++
			mu.Unlock()
			if r.StatusCode == http.StatusTooManyRequests && r.Header.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
	wg.Wait()
	if got[http.StatusUnauthorized] != burst || got[http.StatusTooManyRequests] != 3*burst {
		t.Fatalf("%d concurrent wrong tries: %v, want %d checked (401) and the rest refused (429)", 4*burst, got, burst)
	}
	// Past the user's limit, even the right pass is not checked.
	r := e.form(t, "/app", signInForm(ana.IDSha, ana.Pass), from("198.51.100.3"))
	wantStatus(t, r, http.StatusTooManyRequests, "the right pass past the user's limit")
	if appCookieOf(r) != nil || !signInFormShape.MatchString(r.body) {
		t.Errorf("past the limit: cookies %v, want the form again:\n%s", r.Header.Values("Set-Cookie"), r.body)
	}
	// The address that failed is limited for other users too; another
	// address may sign bea in.
	wantStatus(t, e.form(t, "/app", signInForm(bea.IDSha, bea.Pass), from("198.51.100.2")), http.StatusTooManyRequests, "another user from the limited address")
	if r := e.form(t, "/app", signInForm(bea.IDSha, bea.Pass), from("198.51.100.4")); r.StatusCode != http.StatusSeeOther {
		t.Errorf("bea from another address: status %d, want 303", r.StatusCode)
	}
}

// TestAppPushSubscribe: a subscription is taken only from a signed-in
// person, as JSON, for an https endpoint that is not a local or private
// address, with a real P-256 key and a 16-byte auth secret; the same
// endpoint again replaces it, and turning it off forgets it.
func TestAppPushSubscribe(t *testing.T) {
	e := setup(t)
	ctx := context.Background()
	ana, _, err := e.store.RegisterUser(ctx, e.corp.ID, "ana", nil)
	if err != nil {
		t.Fatal(err)
	}
	cookie := e.signIn(t, ana.IDSha, ana.Pass)
	const p256dh = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
	const auth = "tBHItJI5svbpez7KI4CCXg"
	call := func(path, body, contentType string, cookies ...*http.Cookie) response {
		t.Helper()
		return e.send(t, http.MethodPost, path, contentType, body, nil, cookies...)
	}
	sub := func(endpoint, key, secret string) string {
		return `{"endpoint":"` + endpoint + `","keys":{"p256dh":"` + key + `","auth":"` + secret + `"}}`
	}
	good := sub("https://push.example.net/s/1", p256dh, auth)
	wantStatus(t, call("/app/push", good, "application/json"), http.StatusUnauthorized, "a subscription without a session")
	wantStatus(t, call("/app/push", good, "text/plain", cookie), http.StatusUnsupportedMediaType, "a subscription not in JSON")
	for what, body := range map[string]string{
		"a loopback endpoint":    sub("https://127.0.0.1/s", p256dh, auth),
		"localhost":              sub("https://localhost/s", p256dh, auth),
		"a private endpoint":     sub("https://10.1.2.3/s", p256dh, auth),
		"the metadata address":   sub("https://169.254.169.254/s", p256dh, auth),
		"an http endpoint":       sub("http://push.example.net/s", p256dh, auth),
		"not a URL":              sub("push.example.net", p256dh, auth),
		"a key off the curve":    sub("https://push.example.net/s/1", "B"+strings.Repeat("A", 85), auth),
		"a short auth secret":    sub("https://push.example.net/s/1", p256dh, "tBHItJI5svbpez7K"),
		"no keys":                `{"endpoint":"https://push.example.net/s/1"}`,
		"not a PushSubscription": `["https://push.example.net/s/1"]`,
	} {
		wantStatus(t, call("/app/push", body, "application/json", cookie), http.StatusBadRequest, what)
	}
	targets := func() int {
		t.Helper()
		bea, _, _ := e.store.RegisterUser(ctx, e.corp.ID, "bea", nil)
		conv, err := e.store.CreateConversation(ctx, imbee.ChatRequest{CorporateID: e.corp.ID, Creator: bea.IDSha, Type: imbee.ConversationChat, Contacts: []string{ana.IDSha}})
		if err != nil {
			t.Fatal(err)
		}
		ts, err := e.store.PushTargets(ctx, e.corp.ID, conv.PublicID, bea.IDSha)
		if err != nil {
			t.Fatal(err)
		}
		return len(ts)
	}
	if n := targets(); n != 0 {
		t.Fatalf("%d push targets after refused subscriptions", n)
	}
	for range 2 {
		if r := call("/app/push", good, "application/json", cookie); r.StatusCode != http.StatusOK || r.body != `{"subscribed":true}` {
			t.Fatalf("subscribe: %d %s", r.StatusCode, r.body)
		}
	}
	if n := targets(); n != 1 {
		t.Errorf("%d push targets after subscribing one browser twice, want 1", n)
	}
	if r := call("/app/push/off", `{"endpoint":"https://push.example.net/s/1"}`, "application/json", cookie); r.StatusCode != http.StatusOK || r.body != `{"subscribed":false}` {
		t.Fatalf("unsubscribe: %d %s", r.StatusCode, r.body)
	}
	if n := targets(); n != 0 {
		t.Errorf("%d push targets after turning notifications off", n)
	}
	sw := e.do(t, http.MethodGet, "/app/sw.js")
	if sw.StatusCode != http.StatusOK || sw.Header.Get("Service-Worker-Allowed") != "/app/" || !strings.Contains(sw.body, `addEventListener("push"`) {
		t.Errorf("the service worker: %d %v", sw.StatusCode, sw.Header)
	}
}

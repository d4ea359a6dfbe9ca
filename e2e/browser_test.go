package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/imbee/imbee/client"
)

// TestBrowserChat drives the web chat in a real (headless) Chromium: a link
// taken out of a mail opens its landing page without spending a use, the
// button opens the chat, a message typed there reaches the bot's webhook
// (signed), the bot's answer shows up live over the WebSocket, a reload keeps
// the history and spends nothing, and the link's uses run out in other
// browsers. The page must log no CSP violation and throw no exception.
//
// It needs Chromium (Debian's package "chromium"): without it the test is
// skipped, or fails when CI is set.
func TestBrowserChat(t *testing.T) {
	chrome := needChromium(t, "the web chat")
	// Everything below has its own, shorter timeout; this one only stops a
	// hang from eating the whole go test timeout.
	testCtx, cancelTest := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelTest()

	box := newMailbox(t, "", "")
	box.Up()
	s := startServer(t, box.flags()...)
	c := s.demo()
	bot := newEchoBot(t, s, c)
	bot.expectForgeryRejected(t)

	// A link for two uses, sent by mail; the test opens the mailed one.
	e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com", "max_retries": 2})
	expect(t, e, 200, 0)
	issued := e.str("url")
	link := linkInText.FindString(box.WaitFor(t, 1, 10*time.Second)[0].Parse(t).Text)
	if link == "" || link != issued {
		t.Fatalf("link in the mail = %q, want %q", link, issued)
	}
	uses := func(want int, when string) {
		t.Helper()
		st := s.linkStatus(t, c, link)
		if got := num(st.Body["uses"]); got != want {
			t.Fatalf("%s: /token/status says uses %d, want %d: %s", when, got, want, st.Raw)
		}
	}

	// First browser: the person who got the mail.
	b1 := newBrowser(t, testCtx, chrome)
	landing := b1.navigate(link)
	if landing != http.StatusOK {
		t.Fatalf("GET of the mailed link: HTTP %d, want 200", landing)
	}
	if h1 := b1.text("landing page heading", "h1"); !strings.Contains(h1, "Demo Bot") {
		t.Fatalf("the landing page does not name the bot: h1 = %q", h1)
	}
	uses(0, "after the landing page loaded")
	b1.checkAxe("the landing page")

	b1.do("click the landing page's button", chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	b1.do("wait for the chat page", chromedp.WaitVisible(chromedp.CSS("#chat")))
	uses(1, "after the button")
	conv := b1.eval("conversation of the page", `document.getElementById("chat").dataset.conversation`)
	me := b1.eval("user of the page", `document.getElementById("chat").dataset.me`)
	if !strings.HasPrefix(b1.eval("location", "location.pathname"), "/w/"+conv) {
		t.Fatalf("the chat page is not at /w/%s", conv)
	}
	// The socket says "ready" once it has caught up: send after that, so
	// that the answer has to come live over it.
	b1.waitFrame(`wait for the socket's "ready"`, 1, func(f socketFrame) bool { return f.Type == "ready" })
	b1.checkAxe("the web chat")

	// A mark that a reload would wipe: the answer must come without one.
	b1.eval("set the no-reload mark", `window.__imbeeNoReload = "yes"`)
	b1.do("type and send the message",
		chromedp.SendKeys(chromedp.CSS("#text"), "hello bot"),
		chromedp.Click(chromedp.CSS("#send-button")),
	)
	ev := bot.waitEvent(t, func(ev webhookEvent) bool { return ev.Data.Text == "hello bot" }, 10*time.Second)
	if ev.Type != "message.created" || ev.Data.ConversationID != conv || ev.Data.Sender != me || ev.Data.SenderIsBot || ev.Data.Seq != 1 {
		t.Errorf("webhook event for the typed message = %+v (conversation %s, user %s)", ev, conv, me)
	}
	b1.poll(`wait for "echo: hello bot" in #log`, `document.getElementById("log").textContent.includes("echo: hello bot")`)
	if mark := b1.eval("read the no-reload mark", `String(window.__imbeeNoReload)`); mark != "yes" {
		t.Fatalf("the page was reloaded to show the answer (mark = %q)", mark)
	}
	b1.waitFrame("the answer on the socket", 1, func(f socketFrame) bool {
		return f.Type == "message" && f.Message != nil && f.Message.Text == "echo: hello bot"
	})
	want := []chatBubble{{Class: "mine", Text: "hello bot"}, {Class: "theirs", Text: "echo: hello bot"}}
	if got := b1.log(); !equalBubbles(got, want) {
		t.Errorf("#log = %+v, want %+v", got, want)
	}

	// A reload shows the history again and spends nothing.
	b1.do("reload", chromedp.Reload())
	b1.do("wait for the chat page after the reload", chromedp.WaitVisible(chromedp.CSS("#chat")))
	b1.poll("wait for the history after the reload", `document.querySelectorAll("#log li").length >= 2`)
	if got := b1.log(); !equalBubbles(got, want) {
		t.Errorf("#log after a reload = %+v, want %+v", got, want)
	}
	if mark := b1.eval("read the no-reload mark", `String(window.__imbeeNoReload)`); mark != "undefined" {
		t.Errorf("the reload did not reload (mark = %q)", mark)
	}
	uses(1, "after a reload")

	// A second browser, with no cookie: it spends the second and last use.
	b2 := newBrowser(t, testCtx, chrome)
	if st := b2.navigate(link); st != http.StatusOK {
		t.Fatalf("second browser, GET of the link: HTTP %d, want 200", st)
	}
	if p := b2.text("landing page", "main"); !strings.Contains(p, "once more") {
		t.Errorf("landing page with one use left: %q", p)
	}
	b2.do("second browser: click the button", chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	b2.do("second browser: wait for the chat page", chromedp.WaitVisible(chromedp.CSS("#chat")))
	b2.poll("second browser: wait for the history", `document.querySelectorAll("#log li").length >= 2`)
	uses(2, "after the second browser")

	// A third one finds the link used up.
	b3 := newBrowser(t, testCtx, chrome)
	if st := b3.navigate(link); st != http.StatusGone {
		t.Errorf("third browser, GET of the used-up link: HTTP %d, want 410", st)
	}
	if p := b3.text("used-up page", "main"); !strings.Contains(p, "used up") {
		t.Errorf("the used-up link's page does not say so: %q", p)
	}
	if n := b3.eval("buttons on the used-up page", `String(document.querySelectorAll("button").length)`); n != "0" {
		t.Errorf("the used-up page has %s buttons", n)
	}
	uses(2, "after the third browser")
	b3.checkAxe("the used-up link's page")
	if st := b3.navigate(s.URL + "/l/imbl_nothing"); st != http.StatusNotFound {
		t.Errorf("an unknown link: HTTP %d, want 404", st)
	}
	b3.checkAxe("the unknown link's page")

	// A link past its end, and a link withdrawn by the corporate.
	expired := s.issueLink(t, c, "eva", 1)
	if _, err := s.openDB(t, false).Exec(`UPDATE links SET expires_at = ` + fmt.Sprint(time.Now().Add(-time.Minute).Unix()) + ` WHERE id = (SELECT max(id) FROM links)`); err != nil {
		t.Fatal(err)
	}
	if st := b3.navigate(expired); st != http.StatusGone {
		t.Errorf("an expired link: HTTP %d, want 410", st)
	}
	if p := b3.text("expired page", "main"); !strings.Contains(p, "expired") {
		t.Errorf("the expired link's page does not say so: %q", p)
	}
	b3.checkAxe("the expired link's page")
	withdrawn := s.issueLink(t, c, "wes", 1)
	expect(t, s.post(t, "/token/revoke", c.auth, c.token, map[string]any{"url": withdrawn}), 200, 0)
	if st := b3.navigate(withdrawn); st != http.StatusGone {
		t.Errorf("a withdrawn link: HTTP %d, want 410", st)
	}
	if p := b3.text("withdrawn page", "main"); !strings.Contains(p, "withdrawn") {
		t.Errorf("the withdrawn link's page does not say so: %q", p)
	}
	b3.checkAxe("the withdrawn link's page")

	for _, b := range []*chromeTab{b1, b2, b3} {
		b.checkConsole()
	}
	bot.check(t)
}

// needChromium is Chromium's binary; without one the test is skipped
// (saying that what is NOT tested), or fails when CI is set.
func needChromium(t *testing.T, what string) string {
	t.Helper()
	chrome := chromiumPath()
	if chrome == "" {
		msg := "Chromium not found (neither chromium in PATH nor /usr/bin/chromium): " + what + " is NOT tested in a browser. Install it: apt-get install -y chromium"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	return chrome
}

// chromiumPath is Chromium's binary: chromium in PATH, else Debian's path.
func chromiumPath() string {
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	return ""
}

// chromeTab is a tab of its own headless Chromium (its own profile, so no
// cookie is shared with another), and what its console said.
type chromeTab struct {
	t      *testing.T
	name   string
	ctx    context.Context
	output *syncBuffer // Chromium's stdout and stderr

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
	frames  []socketFrame // received on the page's WebSockets
}

// socketFrame is a frame of the chat's socket.
type socketFrame struct {
	Type    string `json:"type"`
	Message *struct {
		Seq  int64  `json:"seq"`
		Text string `json:"text"`
	} `json:"message"`
}

// waitFrame waits until the page's sockets have received n frames that
// match accepts.
func (b *chromeTab) waitFrame(what string, n int, match func(socketFrame) bool) {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b.mu.Lock()
		got := 0
		for _, f := range b.frames {
			if match(f) {
				got++
			}
		}
		frames := fmt.Sprintf("%+v", b.frames)
		b.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			b.fail(what, fmt.Errorf("not within 30 s; frames so far: %s", frames))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newBrowser starts a Chromium and opens a tab; it is closed at the end of
// the test.
func newBrowser(t *testing.T, parent context.Context, chrome string) *chromeTab {
	t.Helper()
	b := &chromeTab{t: t, name: fmt.Sprintf("browser %d", browsersStarted.Add(1)), output: &syncBuffer{}}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests may run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1024, 768),
		chromedp.CombinedOutput(b.output),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(parent, opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() { cancelCtx(); cancelAlloc() })
	b.ctx = ctx

	// Start the browser with no deadline of its own (the first run binds
	// the browser's life to its context), but do not wait forever.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("%s: start Chromium (%s): %v\n%s", b.name, chrome, err, b.output.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: Chromium (%s) did not start within 60 s\n%s", b.name, chrome, b.output.String())
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, m)
			b.mu.Unlock()
		}
	}()
	frames := chromedp.Events(ctx, network.WebSocketFrameReceived)
	go func() {
		for f, err := range frames {
			if err != nil {
				return
			}
			if f.Response == nil || f.Response.Opcode != 1 {
				continue
			}
			var fr socketFrame
			if json.Unmarshal(f.Response.PayloadData, &fr) != nil {
				continue
			}
			b.mu.Lock()
			b.frames = append(b.frames, fr)
			b.mu.Unlock()
		}
	}()
	return b
}

var browsersStarted atomic.Int32

// step is a context for one step: every wait ends with a clear message.
func (b *chromeTab) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, 30*time.Second)
}

func (b *chromeTab) fail(what string, err error) {
	b.t.Helper()
	b.t.Fatalf("%s: %s: %v\nconsole: %v", b.name, what, err, b.consoleMessages())
}

func (b *chromeTab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// navigate loads url and returns the HTTP status of the document.
func (b *chromeTab) navigate(url string) int64 {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		b.fail("navigate to the link", err)
	}
	if resp == nil {
		b.fail("navigate to the link", fmt.Errorf("no response"))
	}
	return resp.Status
}

func (b *chromeTab) text(what, css string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.fail(what, err)
	}
	return s
}

// eval evaluates a JavaScript expression whose value is a string.
func (b *chromeTab) eval(what, expr string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		b.fail(what, err)
	}
	return s
}

// poll waits until a JavaScript expression is true.
func (b *chromeTab) poll(what, expr string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(25*time.Second), chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		dump, cancel := context.WithTimeout(b.ctx, 2*time.Second)
		defer cancel()
		html, _ := chromedp.Run(dump, chromedp.Evaluate[string](`document.body ? document.body.innerHTML : ""`))
		b.fail(what, fmt.Errorf("%v\npage: %s", err, html))
	}
}

// chatBubble is a bubble of the chat's #log.
type chatBubble struct {
	Class string `json:"class"`
	Text  string `json:"text"`
}

func (b *chromeTab) log() []chatBubble {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	l, err := chromedp.Run(ctx, chromedp.Evaluate[[]chatBubble](
		`Array.from(document.querySelectorAll("#log li"), li => ({class: li.className, text: li.firstChild ? li.firstChild.textContent : ""}))`))
	if err != nil {
		b.fail("read #log", err)
	}
	return l
}

func equalBubbles(a, b []chatBubble) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (b *chromeTab) consoleMessages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.console {
		out = append(out, fmt.Sprintf("%s (%s %s)", m, m.Source, m.URL))
	}
	return out
}

// checkConsole fails the test on a CSP violation or an uncaught exception
// in the console; other errors (such as the 410 of a used-up link, which
// Chromium logs as a failed load) are only logged.
func (b *chromeTab) checkConsole() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.console {
		switch {
		case strings.Contains(m.Text, "Content Security Policy") || strings.Contains(m.Text, "Content-Security-Policy"):
			b.t.Errorf("%s: CSP violation in the console: %s (%s)", b.name, m.Text, m.URL)
		case m.IsException():
			b.t.Errorf("%s: uncaught exception in the console: %s (%s:%d)", b.name, m.Text, m.URL, m.Line)
		case m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning:
			b.t.Logf("%s: console %s: %s (%s %s)", b.name, m.Type, m.Text, m.Source, m.URL)
		}
	}
}

// webhookEvent is the payload of a bot's webhook.
type webhookEvent struct {
	ID        string `json:"-"` // webhook-id
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      struct {
		ConversationID string `json:"conversationId"`
		Seq            int64  `json:"seq"`
		Sender         string `json:"sender"`
		SenderIsBot    bool   `json:"sender_is_bot"`
		Text           string `json:"text"`
		CreatedAt      string `json:"created_at"`
	} `json:"data"`
}

// echoBot is a bot's webhook receiver: it checks each request's signature
// (401 when wrong), takes each webhook-id once, and answers every message
// that is not from a bot (the server does not send a bot its own messages;
// the check is for safety) with "echo: <text>" through /bot/message/send,
// keyed by the webhook-id so that a retry sends nothing twice.
type echoBot struct {
	*httptest.Server
	s      *server
	c      corporate
	secret string

	mu       sync.Mutex
	events   []webhookEvent
	seen     map[string]bool
	failures []string // bad signatures, bad payloads, failed replies
	replies  sync.WaitGroup
}

func newEchoBot(t *testing.T, s *server, c corporate) *echoBot {
	t.Helper()
	b := &echoBot{s: s, c: c, seen: map[string]bool{}}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(func() {
		b.replies.Wait()
		b.Close()
	})
	hook, err := s.client(t, c).SetBotWebhook(t.Context(), client.SetBotWebhookRequest{BotIDSha: c.bot, URL: b.URL + "/hook"})
	if err != nil {
		t.Fatalf("/bot/webhook: %v", err)
	}
	b.mu.Lock()
	b.secret = hook.Secret
	b.mu.Unlock()
	if b.secret == "" {
		t.Fatalf("/bot/webhook gave no secret: %+v", hook)
	}
	return b
}

func (b *echoBot) failf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = append(b.failures, fmt.Sprintf(format, args...))
}

// checkWebhookSignature checks a Standard Webhooks signature: one of the
// space-separated "v1,<base64>" in webhook-signature is the HMAC-SHA256 of
// id "." timestamp "." body, and the timestamp is recent.
func checkWebhookSignature(secret string, h http.Header, body []byte) error {
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fmt.Errorf("missing webhook headers: id %q timestamp %q signature %q", id, ts, sigs)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %v", ts, err)
	}
	if d := time.Since(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %q is %v off", ts, d)
	}
	// Standard Webhooks: the secret is whsec_<base64 of the key>.
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		return fmt.Errorf("secret %q is not whsec_<base64>", secret[:min(len(secret), 8)])
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := mac.Sum(nil)
	for sig := range strings.FieldsSeq(sigs) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return fmt.Errorf("no valid signature in %q", sigs)
}

func (b *echoBot) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil || r.Method != http.MethodPost || r.URL.Path != "/hook" {
		b.failf("bad webhook request %s %s: %v", r.Method, r.URL.Path, err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	secret := b.secret
	b.mu.Unlock()
	if err := checkWebhookSignature(secret, r.Header, body); err != nil {
		b.failf("webhook %s: %v", r.Header.Get("webhook-id"), err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ev webhookEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		b.failf("webhook payload %q: %v", body, err)
		http.Error(w, "bad payload", http.StatusBadRequest)
		return
	}
	ev.ID = r.Header.Get("webhook-id")
	b.mu.Lock()
	dup := b.seen[ev.ID]
	if !dup {
		b.seen[ev.ID] = true
		b.events = append(b.events, ev)
	}
	b.mu.Unlock()
	if !dup && ev.Type == "message.created" && !ev.Data.SenderIsBot {
		b.replies.Go(func() { b.reply(ev) })
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, "{}")
}

// reply answers ev through the API, as a bot's server would.
func (b *echoBot) reply(ev webhookEvent) {
	body, _ := json.Marshal(map[string]string{
		"bot_idsha": b.c.bot, "conversationId": ev.Data.ConversationID,
		"text": "echo: " + ev.Data.Text, "clientMsgId": ev.ID,
	})
	req, _ := http.NewRequest(http.MethodPost, b.s.URL+"/bot/message/send", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", b.c.auth)
	req.Header.Set("X-WOOS-KEY", b.c.token)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		b.failf("reply to %s: %v", ev.ID, err)
		return
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Code int `json:"code"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(raw, &env) != nil || env.Code != 0 {
		b.failf("reply to %s: HTTP %d %s", ev.ID, resp.StatusCode, raw)
	}
}

// expectForgeryRejected checks that the receiver answers 401 to a request
// signed with another secret, and forgets that failure.
func (b *echoBot) expectForgeryRejected(t *testing.T) {
	t.Helper()
	body := []byte(`{"type":"message.created","timestamp":"2026-01-01T00:00:00Z","data":{"conversationId":"x","seq":1,"sender":"x","sender_is_bot":false,"text":"forged"}}`)
	id, ts := "msg_forged", strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte("not-the-secret"))
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, b.URL+"/hook", bytes.NewReader(body))
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	if resp.StatusCode != http.StatusUnauthorized || len(b.failures) != 1 || len(b.events) != 0 {
		t.Fatalf("a forged webhook: HTTP %d, failures %q, events %+v; want 401 and no event", resp.StatusCode, b.failures, b.events)
	}
	b.failures = nil
}

// waitEvent waits for a validly signed event that match accepts.
func (b *echoBot) waitEvent(t *testing.T, match func(webhookEvent) bool, within time.Duration) webhookEvent {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b.mu.Lock()
		events, failures := append([]webhookEvent(nil), b.events...), append([]string(nil), b.failures...)
		b.mu.Unlock()
		for _, ev := range events {
			if match(ev) {
				return ev
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook got no such event within %v; events %+v; failures %q\nserver logs:\n%s", within, events, failures, b.s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check fails the test on any bad request or failed reply, and on an
// answer to a bot's message.
func (b *echoBot) check(t *testing.T) {
	t.Helper()
	b.replies.Wait()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.failures {
		t.Errorf("webhook receiver: %s", f)
	}
	// One message was typed; the bot is not told of its own answer.
	if len(b.events) != 1 {
		t.Errorf("the webhook got %d events, want 1 (the typed message): %+v", len(b.events), b.events)
	}
}

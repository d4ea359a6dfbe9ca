package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/serviceworker"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/imbee/imbee/client"
)

// TestBrowserPush: in a real Chromium, a signed-in person turns
// notifications on from the keyboard; with no page of the app open, a
// message for them becomes a notification shown by the app's service
// worker, which opens the chat.
//
// Chromium's PushManager subscribes only through its vendor's push service,
// which this machine cannot reach: the test stands in at that edge, on
// both sides of it. PushManager.subscribe answers with the test's push
// service and keys (what the vendor would have handed out; everything
// else — permission, registration, the POST to /app/push — is the app's
// own code), and what the server pushes there is decrypted with the
// browser's keys and handed to the browser's service worker through the
// DevTools protocol (ServiceWorker.deliverPushMessage), as the vendor's
// connection to the browser would.
func TestBrowserPush(t *testing.T) {
	chrome := needChromium(t, "web push")
	testCtx, cancelTest := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelTest()

	s := startServer(t, "--allow-private-webhooks") // the push service is on this machine
	scene := newPushScene(t, s)
	c, pia, bea, conv, svc, keys := scene.c, scene.pia, scene.bea, scene.conv, scene.svc, scene.keys

	b := newBrowser(t, testCtx, chrome)
	if _, err := chromedp.CallBrowser(b.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
		Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"}, Setting: cdpbrowser.PermissionSettingGranted, Origin: s.URL}); err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
	b.navigate(s.URL + "/app")
	if st := b.signIn(pia.idsha, pia.pass); st != http.StatusOK {
		t.Fatalf("sign in: HTTP %d", st)
	}
	b.poll("wait for the chat list", `!!document.querySelector("ul.chats")`)
	serverKey := b.eval("the server's VAPID key", `document.getElementById("notify").dataset.key`)

	// The vendor's side of subscribe: Chromium's own checks (an active
	// service worker, a valid application server key) answer at once; past
	// them it waits for the vendor, and the test answers instead, with its
	// endpoint and keys. The key the page asked for is kept to be checked.
	b.do("stand in for the vendor's push service", chromedp.Evaluate[chromedp.Void](`(() => {
		const chromium = PushManager.prototype.subscribe;
		PushManager.prototype.subscribe = function (opts) {
			const vendor = new Promise(resolve => setTimeout(resolve, 2000));
			return Promise.race([chromium.call(this, opts), vendor]).then(() => {
				window.askedKey = btoa(String.fromCharCode(...new Uint8Array(opts.applicationServerKey))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
				const sub = `+keys.subscription(svc.URL+"/push/pia")+`;
				return { endpoint: sub.endpoint, toJSON: () => sub };
			});
		};
	})()`))
	b.do("focus the notifications button", chromedp.Focus(chromedp.CSS("#notify")))
	b.do("press Enter on it", chromedp.KeyEvent(kb.Enter))
	b.poll("wait for notifications to be on", `document.getElementById("notify-status").textContent === document.getElementById("notify").dataset.on`)
	if asked := b.eval("the key the page subscribed with", "window.askedKey"); asked != serverKey {
		t.Errorf("the page subscribed with application server key %q, want the server's %q", asked, serverKey)
	}
	b.checkConsole()

	// No page of the app is open: the message is pushed.
	b.do("leave the app", chromedp.Navigate("about:blank"))
	registrations := chromedp.Events(b.ctx, serviceworker.WorkerRegistrationUpdated)
	if _, err := chromedp.Call(b.ctx, serviceworker.Enable, struct{}{}); err != nil {
		t.Fatalf("ServiceWorker.enable: %v", err)
	}
	var registration serviceworker.RegistrationID
	for ev, err := range registrations {
		if err != nil {
			t.Fatalf("the service worker's registration: %v", err)
		}
		for _, r := range ev.Registrations {
			if r.ScopeURL == s.URL+"/app/" && !r.IsDeleted {
				registration = r.RegistrationID
			}
		}
		if registration != "" {
			break
		}
	}
	expect(t, s.post(t, "/chat/message/send", c.auth, bea.apikey, map[string]any{"conversationId": conv, "text": "are you there?"}), 200, 0)
	got := svc.waitPush(t, 1)
	checkVAPID(t, got.header, serverKey, svc.URL)
	plain, err := keys.decrypt(got.body)
	if err != nil {
		t.Fatalf("the browser's keys do not decrypt the push: %v", err)
	}
	if _, err := chromedp.Call(b.ctx, serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{
		Origin: s.URL, RegistrationID: registration, Data: string(plain)}); err != nil {
		t.Fatalf("deliver the push to the service worker: %v", err)
	}

	// The service worker showed a notification that opens the chat.
	b.navigate(s.URL + "/app")
	type notification struct{ Title, Body, URL string }
	var shown []notification
	for deadline := time.Now().Add(30 * time.Second); len(shown) == 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no notification shown within 30 s of the push")
		}
		js := b.evalAsync("the notifications shown", `navigator.serviceWorker.getRegistration("/app/").then(r => r.getNotifications()).then(ns => JSON.stringify(ns.map(n => ({title: n.title, body: n.body, url: n.data && n.data.url}))))`)
		if err := json.Unmarshal([]byte(js), &shown); err != nil {
			t.Fatalf("notifications %q: %v", js, err)
		}
	}
	if len(shown) != 1 || shown[0].Body != "are you there?" || shown[0].URL != "/app/c/"+conv || shown[0].Title == "" {
		t.Errorf("notifications shown: %+v, want one saying \"are you there?\" that opens /app/c/%s", shown, conv)
	}
	b.checkConsole()
}

// signIn fills the app's sign-in form from the keyboard and submits it:
// the HTTP status of the page it leads to.
func (b *chromeTab) signIn(virtualUser, pass string) int64 {
	b.t.Helper()
	b.do("type the user id", chromedp.Evaluate[chromedp.Void](`document.getElementById("virtualUser").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#virtualUser"), virtualUser+kb.Tab))
	return b.follow("type the pass and press Enter", chromedp.SendKeys(chromedp.CSS("#pass"), pass+kb.Enter))
}

// evalAsync evaluates a JavaScript expression whose value is a promise of
// a string.
func (b *chromeTab) evalAsync(what, expr string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail(what, err)
	}
	return s
}

// TestBrowserScrollBack: a chat opens on its latest 50 messages; the
// button for older ones, pressed from the keyboard, brings the rest in
// order above them and goes away when there is nothing older.
func TestBrowserScrollBack(t *testing.T) {
	chrome := needChromium(t, "the web app")
	testCtx, cancelTest := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelTest()

	s := startServer(t)
	c := s.demo()
	pia, bea := s.newUser(t, c, "pia"), s.newUser(t, c, "bea")
	conv := s.createChat(t, c, bea, client.Contact{IDSha: pia.idsha})
	for i := 1; i <= 60; i++ {
		expect(t, s.post(t, "/chat/message/send", c.auth, bea.apikey, map[string]any{"conversationId": conv, "text": fmt.Sprintf("m%d", i)}), 200, 0)
	}

	b := newBrowser(t, testCtx, chrome)
	b.navigate(s.URL + "/app")
	if st := b.signIn(pia.idsha, pia.pass); st != http.StatusOK {
		t.Fatalf("sign in: HTTP %d", st)
	}
	b.navigate(s.URL + "/app/c/" + conv)
	b.poll("the latest page of history", `document.querySelectorAll("#log li").length === 50 && !document.getElementById("older").hidden`)
	texts := func() []string {
		var out []string
		for _, l := range b.log() {
			out = append(out, l.Text)
		}
		return out
	}
	if got := texts(); got[0] != "m11" || got[49] != "m60" {
		t.Fatalf("the first page shows %s … %s, want m11 … m60", got[0], got[49])
	}
	b.do("focus the button for older messages", chromedp.Focus(chromedp.CSS("#older")))
	b.do("press Enter on it", chromedp.KeyEvent(kb.Enter))
	b.poll("the older messages", `document.querySelectorAll("#log li").length === 60 && document.getElementById("older").hidden`)
	got := texts()
	for i, text := range got {
		if text != fmt.Sprintf("m%d", i+1) {
			t.Fatalf("after scrolling back the chat shows %v, want m1 … m60 in order", got)
		}
	}
	b.checkAxe("an app chat scrolled back")
	b.checkConsole()
}

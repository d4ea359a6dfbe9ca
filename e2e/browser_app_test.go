package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/imbee/imbee/client"
)

// follow runs actions that make the page navigate (a form submitted, a
// link followed) and waits for the new page: its HTTP status.
func (b *chromeTab) follow(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.fail(what, err)
	}
	if resp == nil {
		b.fail(what, fmt.Errorf("no response"))
	}
	return resp.Status
}

// EnvScreenshots, set to a directory (relative: to the repository), makes
// TestBrowserApp save the README's screenshots there as it goes.
const EnvScreenshots = "IMBEE_SCREENSHOTS"

// screenshot saves what the tab shows as name.png in EnvScreenshots' directory,
// when it is set.
func (b *chromeTab) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv(EnvScreenshots)
	if dir == "" {
		return
	}
	ctx, cancel := b.step()
	defer cancel()
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", dir) // relative to the repository, not to e2e/
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// TestBrowserApp drives the web app in a real (headless) Chromium, from
// the keyboard: a wrong pass shows the form again with its error; the right
// one shows the user's chats; a chat opens, a message typed there gets the
// demo bot's answer live; rotating the user's credentials ends the session
// (the chat says so, the app asks to sign in again); the new pass signs in
// and signing out ends it; on a phone's screen the pages fit; past the
// limit on failed sign-ins even the right pass is refused. axe-core checks
// every page; the pages log no CSP violation and throw no exception.
func TestBrowserApp(t *testing.T) {
	chrome := needChromium(t, "the web app")
	testCtx, cancelTest := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelTest()

	s := startServer(t, "--web-signin-burst", "3")
	c := s.demo()
	pia := s.newUser(t, c, "pia")
	conv := s.createChat(t, c, pia, client.Contact{BotIDSha: c.bot})

	b := newBrowser(t, testCtx, chrome)
	if st := b.navigate(s.URL + "/app"); st != http.StatusOK {
		t.Fatalf("GET /app: HTTP %d, want 200", st)
	}
	b.checkAxe("the sign-in form")
	b.screenshot("app-signin")
	signIn := func(pass string) int64 {
		t.Helper()
		return b.signIn(pia.idsha, pass)
	}
	if st := signIn("imbp_wrong"); st != http.StatusUnauthorized {
		t.Errorf("a wrong pass: HTTP %d, want 401", st)
	}
	b.poll("the sign-in error", `!!document.querySelector("[role=alert]") && document.querySelector("[role=alert]").textContent.includes("do not match")`)
	if v := b.eval("the user id kept in the form", `document.getElementById("virtualUser").value`); v != pia.idsha {
		t.Errorf("after a wrong pass the form lost the user id: %q", v)
	}
	b.checkAxe("the sign-in form with its error")

	if st := signIn(pia.pass); st != http.StatusOK {
		t.Errorf("the right pass: HTTP %d, want 200 (after the 303)", st)
	}
	b.poll("wait for the chat list", `!!document.querySelector("ul.chats")`)
	if list := b.text("the chat list", "ul.chats"); !strings.Contains(list, "Demo Bot") {
		t.Fatalf("the chat list does not show the chat with the demo bot: %q", list)
	}
	b.checkAxe("the chat list")
	b.screenshot("app-chats")

	b.do("focus the chat's entry", chromedp.Focus(chromedp.CSS(`a[href="/app/c/`+conv+`"]`)))
	b.follow("open the chat from the keyboard", chromedp.KeyEvent(kb.Enter))
	b.do("wait for the chat page", chromedp.WaitVisible(chromedp.CSS("#chat")))
	b.waitFrame(`wait for the socket's "ready"`, 1, func(f socketFrame) bool { return f.Type == "ready" })
	b.checkAxe("an app chat")
	b.do("type a message and press Enter", chromedp.SendKeys(chromedp.CSS("#text"), "hello from the app"+kb.Enter))
	b.waitFrame("the bot's answer on the socket", 1, func(f socketFrame) bool {
		return f.Type == "message" && f.Message != nil && strings.HasPrefix(f.Message.Text, "You said: hello from the app")
	})
	b.poll("wait for the answer in #log", `document.getElementById("log").textContent.includes("You said: hello from the app")`)
	b.screenshot("app-chat")
	// What the page showed, it marked read (the page stays open until the
	// server has the mark: leaving at once could cancel its call), and the
	// list shows no unread count.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		chats, err := s.client(t, c).AsUser(pia.apikey).ListChats(t.Context(), client.ListChatsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		unread := int64(-1)
		for _, ch := range chats.Chats {
			if ch.ConversationID == conv {
				unread = ch.Unread
			}
		}
		if unread == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the chat is still unread (%d) 30 s after the chat page showed its messages", unread)
		}
	}
	b.navigate(s.URL + "/app")
	if unread := b.eval("the chat's unread count", `String(!!document.querySelector('a[href="/app/c/`+conv+`"] .unread'))`); unread != "false" {
		t.Errorf("the chat list shows the chat unread after it was read:\n%s", b.text("the chat list", "ul.chats"))
	}
	b.navigate(s.URL + "/app/c/" + conv)
	b.waitFrame(`wait for the socket's "ready" again`, 2, func(f socketFrame) bool { return f.Type == "ready" })

	// Rotation ends the session: the open chat says so, the app asks to
	// sign in again, and the old pass no longer works.
	rotated, err := s.client(t, c).RotateUser(t.Context(), client.RotateUserRequest{UniqueIDSha: "pia"})
	if err != nil {
		t.Fatal(err)
	}
	b.poll("wait for the chat to say the session ended", `!document.getElementById("ended").hidden`)
	b.checkAxe("an app chat that has ended")
	b.navigate(s.URL + "/app/c/" + conv)
	b.poll("wait for the sign-in form", `!!document.getElementById("pass")`)
	if st := signIn(pia.pass); st != http.StatusUnauthorized {
		t.Errorf("the pass from before the rotation: HTTP %d, want 401", st)
	}
	if st := signIn(rotated.Pass); st != http.StatusOK {
		t.Errorf("the new pass: HTTP %d, want 200", st)
	}
	b.poll("wait for the chat list", `!!document.querySelector("ul.chats")`)

	b.follow("sign out", chromedp.Click(chromedp.CSS(`form[action="/app/signout"] button`)))
	b.poll("wait for the sign-in form after signing out", `!!document.getElementById("pass")`)
	if st := b.navigate(s.URL + "/app/c/" + conv); st != http.StatusOK || !strings.Contains(b.eval("location", "location.pathname"), "/app") {
		t.Errorf("an app chat after signing out: HTTP %d at %s", st, b.eval("location", "location.pathname"))
	}
	if has := b.eval("the sign-in form after signing out", `String(!!document.getElementById("pass"))`); has != "true" {
		t.Error("after signing out, an app chat does not lead to the sign-in form")
	}

	// On a phone's screen every page fits its width (nothing to scroll
	// sideways) and passes axe-core.
	b.do("a phone's screen", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	fits := func(page string) {
		t.Helper()
		if w := b.eval(page+": widths", `document.documentElement.scrollWidth + " " + document.documentElement.clientWidth`); func() bool {
			var doc, win int
			fmt.Sscan(w, &doc, &win)
			return doc > win || win == 0
		}() {
			t.Errorf("%s on a phone: the page is wider than the screen (scroll width, layout width: %s)", page, w)
		}
		b.checkAxe(page + " on a phone")
	}
	b.navigate(s.URL + "/app")
	fits("the sign-in form")
	if st := signIn(rotated.Pass); st != http.StatusOK {
		t.Fatalf("sign in on a phone: HTTP %d", st)
	}
	fits("the chat list")
	b.navigate(s.URL + "/app/c/" + conv)
	b.poll("the history on a phone", `document.querySelectorAll("#log li").length >= 2`)
	fits("an app chat")
	b.follow("sign out on a phone", chromedp.Click(chromedp.CSS(`form[action="/app/signout"] button`)))

	// The limit on failed sign-ins holds (the server allows 3 at once):
	// two failed above, the third is checked, past it even the right pass
	// is refused unchecked.
	if st := signIn("imbp_wrong_again"); st != http.StatusUnauthorized {
		t.Errorf("the third failed sign-in: HTTP %d, want 401", st)
	}
	if st := signIn(rotated.Pass); st != http.StatusTooManyRequests {
		t.Errorf("the right pass past the limit: HTTP %d, want 429", st)
	}
	b.poll("the form says to wait", `document.querySelector("[role=alert]").textContent.includes("Too many")`)
	b.checkAxe("the sign-in form past the limit")
	b.checkConsole()
}

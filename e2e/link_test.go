package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/testkit"
)

func TestLink(t *testing.T) { testkit.ForEachBackend(t, testLink) }

func testLink(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	issue := func(t *testing.T, who string, uses int) string {
		l, err := s.client(t, c).NewToken(t.Context(), client.NewTokenRequest{VirtualUser: who, BotIDSha: c.bot, Mail: who + "@example.com", MaxRetries: uses})
		if err != nil {
			t.Fatalf("issue a link for %s: %v", who, err)
		}
		return l.URL
	}

	t.Run("LandingSpendsNothing", func(t *testing.T) {
		url := issue(t, "scanned", 1)
		b := browser(t)
		for range 5 { // a mail scanner fetching the link, again and again
			code, html, resp := page(t, b, "GET", url)
			if code != 200 || !strings.Contains(html, "Demo Bot") || !strings.Contains(html, `method="post"`) {
				t.Fatalf("landing: %d %s", code, html)
			}
			if resp.Header.Get("Referrer-Policy") != "same-origin" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("landing headers: %v", resp.Header)
			}
			if code, _, _ := page(t, b, "HEAD", url); code != 200 {
				t.Fatalf("HEAD: %d", code)
			}
		}
		if code, _, _ := page(t, b, "POST", url); code != 303 {
			t.Fatalf("the one use was spent by GETs: POST got %d", code)
		}
	})

	t.Run("PostOpensTheSameChatAsChatCreate", func(t *testing.T) {
		url := issue(t, "visitor", 3)
		b := browser(t)
		code, _, resp := page(t, b, "POST", url)
		if code != 303 {
			t.Fatalf("POST: %d", code)
		}
		loc := resp.Header.Get("Location")
		if !strings.HasPrefix(loc, "/w/") {
			t.Fatalf("Location %q", loc)
		}
		var cookie *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "imbee_session" {
				cookie = ck
			}
		}
		if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != loc {
			t.Fatalf("session cookie: %+v", cookie)
		}
		// The user's own /chat/create with the bot gives that conversation.
		u := s.newUser(t, c, "visitor")
		e := s.post(t, "/chat/create", c.auth, u.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": c.bot}}})
		expect(t, e, 200, 0)
		if "/w/"+e.str("conversationId") != loc || e.Body["previously_created"] != true {
			t.Errorf("chat/create gave %s, the link led to %s", e.Raw, loc)
		}
		// The chat page works, and keeps working on reload without spending.
		for range 3 {
			code, html, _ := page(t, b, "GET", s.URL+loc)
			if code != 200 || !strings.Contains(html, "Demo Bot") || !strings.Contains(html, "Demo Corporate") {
				t.Fatalf("chat page: %d %s", code, html)
			}
		}
		_, html, _ := page(t, b, "GET", url)
		if !strings.Contains(html, "opened 2 more times") {
			t.Errorf("reloads spent uses: %s", html)
		}
		// Someone else's browser, without the cookie, gets no chat.
		if code, _, _ := page(t, browser(t), "GET", s.URL+loc); code != 401 {
			t.Errorf("chat without a session: %d", code)
		}
	})

	t.Run("UsedUpIs410", func(t *testing.T) {
		url := issue(t, "once", 1)
		if code, _, _ := page(t, browser(t), "POST", url); code != 303 {
			t.Fatal(code)
		}
		for _, m := range []string{"GET", "POST", "HEAD"} {
			code, html, _ := page(t, browser(t), m, url)
			if code != 410 || (m == "GET" && !strings.Contains(html, "used up")) {
				t.Errorf("%s of a used-up link: %d %s", m, code, html)
			}
		}
		// Used up, the pair's next /token/new makes a new link.
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "once", "bot_idsha": c.bot, "mail": "once@example.com"})
		if e.str("url") == url || e.Body["previously_created"] != false {
			t.Errorf("a used-up link was returned again: %s", e.Raw)
		}
	})

	t.Run("UnknownIs404", func(t *testing.T) {
		for _, m := range []string{"GET", "POST"} {
			if code, _, _ := page(t, browser(t), m, s.URL+"/l/imbl_nothing"); code != 404 {
				t.Errorf("%s unknown link: %d", m, code)
			}
		}
	})

	t.Run("RevokedIs410AndEndsItsSessions", func(t *testing.T) {
		url := issue(t, "revoked", 5)
		b := browser(t)
		_, _, resp := page(t, b, "POST", url)
		chat := s.URL + resp.Header.Get("Location")
		if out, err := s.imbee("link", "revoke", "--url", url); err != nil {
			t.Fatal(out, err)
		}
		if code, html, _ := page(t, browser(t), "GET", url); code != 410 || !strings.Contains(html, "withdrawn") {
			t.Errorf("revoked link: %d %s", code, html)
		}
		if code, _, _ := page(t, browser(t), "POST", url); code != 410 {
			t.Errorf("revoked link POST: %d", code)
		}
		if code, html, _ := page(t, b, "GET", chat); code != 410 || !strings.Contains(html, "ended") {
			t.Errorf("chat of a revoked link: %d %s", code, html)
		}
	})

	t.Run("RepeatReturnsTheSameLinkWithItsOwnLimits", func(t *testing.T) {
		first := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "repeat", "bot_idsha": c.bot, "mail": "r@example.com", "max_retries": 3})
		expect(t, first, 200, 0)
		later := time.Now().UTC().AddDate(0, 2, 0).Format(time.DateOnly)
		again := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "repeat", "bot_idsha": c.bot, "celullar": "+34612345678", "max_retries": 7, "date_limit": later})
		expect(t, again, 200, 0)
		if again.str("url") != first.str("url") || again.Body["max_retries"] != 3.0 || again.str("date_limit") != first.str("date_limit") || again.Body["previously_created"] != true {
			t.Errorf("repeat: %s, first: %s", again.Raw, first.Raw)
		}
	})
}

// TestDeliveries checks that each /token/new records one delivery per
// channel, in the same transaction as its link, and that the worker sends
// them through the (logging) transport without logging the link.
func TestDeliveries(t *testing.T) { testkit.ForEachBackend(t, testDeliveries) }

func testDeliveries(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "both", "bot_idsha": c.bot, "mail": "both@example.com", "celullar": "+34 612 345 678"})
	expect(t, e, 200, 0)
	e2 := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "both", "bot_idsha": c.bot, "mail": "both@example.com"})
	expect(t, e2, 200, 0)
	// A refused request queues nothing.
	expect(t, s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "both", "bot_idsha": "nope", "mail": "x@example.com"}), 404, 7)

	keys, _, err := secret.LoadOrCreateKeyFile(s.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), s.db, keys, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds, err := st.Deliveries(context.Background(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, d := range ds {
			got[fmt.Sprintf("%s %s %s", d.Recipient.Channel, d.Recipient.Address, d.Status)]++
		}
		sent := imbee.DeliverySent
		want := map[string]int{"mail both@example.com " + string(sent): 2, "sms +34612345678 " + string(sent): 1}
		if fmt.Sprint(got) == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %v, want %v", got, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	token := e.str("url")[strings.LastIndex(e.str("url"), "/")+1:]
	if strings.Contains(s.logs.String(), token) {
		t.Error("the logs contain a link token")
	}
	if !strings.Contains(s.logs.String(), "b***@example.com") {
		t.Error("the logging transport did not record the mail delivery")
	}
}

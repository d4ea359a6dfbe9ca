package linkpage

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/realtime"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/testkit"
	"github.com/imbee/imbee/internal/writes"
)

type env struct {
	store  *store.Store
	clock  *testkit.Clock
	srv    *httptest.Server
	client *http.Client
	corp   imbee.Corporate
	bot    imbee.Bot
}

const (
	corpName = "Acme Widgets"
	botName  = "Helper Bot"
)

// setup serves the pages over a new SQLite store with one corporate and
// bot; opts adjust the pages' configuration.
func setup(t *testing.T, opts ...func(*Config)) *env {
	t.Helper()
	ctx := context.Background()
	clock := testkit.NewClock()
	key := make([]byte, secret.KeySize)
	rand.Read(key)
	keys, err := secret.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "imbee.db"), keys, store.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	corp, _, err := s.CreateCorporate(ctx, corpName, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	bot, err := s.CreateBot(ctx, corp.ID, botName)
	if err != nil {
		t.Fatal(err)
	}
	hub := realtime.NewHub()
	cfg := Config{PublicURL: "http://example.test", Now: clock.Now, Events: hub}
	for _, o := range opts {
		o(&cfg)
	}
	h := New(s, writes.New(s, writes.Effects{Events: hub}, nil), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	return &env{store: s, clock: clock, srv: srv, client: client, corp: corp, bot: bot}
}

// issue creates a link for user uniqueID, valid for a day.
func (e *env) issue(t *testing.T, uniqueID string, maxUses int) imbee.Link {
	t.Helper()
	exp := e.clock.Now().Add(24 * time.Hour)
	l, err := e.store.IssueLink(context.Background(), imbee.LinkRequest{
		CorporateID: e.corp.ID,
		UniqueID:    uniqueID,
		BotIDSha:    e.bot.IDSha,
		MaxUses:     maxUses,
		DateLimit:   exp.Add(-time.Second).Format(time.DateOnly),
		ExpiresAt:   exp,
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

type response struct {
	*http.Response
	body string
}

func (e *env) do(t *testing.T, method, path string, cookies ...*http.Cookie) response {
	t.Helper()
	return e.send(t, method, path, "", "", nil, cookies...)
}

// send makes one request with a body of contentType (none when empty),
// extra headers and cookies, and returns the response with its body read.
func (e *env) send(t *testing.T, method, path, contentType, body string, header map[string]string, cookies ...*http.Cookie) response {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	for _, c := range cookies {
		req.AddCookie(c)
	}
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{res, string(b)}
}

func (e *env) uses(t *testing.T, token string) int {
	t.Helper()
	p, err := e.store.LinkByToken(context.Background(), token)
	if err != nil {
		t.Fatal(err)
	}
	return p.Link.Uses
}

func wantStatus(t *testing.T, r response, status int, what string) {
	t.Helper()
	if r.StatusCode != status {
		t.Errorf("%s: status %d, want %d; body:\n%s", what, r.StatusCode, status, r.body)
	}
}

func sessionCookie(r response) *http.Cookie {
	for _, c := range r.Cookies() {
		if c.Name == "imbee_session" {
			return c
		}
	}
	return nil
}

// spend POSTs the link and returns the conversation it opens and its cookie.
func (e *env) spend(t *testing.T, token string) (string, *http.Cookie) {
	t.Helper()
	r := e.do(t, http.MethodPost, "/l/"+token)
	if r.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST link: status %d, want 303; body:\n%s", r.StatusCode, r.body)
	}
	loc := r.Header.Get("Location")
	conv, ok := strings.CutPrefix(loc, "/w/")
	if !ok || conv == "" {
		t.Fatalf("POST link: Location %q, want /w/{conversation}", loc)
	}
	c := sessionCookie(r)
	if c == nil {
		t.Fatalf("POST link: no imbee_session cookie in %v", r.Header.Values("Set-Cookie"))
	}
	return conv, c
}

func TestLanding(t *testing.T) {
	t.Run("GetAndHeadSpendNothing", func(t *testing.T) {
		e := setup(t)
		l := e.issue(t, "ana", 2)
		for range 3 {
			r := e.do(t, http.MethodGet, "/l/"+l.Token)
			wantStatus(t, r, http.StatusOK, "GET link")
			if !strings.Contains(r.body, botName) {
				t.Errorf("landing page does not name the bot %q:\n%s", botName, r.body)
			}
			if !strings.Contains(r.body, `method="post"`) {
				t.Error("landing page has no POST form")
			}
			wantStatus(t, e.do(t, http.MethodHead, "/l/"+l.Token), http.StatusOK, "HEAD link")
		}
		if n := e.uses(t, l.Token); n != 0 {
			t.Errorf("uses after GET and HEAD = %d, want 0", n)
		}
	})

	t.Run("SecurityHeaders", func(t *testing.T) {
		e := setup(t)
		l := e.issue(t, "ana", 1)
		for _, path := range []string{"/l/" + l.Token, "/l/imbl_unknown", "/w/nope", "/elsewhere"} {
			r := e.do(t, http.MethodGet, path)
			if got := r.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("%s: Cache-Control %q, want no-store", path, got)
			}
			if got := r.Header.Get("Referrer-Policy"); got != "same-origin" {
				t.Errorf("%s: Referrer-Policy %q, want same-origin", path, got)
			}
			if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("%s: X-Content-Type-Options %q, want nosniff", path, got)
			}
			if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%s: Content-Type %q, want text/html", path, r.Header.Get("Content-Type"))
			}
		}
	})

	t.Run("UnknownToken", func(t *testing.T) {
		e := setup(t)
		wantStatus(t, e.do(t, http.MethodGet, "/l/imbl_unknown"), http.StatusNotFound, "GET unknown link")
		wantStatus(t, e.do(t, http.MethodPost, "/l/imbl_unknown"), http.StatusNotFound, "POST unknown link")
		wantStatus(t, e.do(t, http.MethodGet, "/nothing/here"), http.StatusNotFound, "GET other path")
	})

	t.Run("ExpiredLink", func(t *testing.T) {
		e := setup(t)
		l := e.issue(t, "ana", 3)
		conv, cookie := e.spend(t, l.Token)
		wantStatus(t, e.do(t, http.MethodGet, "/w/"+conv, cookie), http.StatusOK, "chat before expiry")
		e.clock.Advance(24*time.Hour + time.Minute)
		wantStatus(t, e.do(t, http.MethodGet, "/l/"+l.Token), http.StatusGone, "GET expired link")
		wantStatus(t, e.do(t, http.MethodPost, "/l/"+l.Token), http.StatusGone, "POST expired link")
		wantStatus(t, e.do(t, http.MethodGet, "/w/"+conv, cookie), http.StatusGone, "chat after expiry")
		if n := e.uses(t, l.Token); n != 1 {
			t.Errorf("uses = %d, want 1", n)
		}
	})

	t.Run("UsedUpLink", func(t *testing.T) {
		e := setup(t)
		l := e.issue(t, "ana", 1)
		e.spend(t, l.Token)
		wantStatus(t, e.do(t, http.MethodPost, "/l/"+l.Token), http.StatusGone, "POST used-up link")
		wantStatus(t, e.do(t, http.MethodGet, "/l/"+l.Token), http.StatusGone, "GET used-up link")
		if n := e.uses(t, l.Token); n != 1 {
			t.Errorf("uses = %d, want 1", n)
		}
	})

	t.Run("RevokedLink", func(t *testing.T) {
		e := setup(t)
		l := e.issue(t, "ana", 3)
		conv, cookie := e.spend(t, l.Token)
		if _, err := e.store.RevokeLink(context.Background(), 0, l.Token); err != nil {
			t.Fatal(err)
		}
		wantStatus(t, e.do(t, http.MethodGet, "/l/"+l.Token), http.StatusGone, "GET revoked link")
		wantStatus(t, e.do(t, http.MethodPost, "/l/"+l.Token), http.StatusGone, "POST revoked link")
		wantStatus(t, e.do(t, http.MethodGet, "/w/"+conv, cookie), http.StatusGone, "chat of revoked link")
	})
}

func TestSpend(t *testing.T) {
	t.Run("PostOpensChat", func(t *testing.T) {
		e := setup(t)
		l := e.issue(t, "ana", 2)
		conv, cookie := e.spend(t, l.Token)
		if n := e.uses(t, l.Token); n != 1 {
			t.Errorf("uses after POST = %d, want 1", n)
		}
		if !cookie.HttpOnly {
			t.Error("session cookie is not HttpOnly")
		}
		if cookie.Path != "/w/"+conv {
			t.Errorf("cookie Path %q, want /w/%s", cookie.Path, conv)
		}
		if cookie.Secure {
			t.Error("cookie is Secure on an http public URL")
		}
		if cookie.SameSite != http.SameSiteLaxMode {
			t.Errorf("cookie SameSite = %v, want Lax", cookie.SameSite)
		}
		if cookie.Value == "" || strings.Contains(cookie.Value, l.Token) {
			t.Errorf("cookie value %q", cookie.Value)
		}

		// The conversation is the user's 1:1 chat with the bot.
		u, _, err := e.store.RegisterUser(context.Background(), e.corp.ID, "ana", nil)
		if err != nil {
			t.Fatal(err)
		}
		cv, err := e.store.CreateConversation(context.Background(), imbee.ChatRequest{
			CorporateID: e.corp.ID, Creator: u.IDSha, Type: imbee.ConversationChat, Contacts: []string{e.bot.IDSha},
		})
		if err != nil {
			t.Fatal(err)
		}
		if cv.PublicID != conv {
			t.Errorf("redirected to /w/%s, the user's chat with the bot is %s", conv, cv.PublicID)
		}

		r := e.do(t, http.MethodGet, "/w/"+conv, cookie)
		wantStatus(t, r, http.StatusOK, "chat with cookie")
		if !strings.Contains(r.body, botName) || !strings.Contains(r.body, corpName) {
			t.Errorf("chat page does not show %q and %q:\n%s", botName, corpName, r.body)
		}
		wantStatus(t, e.do(t, http.MethodGet, "/w/"+conv), http.StatusUnauthorized, "chat without cookie")
		wantStatus(t, e.do(t, http.MethodGet, "/w/"+conv, &http.Cookie{Name: "imbee_session", Value: "imbs_forged"}),
			http.StatusGone, "chat with an unknown cookie")

		// A second POST opens another session on the same chat.
		conv2, cookie2 := e.spend(t, l.Token)
		if conv2 != conv || cookie2.Value == cookie.Value {
			t.Errorf("second spend: conv %s cookie same %v; want conv %s and a new cookie", conv2, cookie2.Value == cookie.Value, conv)
		}
		wantStatus(t, e.do(t, http.MethodGet, "/w/"+conv, cookie), http.StatusOK, "first session after a second spend")
	})

	t.Run("CookieOfAnotherChat", func(t *testing.T) {
		e := setup(t)
		convA, cookieA := e.spend(t, e.issue(t, "ana", 1).Token)
		convB, _ := e.spend(t, e.issue(t, "bea", 1).Token)
		if convA == convB {
			t.Fatal("two users share a chat")
		}
		wantStatus(t, e.do(t, http.MethodGet, "/w/"+convB, cookieA), http.StatusGone, "chat B with chat A's cookie")
	})

	t.Run("SecureCookieOnHTTPS", func(t *testing.T) {
		e := setup(t)
		h := New(e.store, writes.New(e.store, writes.Effects{}, nil), Config{PublicURL: "https://chat.example.test", Now: e.clock.Now}, slog.New(slog.NewTextHandler(io.Discard, nil)))
		l := e.issue(t, "ana", 1)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/l/"+l.Token, nil))
		if rec.Code != http.StatusSeeOther {
			t.Fatalf("status %d", rec.Code)
		}
		cs := rec.Result().Cookies()
		if len(cs) != 1 || !cs[0].Secure {
			t.Errorf("cookies %v: want one Secure cookie", cs)
		}
	})
}

func BenchmarkRenderLanding(b *testing.B) {
	h := &Handler{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/l/x", nil)
	r.Header.Set("Accept-Language", "es")
	p := imbee.LinkPage{BotName: "Bot", CorporateName: "Corp", CorporateLanguage: "en", Link: imbee.Link{MaxUses: 5, Uses: 2, DateLimit: "2026-12-01"}}
	b.ReportAllocs()
	for b.Loop() {
		w.Body.Reset()
		h.render(w, 200, "landing", newLandingPage(r, p))
	}
}

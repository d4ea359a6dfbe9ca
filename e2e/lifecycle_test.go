package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/imbee/imbee/internal/testkit"
)

// TestCredentialLifecycle: a user's apikey rotated through the API (and
// the CLI) is refused at once and the new one works; a revoked bot takes no
// new links, chats or messages and its links end; all of a user's links can
// be revoked at once.
func TestCredentialLifecycle(t *testing.T) { testkit.ForEachBackend(t, testCredentialLifecycle) }

func testCredentialLifecycle(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	ana := s.newUser(t, c, "ana")
	bea := s.newUser(t, c, "bea")
	chat := map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": bea.idsha}}}
	expect(t, s.post(t, "/chat/create", c.auth, ana.apikey, chat), 200, 0)

	// Rotation through the API.
	e := s.post(t, "/third_parties/user/rotate", c.auth, c.token, map[string]string{"uniqueIdSha": "ana"})
	expect(t, e, 200, 0)
	if e.str("virtualUser") != ana.idsha || e.str("apikey") == "" || e.str("apikey") == ana.apikey || e.str("pass") == ana.pass {
		t.Fatalf("rotate = %s", e.Raw)
	}
	expect(t, s.post(t, "/chat/create", c.auth, ana.apikey, chat), 401, 3)
	expect(t, s.post(t, "/chat/create", c.auth, e.str("apikey"), chat), 200, 0)
	// A repeat of user/new now hands out the new values.
	r := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "ana"})
	if r.str("apikey") != e.str("apikey") || r.str("pass") != e.str("pass") {
		t.Errorf("user/new after rotation returns %s, want the new secrets", r.Raw)
	}
	expect(t, s.post(t, "/third_parties/user/rotate", c.auth, c.token, map[string]string{"uniqueIdSha": "nobody"}), 404, 7)
	other := s.newCorporate(t, "Neighbour")
	expect(t, s.post(t, "/third_parties/user/rotate", other.auth, other.token, map[string]string{"uniqueIdSha": "ana"}), 404, 7)

	// Rotation with the CLI.
	out, err := s.imbee("user", "rotate", "--corporate", "1", "--user", "bea", "--json")
	if err != nil || !strings.Contains(out, `"apikey"`) {
		t.Fatalf("user rotate: %v %s", err, out)
	}
	expect(t, s.post(t, "/chat/create", c.auth, bea.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": ana.idsha}}}), 401, 3)

	// Revoking all of a user's links.
	link1 := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "carla", "bot_idsha": c.bot, "mail": "c@example.com"})
	expect(t, link1, 200, 0)
	rv := s.post(t, "/token/revoke", c.auth, c.token, map[string]string{"virtual_user": "carla"})
	expect(t, rv, 200, 0)
	if rv.Body["revoked_links"] != 1.0 {
		t.Errorf("revoke all = %s", rv.Raw)
	}
	if code := status(t, link1.str("url")); code != http.StatusGone {
		t.Errorf("a link of a user whose links were revoked answers %d, want 410", code)
	}
	expect(t, s.post(t, "/token/revoke", c.auth, c.token, map[string]string{"virtual_user": "nobody"}), 404, 7)

	// Revoking the bot.
	link2 := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "dora", "bot_idsha": c.bot, "mail": "d@example.com"})
	expect(t, link2, 200, 0)
	out, err = s.imbee("bot", "revoke", "--corporate", "1", "--bot", c.bot)
	if err != nil || !strings.Contains(out, "1 links ended") {
		t.Fatalf("bot revoke: %v %s", err, out)
	}
	if code := status(t, link2.str("url")); code != http.StatusGone {
		t.Errorf("a revoked bot's link answers %d, want 410", code)
	}
	expect(t, s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "dora", "bot_idsha": c.bot, "mail": "d@example.com"}), 404, 7)
	expect(t, s.post(t, "/chat/create", c.auth, e.str("apikey"), map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": c.bot}}}), 404, 7)
	expect(t, s.post(t, "/bot/message/send", c.auth, c.token, map[string]any{"bot_idsha": c.bot, "conversationId": "x", "text": "hi"}), 404, 7)
	expect(t, s.post(t, "/bot/webhook", c.auth, c.token, map[string]any{"bot_idsha": c.bot, "url": "https://bot.example.com/hook"}), 404, 7)
	if _, err := s.imbee("bot", "revoke", "--corporate", "1", "--bot", c.bot); err == nil {
		t.Error("revoking a revoked bot succeeded")
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := (&http.Client{Transport: validated(t, http.DefaultTransport)}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRotationAcrossServers: an apikey rotated through one server is
// refused by another sharing the PostgreSQL database on its next request.
func TestRotationAcrossServers(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		d := newDB(t)
		a := startProcess(t, d)
		c := a.demo()
		u := a.newUser(t, c, "ana")
		peer := a.newUser(t, c, "bea")
		b := startProcess(t, d)
		chat := map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": peer.idsha}}}
		expect(t, b.post(t, "/chat/create", c.auth, u.apikey, chat), 200, 0)
		e := a.post(t, "/third_parties/user/rotate", c.auth, c.token, map[string]string{"uniqueIdSha": "ana"})
		expect(t, e, 200, 0)
		expect(t, b.post(t, "/chat/create", c.auth, u.apikey, chat), 401, 3)
		expect(t, b.post(t, "/chat/create", c.auth, e.str("apikey"), chat), 200, 0)
		if _, err := a.imbee("corporate", "rotate", "--id", "1", "--json"); err != nil {
			t.Fatal(err)
		}
		expect(t, b.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "x"}), 401, 2)
	})
}

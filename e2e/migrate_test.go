package e2e

import (
	"strings"
	"testing"
)

// TestMigrateData moves a populated SQLite installation to PostgreSQL with
// "imbee migrate-data", then checks that idempotent repeats on the new
// backend return the same credentials, links and conversations.
func TestMigrateData(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		src := dbSpec{db: "sqlite:" + t.TempDir() + "/old.db", keyFile: t.TempDir() + "/imbee.key"}
		old := startServerOn(t, src)
		c := old.demo()
		other := old.newCorporate(t, "Second")
		u1, u2 := old.newUser(t, c, "m1"), old.newUser(t, c, "m2")
		chat := old.post(t, "/chat/create", c.auth, u1.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": u2.idsha}}})
		expect(t, chat, 200, 0)
		link := old.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "m1", "bot_idsha": c.bot, "mail": "m1@example.com", "max_retries": 3})
		expect(t, link, 200, 0)
		b := browser(t)
		_, _, resp := page(t, b, "POST", link.str("url"))
		chatPage := resp.Header.Get("Location")
		if err := old.stop(); err != nil {
			t.Fatal(err)
		}

		dst := dbSpec{db: newDB(t).db, keyFile: src.keyFile}
		out, _, err := runCLI(t, nil, "migrate-data", "--from", src.db, "--to", dst.db, "--key-file", src.keyFile)
		if err != nil || !strings.Contains(out, "users                  2 rows") {
			t.Fatalf("migrate-data: %v\n%s", err, out)
		}
		// Into a database that is no longer empty: refused.
		if _, _, err := runCLI(t, nil, "migrate-data", "--from", src.db, "--to", dst.db, "--key-file", src.keyFile); err == nil {
			t.Error("migrating into a non-empty database succeeded")
		}

		s := startServerOn(t, dst)
		if s.auth != "" {
			t.Error("the new backend bootstrapped again")
		}
		again := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "m1"})
		expect(t, again, 200, 0)
		if again.str("apikey") != u1.apikey || again.str("pass") != u1.pass || again.str("virtualUser") != u1.idsha || again.Body["previously_registered"] != true {
			t.Errorf("user changed in the move: %s", again.Raw)
		}
		expect(t, s.post(t, "/third_parties/user/new", other.auth, other.token, map[string]string{"uniqueIdSha": "x"}), 200, 0)
		chat2 := s.post(t, "/chat/create", c.auth, u2.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": u1.idsha}}})
		if chat2.str("conversationId") != chat.str("conversationId") || chat2.Body["previously_created"] != true {
			t.Errorf("chat changed in the move: %s", chat2.Raw)
		}
		link2 := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "m1", "bot_idsha": c.bot, "mail": "m1@example.com"})
		wantURL := strings.Replace(link.str("url"), old.URL, s.URL, 1)
		if link2.str("url") != wantURL || link2.Body["previously_created"] != true || link2.Body["max_retries"] != 3.0 {
			t.Errorf("link changed in the move: %s (was %s)", link2.Raw, link.Raw)
		}
		// The person's session cookie still opens the chat on the new server.
		code, html, _ := page(t, b, "GET", s.URL+chatPage)
		if code != 200 {
			t.Errorf("chat page after the move: %d %s", code, html)
		}
		// New rows get new ids after the copied ones.
		expect(t, s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "after-move"}), 200, 0)
	})
}

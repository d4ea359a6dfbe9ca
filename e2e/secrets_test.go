package e2e

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/imbee/imbee/internal/testkit"
)

// TestNoSecretAtRest runs a whole session of API use, then looks for every
// secret the server handed out in the database files (main, WAL and shared
// memory) and in the logs, and must find none. Repeats still return the
// same secrets, so they are derived, not stored.
func TestNoSecretAtRest(t *testing.T) { testkit.ForEachBackend(t, testNoSecretAtRest) }

func testNoSecretAtRest(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	other := s.newCorporate(t, "Gamma")
	secrets := []string{c.auth, c.token, other.auth, other.token}

	var users []user
	for _, id := range []string{"p1", "p2", "p3"} {
		u := s.newUser(t, c, id)
		users = append(users, u)
		secrets = append(secrets, u.pass, u.apikey)
	}
	chat := s.post(t, "/chat/create", c.auth, users[0].apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": users[1].idsha}}})
	expect(t, chat, 200, 0)
	group := s.post(t, "/chat/create", c.auth, users[0].apikey, map[string]any{"type": "group", "name": "G", "contacts": []any{map[string]string{"idsha": users[1].idsha}, map[string]string{"bot_idsha": c.bot}}})
	expect(t, group, 200, 0)
	for _, who := range []string{"p1", "p4"} {
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": who, "bot_idsha": c.bot, "mail": who + "@example.com", "celullar": "+34612345678"})
		expect(t, e, 200, 0)
		url := e.str("url")
		secrets = append(secrets, url[strings.LastIndex(url, "/")+1:])
		_, _, resp := page(t, browser(t), "POST", url)
		for _, ck := range resp.Cookies() {
			secrets = append(secrets, ck.Value)
		}
	}
	if out, err := s.imbee("corporate", "rotate", "--id", "1", "--json"); err != nil {
		t.Fatal(err)
	} else {
		var rotated struct {
			Auth           string `json:"auth"`
			CorporateToken string `json:"corporate_token"`
		}
		if err := json.Unmarshal([]byte(out), &rotated); err != nil || rotated.Auth == "" {
			t.Fatalf("rotate printed no credentials: %s", out)
		}
		secrets = append(secrets, rotated.Auth, rotated.CorporateToken)
	}
	// Repeats return the same secrets: they are derived from what is stored.
	again := s.post(t, "/third_parties/user/new", secrets[len(secrets)-2], secrets[len(secrets)-1], map[string]string{"uniqueIdSha": "p1"})
	expect(t, again, 200, 0)
	if again.str("apikey") != users[0].apikey || again.str("pass") != users[0].pass {
		t.Error("a repeat after rotation returned other user secrets")
	}

	for _, sec := range secrets {
		if len(sec) < 40 {
			t.Fatalf("secret %q is too short to be one", sec)
		}
	}
	files := s.storedData(t)
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	logs := s.logs.String()
	for _, sec := range secrets {
		for path, b := range files {
			if bytes.Contains(b, []byte(sec)) {
				t.Errorf("a secret (%.9s…) is stored in plaintext in %s", sec, path)
			}
		}
		if strings.Contains(logs, sec) {
			t.Errorf("a secret (%.9s…) is in the logs", sec)
		}
	}
	// Sanity: the scan can find things, e.g. a user's public id.
	found := false
	for _, b := range files {
		found = found || bytes.Contains(b, []byte(users[0].idsha))
	}
	if !found {
		t.Error("the scan found not even a public id: it cannot be trusted")
	}
}

package e2e

import (
	"testing"

	"github.com/imbee/imbee/internal/testkit"
)

// TestTenantIsolation: corporate B's credentials against A's users, bots,
// chats and links are refused, and the answers do not tell what exists.
func TestTenantIsolation(t *testing.T) { testkit.ForEachBackend(t, testTenantIsolation) }

func testTenantIsolation(t *testing.T) {
	s := startServer(t)
	a := s.demo()
	b := s.newCorporate(t, "Beta")
	aUser := s.newUser(t, a, "shared_id")
	bUser := s.newUser(t, b, "shared_id")

	if aUser.idsha == bUser.idsha || aUser.apikey == bUser.apikey {
		t.Fatal("one uniqueIdSha in two corporates must be two users")
	}
	// B cannot send a link to A's bot; the answer is the same as for a bot
	// that does not exist at all.
	e1 := s.post(t, "/token/new", b.auth, b.token, map[string]any{"virtual_user": "x", "bot_idsha": a.bot, "mail": "x@example.com"})
	e2 := s.post(t, "/token/new", b.auth, b.token, map[string]any{"virtual_user": "x", "bot_idsha": "0123456789abcdef0123456789abcdef01234567", "mail": "x@example.com"})
	expect(t, e1, 404, 7)
	if e1.Message != e2.Message {
		t.Errorf("another tenant's bot and a missing bot answer differently: %q vs %q", e1.Message, e2.Message)
	}
	// B's user cannot open a chat with A's user or bot.
	for _, target := range []string{aUser.idsha, a.bot} {
		e := s.post(t, "/chat/create", b.auth, bUser.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": target}}})
		expect(t, e, 404, 7)
	}
	// A's user's apikey under B's Authorization, and mixed credentials, are refused.
	expect(t, s.post(t, "/chat/create", b.auth, aUser.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": bUser.idsha}}}), 401, 3)
	expect(t, s.post(t, "/third_parties/user/new", a.auth, b.token, map[string]string{"uniqueIdSha": "z"}), 401, 3)
	expect(t, s.post(t, "/token/new", b.auth, a.token, map[string]any{"virtual_user": "x", "bot_idsha": a.bot, "mail": "x@example.com"}), 401, 3)

	// A's chat between its users stays A's: B's user asking for the same
	// pair ids gets nothing.
	aOther := s.newUser(t, a, "other")
	chat := s.post(t, "/chat/create", a.auth, aUser.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": aOther.idsha}}})
	expect(t, chat, 200, 0)
	expect(t, s.post(t, "/chat/create", b.auth, bUser.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": aOther.idsha}}}), 404, 7)

	// Rotating B's credentials revokes the old ones at once.
	if out, err := s.imbee("corporate", "rotate", "--id", "2", "--json"); err != nil {
		t.Fatal(out, err)
	}
	expect(t, s.post(t, "/third_parties/user/new", b.auth, b.token, map[string]string{"uniqueIdSha": "z"}), 401, 2)
	// A is untouched.
	expect(t, s.post(t, "/third_parties/user/new", a.auth, a.token, map[string]string{"uniqueIdSha": "z"}), 200, 0)
}

package e2e

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/client"
)

// TestMigrateData moves a populated SQLite installation to PostgreSQL with
// "imbee migrate-data", then checks that idempotent repeats on the new
// backend return the same credentials, links and conversations, and that
// the messages, webhook events, idempotency keys and link attempts made
// before the move are there after it.
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
		before := fillHistory(t, old, c, u1, chat.str("conversationId"), link.str("url"), b)
		if err := old.stop(); err != nil {
			t.Fatal(err)
		}

		dst := dbSpec{db: newDB(t).db, keyFile: src.keyFile}
		out, _, err := runCLI(t, nil, "migrate-data", "--from", src.db, "--to", dst.db, "--key-file", src.keyFile)
		if err != nil || !strings.Contains(out, "users                  2 rows") {
			t.Fatalf("migrate-data: %v\n%s", err, out)
		}
		for _, table := range []string{"messages", "webhook_events", "idempotency_keys", "link_attempts"} {
			if !regexp.MustCompile(`(?m)^` + table + ` +[1-9][0-9]* rows$`).MatchString(out) {
				t.Errorf("migrate-data does not report the rows of %s:\n%s", table, out)
			}
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
		before.findOn(t, s)
	})
}

// history is what fillHistory made, as the source server answered it.
type history struct {
	c        corporate
	u        user
	link     string
	messages map[string]map[string]any // /chat/message/list bodies by conversation
	keyed    map[string]any            // the body of a send made with an Idempotency-Key
	said     envelope                  // its answer
	hooks    []map[string]any          // the webhook ledger
	attempts []map[string]any          // the link's audit trail
	botChat  string
	recv     *hookReceiver
}

// idemKey is the Idempotency-Key of fillHistory's keyed send.
const idemKey = "before-the-move"

// fillHistory gives the server's demo corporate rows of every kind the
// e2e suite can make besides those TestMigrateData makes itself: messages
// from u and from the bot, an event delivered to the bot's webhook, an
// idempotency key, and a view of the link (b submitted it already).
func fillHistory(t *testing.T, old *server, c corporate, u user, chat, link string, b *http.Client) history {
	t.Helper()
	h := history{c: c, u: u, link: link, messages: map[string]map[string]any{}, recv: newHookReceiver(t)}
	hook, err := old.client(t, c).SetBotWebhook(t.Context(), client.SetBotWebhookRequest{BotIDSha: c.bot, URL: h.recv.URL + "/hook"})
	if err != nil {
		t.Fatalf("/bot/webhook: %v", err)
	}
	h.recv.setSecret(hook.Secret)
	h.botChat = old.createChat(t, c, u, client.Contact{IDSha: c.bot}) // the chat the link opened

	h.keyed = map[string]any{"conversationId": chat, "text": "before the move", "clientMsgId": "m-1"}
	h.said = old.keyed(t, "/chat/message/send", c.auth, u.apikey, idemKey, h.keyed)
	expect(t, h.said, 200, 0)
	toBot := old.post(t, "/chat/message/send", c.auth, u.apikey, map[string]any{"conversationId": h.botChat, "text": "hola bot"})
	expect(t, toBot, 200, 0)
	expect(t, old.post(t, "/bot/message/send", c.auth, c.token, map[string]any{"bot_idsha": c.bot, "conversationId": h.botChat, "text": "hola humano", "clientMsgId": "b-1"}), 200, 0)
	event := fmt.Sprintf("msg_%s_%v", h.botChat, toBot.Body["message"].(map[string]any)["seq"])
	checkHits(t, h.recv.waitAccepted(t, []string{event}, 10*time.Second))
	h.hooks = waitRows(t, old, "sent", []string{event}, 10*time.Second)

	if code, html, _ := page(t, b, "GET", link); code != 200 {
		t.Fatalf("link page: %d %s", code, html)
	}
	h.attempts = old.attempts(t, c, link, 2) // the view (recorded within a second) and the submission
	for _, conv := range []string{chat, h.botChat} {
		h.messages[conv] = h.list(t, old, conv)
	}
	return h
}

// list is /chat/message/list of conv for the history's user.
func (h history) list(t *testing.T, s *server, conv string) map[string]any {
	t.Helper()
	e := s.post(t, "/chat/message/list", h.c.auth, h.u.apikey, map[string]any{"conversationId": conv})
	expect(t, e, 200, 0)
	if n := len(e.Body["messages"].([]any)); n == 0 {
		t.Fatalf("no messages in %s: %s", conv, e.Raw)
	}
	return e.Body
}

// findOn checks that s, on the migrated database, holds the history.
func (h history) findOn(t *testing.T, s *server) {
	t.Helper()
	for conv, want := range h.messages {
		if got := h.list(t, s, conv); !reflect.DeepEqual(got, want) {
			t.Errorf("messages of %s after the move: %v, want %v", conv, got, want)
		}
	}
	again := s.keyed(t, "/chat/message/send", h.c.auth, h.u.apikey, idemKey, h.keyed)
	if again.Raw != h.said.Raw || again.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the keyed send repeated after the move: %s (replayed %q), want %s", again.Raw, again.Header.Get("Idempotent-Replayed"), h.said.Raw)
	}
	if got := webhookRows(t, s, ""); !reflect.DeepEqual(got, h.hooks) {
		t.Errorf("webhook ledger after the move: %v, want %v", got, h.hooks)
	}
	if got := s.attempts(t, h.c, h.link, len(h.attempts)); !reflect.DeepEqual(got, h.attempts) {
		t.Errorf("link attempts after the move: %v, want %v", got, h.attempts)
	}
	// The bot's webhook moved with its secret: the next event is signed
	// with the one given before the move.
	toBot := s.post(t, "/chat/message/send", h.c.auth, h.u.apikey, map[string]any{"conversationId": h.botChat, "text": "after the move"})
	expect(t, toBot, 200, 0)
	event := fmt.Sprintf("msg_%s_%v", h.botChat, toBot.Body["message"].(map[string]any)["seq"])
	checkHits(t, h.recv.waitAccepted(t, []string{event}, 10*time.Second))
}

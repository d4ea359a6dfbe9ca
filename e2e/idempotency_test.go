package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// keyed calls the API as post does, with an Idempotency-Key.
func (s *server) keyed(t testing.TB, path, auth, woos, key string, body any) envelope {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	return s.call(t, "POST", path, map[string]string{
		"Content-Type": "application/json", "Authorization": auth, "X-WOOS-KEY": woos, "Idempotency-Key": key,
	}, string(b))
}

func TestIdempotencyKey(t *testing.T) { testkit.ForEachBackend(t, testIdempotencyKey) }

func testIdempotencyKey(t *testing.T) {
	s := startServer(t)
	c := s.newCorporate(t, "Idem")

	t.Run("replay is byte for byte", func(t *testing.T) {
		body := map[string]string{"uniqueIdSha": "idem-ana"}
		first := s.keyed(t, "/third_parties/user/new", c.auth, c.token, "k-user-1", body)
		expect(t, first, 200, 0)
		if first.Header.Get("Idempotent-Replayed") != "" {
			t.Fatal("a first request is marked as replayed")
		}
		time.Sleep(20 * time.Millisecond) // a re-run would report another time
		again := s.keyed(t, "/third_parties/user/new", c.auth, c.token, "k-user-1", body)
		expect(t, again, 200, 0)
		if again.Raw != first.Raw {
			t.Fatalf("replay differs:\n%s\n%s", first.Raw, again.Raw)
		}
		if again.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay without Idempotent-Replayed: %v", again.Header)
		}
		// The stored response holds the user's pass: it must not be readable in the database.
		pass := first.str("pass")
		for name, data := range s.storedData(t) {
			if bytes.Contains(data, []byte(pass)) {
				t.Fatalf("%s holds the pass in plaintext", name)
			}
		}
	})

	t.Run("keys are per tenant", func(t *testing.T) {
		other := s.newCorporate(t, "Idem Other")
		body := map[string]string{"uniqueIdSha": "idem-ana"}
		e := s.keyed(t, "/third_parties/user/new", other.auth, other.token, "k-user-1", body)
		expect(t, e, 200, 0)
		if e.Header.Get("Idempotent-Replayed") != "" || e.Body["previously_registered"] != false {
			t.Fatalf("another corporate's key answered: %s", e.Raw)
		}
	})

	t.Run("other body or endpoint is code 9", func(t *testing.T) {
		expect(t, s.keyed(t, "/third_parties/user/new", c.auth, c.token, "k-user-1", map[string]string{"uniqueIdSha": "idem-bob"}), 422, 9)
		expect(t, s.keyed(t, "/token/new", c.auth, c.token, "k-user-1",
			map[string]any{"virtual_user": "idem-ana", "bot_idsha": c.bot, "mail": "ana@example.com"}), 422, 9)
		// The refused requests changed nothing: bob does not exist yet.
		e := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "idem-bob"})
		expect(t, e, 200, 0)
		if e.Body["previously_registered"] != false {
			t.Fatalf("a refused request created the user: %s", e.Raw)
		}
	})

	t.Run("makes group creation safe to retry", func(t *testing.T) {
		ana := s.newUser(t, c, "idem-ana")
		bob := s.newUser(t, c, "idem-bob")
		group := map[string]any{"type": "group", "name": "Ops", "contacts": []map[string]string{{"idsha": bob.idsha}}}
		// Without a key, each request is a new group: the key is what dedupes.
		a := s.post(t, "/chat/create", c.auth, ana.apikey, group)
		b := s.post(t, "/chat/create", c.auth, ana.apikey, group)
		expect(t, a, 200, 0)
		expect(t, b, 200, 0)
		if a.str("conversationId") == b.str("conversationId") {
			t.Fatal("two unkeyed group creations gave one group")
		}
		first := s.keyed(t, "/chat/create", c.auth, ana.apikey, "k-group", group)
		again := s.keyed(t, "/chat/create", c.auth, ana.apikey, "k-group", group)
		expect(t, first, 200, 0)
		if again.Raw != first.Raw {
			t.Fatalf("keyed group creation ran twice:\n%s\n%s", first.Raw, again.Raw)
		}
		// Keys are per credential: bob's "k-group" is another key.
		other := s.keyed(t, "/chat/create", c.auth, bob.apikey, "k-group",
			map[string]any{"type": "group", "contacts": []map[string]string{{"idsha": ana.idsha}}})
		expect(t, other, 200, 0)
		if other.str("conversationId") == first.str("conversationId") {
			t.Fatal("another user's key answered with ana's group")
		}
	})

	t.Run("concurrent requests with one key run once", func(t *testing.T) {
		ana := s.newUser(t, c, "idem-ana")
		bob := s.newUser(t, c, "idem-bob")
		group := map[string]any{"type": "group", "name": "Race", "contacts": []map[string]string{{"idsha": bob.idsha}}}
		const n = 16
		results := make([]envelope, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { results[i] = s.keyed(t, "/chat/create", c.auth, ana.apikey, "k-race", group) })
		}
		wg.Wait()
		var ok []envelope
		for _, e := range results {
			switch {
			case e.Status == 200 && e.Code == 0:
				ok = append(ok, e)
			case e.Status == 409 && e.Code == 10:
				if e.Header.Get("Retry-After") == "" {
					t.Fatalf("code 10 without Retry-After: %s", e.Raw)
				}
			default:
				t.Fatalf("unexpected answer: %d %s", e.Status, e.Raw)
			}
		}
		if len(ok) == 0 {
			t.Fatal("no request succeeded")
		}
		for _, e := range ok {
			if e.Raw != ok[0].Raw {
				t.Fatalf("one key, two different answers:\n%s\n%s", ok[0].Raw, e.Raw)
			}
		}
		// Retrying a 409 gets the one stored answer.
		again := s.keyed(t, "/chat/create", c.auth, ana.apikey, "k-race", group)
		if again.Raw != ok[0].Raw {
			t.Fatalf("retry after the race: %s, want %s", again.Raw, ok[0].Raw)
		}
		// Exactly one "Race" group exists for ana.
		list := s.post(t, "/chat/list", c.auth, ana.apikey, map[string]any{"limit": 500})
		expect(t, list, 200, 0)
		if got := strings.Count(list.Raw, `"name":"Race"`); got != 1 {
			t.Fatalf("%d groups named Race, want 1: %s", got, list.Raw)
		}
	})

	t.Run("a failure frees the key", func(t *testing.T) {
		bad := map[string]any{"virtual_user": "idem-ana", "bot_idsha": "no-such-bot", "mail": "ana@example.com"}
		expect(t, s.keyed(t, "/token/new", c.auth, c.token, "k-link", bad), 404, 7)
		good := map[string]any{"virtual_user": "idem-ana", "bot_idsha": c.bot, "mail": "ana@example.com"}
		first := s.keyed(t, "/token/new", c.auth, c.token, "k-link", good)
		expect(t, first, 200, 0)
		again := s.keyed(t, "/token/new", c.auth, c.token, "k-link", good)
		if again.Raw != first.Raw {
			t.Fatalf("link replay differs:\n%s\n%s", first.Raw, again.Raw)
		}
	})

	t.Run("bad keys are code 6", func(t *testing.T) {
		body := map[string]string{"uniqueIdSha": "idem-x"}
		for _, k := range []string{strings.Repeat("k", 256), "tab\there", "é-key", "   "} {
			e := s.keyed(t, "/third_parties/user/new", c.auth, c.token, k, body)
			expect(t, e, 400, 6)
			if e.Body["field"] != "Idempotency-Key" {
				t.Fatalf("key %q: field %v", k, e.Body["field"])
			}
		}
		// Read-only calls ignore the header.
		e := s.keyed(t, "/chat/list", c.auth, s.newUser(t, c, "idem-ana").apikey, strings.Repeat("k", 300), map[string]any{})
		expect(t, e, 200, 0)
	})
}

func TestIdempotencyKeyExpires(t *testing.T) {
	s := startServer(t, "--idempotency-ttl", "1s")
	c := s.demo()
	first := s.keyed(t, "/third_parties/user/new", c.auth, c.token, "k-exp", map[string]string{"uniqueIdSha": "exp-1"})
	expect(t, first, 200, 0)
	expect(t, s.keyed(t, "/third_parties/user/new", c.auth, c.token, "k-exp", map[string]string{"uniqueIdSha": "exp-2"}), 422, 9)
	// Stored times are whole seconds: past the TTL by more than one.
	time.Sleep(2100 * time.Millisecond)
	e := s.keyed(t, "/third_parties/user/new", c.auth, c.token, "k-exp", map[string]string{"uniqueIdSha": "exp-2"})
	expect(t, e, 200, 0)
	if e.Body["previously_registered"] != false {
		t.Fatal(fmt.Sprint("expected a new user: ", e.Raw))
	}
}

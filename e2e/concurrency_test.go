package e2e

import (
	"sync"
	"testing"

	"github.com/imbee/imbee/internal/testkit"
)

// concurrently runs f n times at once and returns the results in order.
func concurrently[T any](n int, f func(i int) T) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}

func TestConcurrency(t *testing.T) { testkit.ForEachBackend(t, testConcurrency) }

func testConcurrency(t *testing.T) {
	s := startServer(t)
	c := s.demo()

	t.Run("UserNewOfOneIDGivesOneUser", func(t *testing.T) {
		res := concurrently(50, func(int) envelope {
			return s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "same_person"})
		})
		first := 0
		for _, e := range res {
			expect(t, e, 200, 0)
			if e.str("virtualUser") != res[0].str("virtualUser") || e.str("apikey") != res[0].str("apikey") || e.str("pass") != res[0].str("pass") {
				t.Fatalf("two different users: %s vs %s", e.Raw, res[0].Raw)
			}
			if e.Body["previously_registered"] == false {
				first++
			}
		}
		if first != 1 {
			t.Errorf("%d responses say the user is new, want 1", first)
		}
	})

	t.Run("ChatCreateOfOnePairFromBothSidesGivesOneChat", func(t *testing.T) {
		a, b := s.newUser(t, c, "pair_a"), s.newUser(t, c, "pair_b")
		res := concurrently(50, func(i int) envelope {
			from, to := a, b
			if i%2 == 1 {
				from, to = b, a
			}
			return s.post(t, "/chat/create", c.auth, from.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": to.idsha}}})
		})
		first := 0
		for _, e := range res {
			expect(t, e, 200, 0)
			if e.str("conversationId") != res[0].str("conversationId") {
				t.Fatalf("two conversations for one pair")
			}
			if e.Body["previously_created"] == false {
				first++
			}
		}
		if first != 1 {
			t.Errorf("%d responses say the chat is new, want 1", first)
		}
	})

	t.Run("LinkWithFiveUsesSpendsExactlyFive", func(t *testing.T) {
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "spender", "bot_idsha": c.bot, "mail": "s@example.com", "max_retries": 5})
		expect(t, e, 200, 0)
		url := e.str("url")
		codes := concurrently(50, func(int) int {
			code, _, _ := page(t, browser(t), "POST", url)
			return code
		})
		spent, gone := 0, 0
		for _, code := range codes {
			switch code {
			case 303:
				spent++
			case 410:
				gone++
			default:
				t.Errorf("unexpected status %d", code)
			}
		}
		if spent != 5 || gone != 45 {
			t.Errorf("%d spent and %d refused, want 5 and 45", spent, gone)
		}
	})

	t.Run("TokenNewOfOnePairGivesOneLink", func(t *testing.T) {
		res := concurrently(30, func(int) envelope {
			return s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "racer", "bot_idsha": c.bot, "mail": "r@example.com"})
		})
		first := 0
		for _, e := range res {
			expect(t, e, 200, 0)
			if e.str("url") != res[0].str("url") {
				t.Fatalf("two links for one (user, bot)")
			}
			if e.Body["previously_created"] == false {
				first++
			}
		}
		if first != 1 {
			t.Errorf("%d responses say the link is new, want 1", first)
		}
	})
}

package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// chatCall makes one of a chat's JSON calls with a session cookie.
func chatCall(t testing.TB, s *server, method, path string, cookie *http.Cookie, body string) (int, string) {
	t.Helper()
	h := map[string]string{"Cookie": cookie.String()}
	if body != "" {
		h["Content-Type"] = "application/json"
	}
	resp, b := send(t, browser(t), method, s.URL+path, h, body)
	return resp.StatusCode, b
}

type chatHistory struct {
	Messages []struct {
		Seq         int64  `json:"seq"`
		Sender      string `json:"sender"`
		SenderIsBot bool   `json:"sender_is_bot"`
		Text        string `json:"text"`
	} `json:"messages"`
}

// botReplies waits until the chat at base (a link's /w/… or the app's
// /app/c/…) holds want replies of the bot (0: reads once), and returns
// their texts.
func botReplies(t testing.TB, s *server, base string, cookie *http.Cookie, want int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := chatCall(t, s, "GET", base+"/messages", cookie, "")
		var h chatHistory
		if code != http.StatusOK || json.Unmarshal([]byte(body), &h) != nil {
			t.Fatalf("history of %s: %d %s", base, code, body)
		}
		var texts []string
		for _, m := range h.Messages {
			if m.SenderIsBot {
				texts = append(texts, m.Text)
			}
		}
		if len(texts) >= want || time.Now().After(deadline) {
			return texts
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDemoBotAndApp: the first run's demo bot answers what a person writes
// in the link's web chat, once per message; the same person (the user the
// link made) signs in to the web app with the pass that
// /third_parties/user/new returns, finds that chat in the list under the
// bot's name, and the bot answers there too.
func TestDemoBotAndApp(t *testing.T) { testkit.ForEachBackend(t, testDemoBotAndApp) }

func testDemoBotAndApp(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	w := openWebChat(t, s, c, c.bot, "newcomer")
	base := "/w/" + w.conv
	if code, body := chatCall(t, s, "POST", base+"/messages", w.cookie, `{"text":"hello there","clientMsgId":"n1"}`); code != http.StatusOK {
		t.Fatalf("send in the web chat: %d %s", code, body)
	}
	replies := botReplies(t, s, base, w.cookie, 1)
	if len(replies) != 1 || !strings.HasPrefix(replies[0], "You said: hello there") || !strings.Contains(replies[0], "/bot/message/send") {
		t.Fatalf("the demo bot's replies: %q, want one answering \"hello there\"", replies)
	}
	// A retried send is the same message: it gets no second answer.
	chatCall(t, s, "POST", base+"/messages", w.cookie, `{"text":"hello there","clientMsgId":"n1"}`)

	u := s.newUser(t, c, "newcomer") // the link made the user: this repeat gives its pass
	cookie := signInApp(t, s, u)
	code, list := chatCall(t, s, "GET", "/app", cookie, "")
	if code != http.StatusOK || !strings.Contains(list, `href="/app/c/`+w.conv+`"`) || !strings.Contains(list, "Demo Bot") || !strings.Contains(list, "You said: hello there") {
		t.Fatalf("the app's chat list: %d\n%s", code, list)
	}
	app := "/app/c/" + w.conv
	if code, body := chatCall(t, s, "POST", app+"/messages", cookie, `{"text":"from the app","clientMsgId":"a1"}`); code != http.StatusOK {
		t.Fatalf("send in the app: %d %s", code, body)
	}
	replies = botReplies(t, s, app, cookie, 2)
	if len(replies) != 2 || !strings.HasPrefix(replies[1], "You said: from the app") {
		t.Fatalf("the demo bot's replies after the app's message: %q", replies)
	}
	time.Sleep(500 * time.Millisecond) // a duplicate answer would be on its way
	if again := botReplies(t, s, app, cookie, 0); len(again) != 2 {
		t.Errorf("the demo bot answered %d times to 2 messages: %q", len(again), again)
	}
}

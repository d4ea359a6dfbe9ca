package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/testkit"
)

// chatFixture is a corporate with two users and the chat between them.
type chatFixture struct {
	c        corporate
	ana, bea user
	conv     string
}

func newChat(t testing.TB, s *server) chatFixture {
	t.Helper()
	c := s.demo()
	f := chatFixture{c: c, ana: s.newUser(t, c, "ana"), bea: s.newUser(t, c, "bea")}
	f.conv = s.createChat(t, c, f.ana, client.Contact{IDSha: f.bea.idsha})
	return f
}

// socketClient is a member's WebSocket on /chat/socket.
type socketClient struct {
	c *websocket.Conn
}

type frame struct {
	Type    string `json:"type"`
	Seq     int64  `json:"seq"`
	Member  string `json:"member"`
	Message *struct {
		Seq    int64  `json:"seq"`
		Sender string `json:"sender"`
		Text   string `json:"text"`
	} `json:"message"`
}

func dialSocket(t testing.TB, s *server, auth, apikey, conv string, after int64) *socketClient {
	t.Helper()
	url := strings.Replace(s.URL, "http://", "ws://", 1) + fmt.Sprintf("/chat/socket?conversationId=%s&afterSeq=%d", conv, after)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {auth}, "X-WOOS-KEY": {apikey}}, HTTPClient: &http.Client{Transport: validated(t, http.DefaultTransport)}})
	if err != nil {
		t.Fatalf("dial socket: %v", err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &socketClient{c: c}
}

func (sc *socketClient) next(t testing.TB, within time.Duration) frame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_, b, err := sc.c.Read(ctx)
	if err != nil {
		t.Fatalf("socket read: %v", err)
	}
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("socket frame %q: %v", b, err)
	}
	return f
}

// TestMessages: send (idempotent by clientMsgId), list, chat list with
// unread counts, read marks; members only; a socket gets what it missed and
// then each new message and read mark.
func TestMessages(t *testing.T) { testkit.ForEachBackend(t, testMessages) }

func testMessages(t *testing.T) {
	s := startServer(t)
	f := newChat(t, s)
	c := f.c
	send := func(u user, text, key string) envelope {
		return s.post(t, "/chat/message/send", c.auth, u.apikey, map[string]any{"conversationId": f.conv, "text": text, "clientMsgId": key})
	}
	e := send(f.ana, "hola", "k1")
	expect(t, e, 200, 0)
	m, _ := e.Body["message"].(map[string]any)
	if m["seq"] != 1.0 || m["sender"] != f.ana.idsha || m["text"] != "hola" || e.Body["previously_sent"] != false {
		t.Fatalf("send = %s", e.Raw)
	}
	again := send(f.ana, "hola", "k1")
	expect(t, again, 200, 0)
	if again.Body["previously_sent"] != true || again.Body["message"].(map[string]any)["seq"] != 1.0 {
		t.Errorf("a retry with the same clientMsgId: %s", again.Raw)
	}
	expect(t, send(f.bea, "qué tal", "k1"), 200, 0) // another sender's key is another message

	// Strangers, bad input.
	other := s.newUser(t, c, "carla")
	expect(t, s.post(t, "/chat/message/send", c.auth, other.apikey, map[string]any{"conversationId": f.conv, "text": "x"}), 404, 7)
	expect(t, s.post(t, "/chat/message/send", c.auth, f.ana.apikey, map[string]any{"conversationId": f.conv, "text": "  "}), 400, 6)
	expect(t, s.post(t, "/chat/message/send", c.auth, f.ana.apikey, map[string]any{"conversationId": f.conv, "text": strings.Repeat("a", 4001)}), 400, 6)
	expect(t, s.post(t, "/chat/message/list", c.auth, other.apikey, map[string]any{"conversationId": f.conv}), 404, 7)

	l := s.post(t, "/chat/message/list", c.auth, f.bea.apikey, map[string]any{"conversationId": f.conv})
	expect(t, l, 200, 0)
	msgs, _ := l.Body["messages"].([]any)
	if len(msgs) != 2 || l.Body["last_seq"] != 2.0 || l.Body["has_more"] != false {
		t.Fatalf("list = %s", l.Raw)
	}
	l = s.post(t, "/chat/message/list", c.auth, f.bea.apikey, map[string]any{"conversationId": f.conv, "afterSeq": 1})
	if msgs, _ := l.Body["messages"].([]any); len(msgs) != 1 || msgs[0].(map[string]any)["seq"] != 2.0 {
		t.Errorf("afterSeq 1 = %s", l.Raw)
	}

	cl := s.post(t, "/chat/list", c.auth, f.bea.apikey, map[string]any{})
	expect(t, cl, 200, 0)
	chats, _ := cl.Body["chats"].([]any)
	if len(chats) != 1 {
		t.Fatalf("chat list = %s", cl.Raw)
	}
	ch := chats[0].(map[string]any)
	if ch["conversationId"] != f.conv || ch["unread"] != 2.0 || ch["last_message"].(map[string]any)["text"] != "qué tal" {
		t.Errorf("chat = %v", ch)
	}

	// A socket that connects after seq 1 gets seq 2, then "ready", then
	// live messages and read marks.
	sock := dialSocket(t, s, c.auth, f.bea.apikey, f.conv, 1)
	if fr := sock.next(t, 5*time.Second); fr.Type != "message" || fr.Message.Seq != 2 {
		t.Fatalf("first frame = %+v", fr)
	}
	if fr := sock.next(t, 5*time.Second); fr.Type != "ready" || fr.Seq != 2 {
		t.Fatalf("second frame = %+v", fr)
	}
	expect(t, send(f.ana, "live", "k2"), 200, 0)
	if fr := sock.next(t, 5*time.Second); fr.Type != "message" || fr.Message.Seq != 3 || fr.Message.Text != "live" {
		t.Fatalf("live frame = %+v", fr)
	}
	r := s.post(t, "/chat/read", c.auth, f.ana.apikey, map[string]any{"conversationId": f.conv, "seq": 99})
	expect(t, r, 200, 0)
	if r.Body["read_seq"] != 3.0 {
		t.Errorf("read clamps to the last seq: %s", r.Raw)
	}
	if fr := sock.next(t, 5*time.Second); fr.Type != "read" || fr.Member != f.ana.idsha || fr.Seq != 3 {
		t.Fatalf("read frame = %+v", fr)
	}
	if r := s.post(t, "/chat/read", c.auth, f.ana.apikey, map[string]any{"conversationId": f.conv, "seq": 1}); r.Body["read_seq"] != 3.0 {
		t.Errorf("a read mark moved back: %s", r.Raw)
	}
}

package realtime

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee"
)

// memHistory is a conversation's stored messages; each read carries the
// horizon of the log at that moment, as the store's does.
type memHistory struct {
	mu  sync.Mutex
	ms  []imbee.Message
	log *memLog
}

func (m *memHistory) add(text string) imbee.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg := imbee.Message{CorporateID: 1, ConversationID: "c", Seq: int64(len(m.ms) + 1), Text: text, Horizon: m.log.horizon()}
	m.ms = append(m.ms, msg)
	return msg
}

func (m *memHistory) MessagesAfter(_ context.Context, _ int64, _ string, seq int64, limit int) ([]imbee.Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []imbee.Message
	for _, msg := range m.ms {
		if msg.Seq > seq && len(out) < limit {
			msg.Horizon = m.log.horizon()
			out = append(out, msg)
		}
	}
	return out, nil
}

// serve runs Serve for grant g behind a test server and dials it.
func serve(t *testing.T, h *Hub, hist History, g Grant) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Since = h.Horizon()
		sub, err := h.Subscribe(g)
		if err != nil {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		Serve(w, r, h, sub, hist, slog.New(slog.NewTextHandler(io.Discard, nil)), 0)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(srv.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// frames reads c until it closes, and returns the texts of the messages it
// got and the close status.
func frames(t *testing.T, c *websocket.Conn) ([]string, websocket.StatusCode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var texts []string
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return texts, websocket.CloseStatus(err)
		}
		var f Frame
		json.Unmarshal(b, &f)
		if f.Type == "message" {
			texts = append(texts, f.Message.Text)
		}
	}
}

func waitReady(t *testing.T, c *websocket.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), `"ready"`) {
			return
		}
	}
}

// A socket catching up from the database (it missed events) does not send
// what was committed after a revocation that ends it, even before the hub
// has heard of the revocation: the read's horizon makes the hub read the
// log first. It closes with 1008.
func TestServeCatchUpStopsAtRevocation(t *testing.T) {
	h, l := following(t)
	hist := &memHistory{log: l}
	hist.add("before")
	c := serve(t, h, hist, web)
	waitReady(t, c)
	l.add(1, imbee.RevokedBot, 30)
	hist.add("after")
	h.Publish(imbee.Event{Type: "missed"}) // a bridge reconnected: everyone catches up
	texts, st := frames(t, c)
	if st != websocket.StatusPolicyViolation || len(texts) != 0 {
		t.Errorf("got %q and close %d, want nothing and 1008", texts, st)
	}
}

// A live message published after the revocation (its horizon beyond it)
// never reaches the socket.
func TestServeLiveStopsAtRevocation(t *testing.T) {
	h, l := following(t)
	hist := &memHistory{log: l}
	c := serve(t, h, hist, api)
	waitReady(t, c)
	m := hist.add("before")
	h.Publish(imbee.Event{Type: "message", CorporateID: 1, ConversationID: "c", Seq: m.Seq, Message: &m, Horizon: m.Horizon})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"before"`) {
		t.Fatalf("the message before the revocation: %s %v", b, err)
	}
	l.add(1, imbee.RevokedCorporateKeys, 0)
	m = hist.add("after")
	h.Publish(imbee.Event{Type: "message", CorporateID: 1, ConversationID: "c", Seq: m.Seq, Message: &m, Horizon: m.Horizon})
	texts, st := frames(t, c)
	if st != websocket.StatusPolicyViolation || len(texts) != 0 {
		t.Errorf("got %q and close %d, want nothing and 1008", texts, st)
	}
}

// A web session's socket closes at the session's end.
func TestServeSessionExpiry(t *testing.T) {
	h := NewHub()
	g := web
	g.Expires = time.Now().Add(300 * time.Millisecond)
	c := serve(t, h, &memHistory{log: &memLog{}}, g)
	waitReady(t, c)
	_, st := frames(t, c)
	if st != websocket.StatusPolicyViolation {
		t.Errorf("close %d, want 1008", st)
	}
	if time.Now().Before(g.Expires) {
		t.Error("closed before the session's end")
	}
}

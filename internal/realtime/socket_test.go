package realtime

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
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
	mu    sync.Mutex
	ms    []imbee.Message
	marks map[string]int64
	log   *memLog
}

// read commits member's read mark seq and returns its event.
func (m *memHistory) read(member string, seq int64) imbee.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.marks == nil {
		m.marks = map[string]int64{}
	}
	m.marks[member] = seq
	return imbee.Event{Type: "read", CorporateID: 1, ConversationID: "c", Member: member, Seq: seq, Horizon: m.log.horizon()}
}

func (m *memHistory) ReadMarks(context.Context, int64, string) (map[string]int64, imbee.Horizon, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.marks), m.log.horizon(), nil
}

func (m *memHistory) add(text string) imbee.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	msg := imbee.Message{CorporateID: 1, ConversationID: "c", Seq: int64(len(m.ms) + 1), Text: text, Horizon: m.log.horizon()}
	m.ms = append(m.ms, msg)
	return msg
}

// publish tells h of m, committed: what the API does after a send.
func publish(h *Hub, m imbee.Message) {
	h.Publish(imbee.Event{Type: "message", CorporateID: m.CorporateID, ConversationID: m.ConversationID, Seq: m.Seq, Message: &m, Horizon: m.Horizon})
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
	return serveAfter(t, h, hist, g, 0)
}

// serveAfter is serve for a client that has every message up to seq after:
// one that reconnects.
func serveAfter(t *testing.T, h *Hub, hist History, g Grant, after int64) *websocket.Conn {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.Since = h.Horizon()
		sub, err := h.Subscribe(g)
		if err != nil {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		Serve(w, r, h, sub, hist, slog.New(slog.NewTextHandler(io.Discard, nil)), after)
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
	publish(h, hist.add("before"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"before"`) {
		t.Fatalf("the message before the revocation: %s %v", b, err)
	}
	l.add(1, imbee.RevokedCorporateKeys, 0)
	publish(h, hist.add("after"))
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

// heldHistory holds a socket's first read of the history until release is
// closed, so that a test can commit and publish while the socket is busy.
// With early set, the held read answers what was stored when it began
// (what is committed meanwhile reaches the socket only as events); else
// what is stored once it is released.
type heldHistory struct {
	*memHistory
	early            bool
	entered, release chan struct{}
	first            sync.Once
}

func hold(m *memHistory, early bool) *heldHistory {
	return &heldHistory{memHistory: m, early: early, entered: make(chan struct{}), release: make(chan struct{})}
}

func (h *heldHistory) MessagesAfter(ctx context.Context, corp int64, conv string, seq int64, limit int) ([]imbee.Message, error) {
	held := false
	h.first.Do(func() { held = true })
	ms, err := h.memHistory.MessagesAfter(ctx, corp, conv, seq, limit)
	if !held {
		return ms, err
	}
	close(h.entered)
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if h.early {
		return ms, err
	}
	return h.memHistory.MessagesAfter(ctx, corp, conv, seq, limit)
}

func waitFor(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not happen", what)
	}
}

// next reads c's next n frames: a message as its seq, others as their type
// and seq ("ready 3").
func next(t *testing.T, c *websocket.Conn, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", out, err)
		}
		var f Frame
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if f.Type == "message" {
			out = append(out, strconv.FormatInt(f.Message.Seq, 10))
		} else {
			out = append(out, f.Type+" "+strconv.FormatInt(f.Seq, 10))
		}
	}
	return out
}

// seqs is from to to as next shows messages.
func seqs(from, to int64) []string {
	var out []string
	for seq := from; seq <= to; seq++ {
		out = append(out, strconv.FormatInt(seq, 10))
	}
	return out
}

// A client that reconnects with the last seq it has gets every message
// after it, then ready, then what follows live: no gap, nothing twice. A
// message committed while the socket reads its history comes both in that
// read and as an event, and is sent once; a message whose event never
// came (another server's, lost) is read when the next one shows the gap.
func TestServeReconnect(t *testing.T) {
	h := NewHub()
	hist := &memHistory{log: &memLog{}}
	for range 3 {
		hist.add("before")
	}
	first := serve(t, h, hist, api)
	if got, want := next(t, first, 4), append(seqs(1, 3), "ready 3"); !slices.Equal(got, want) {
		t.Fatalf("first connection got %v, want %v", got, want)
	}
	first.Close(websocket.StatusNormalClosure, "")
	publish(h, hist.add("while away"))
	publish(h, hist.add("while away"))

	reading := hold(hist, false)
	c := serveAfter(t, h, reading, api, 3)
	waitFor(t, reading.entered, "the reconnected socket's read")
	publish(h, hist.add("during the read")) // seq 6: in the read and queued
	close(reading.release)
	if got, want := next(t, c, 4), append(seqs(4, 6), "ready 6"); !slices.Equal(got, want) {
		t.Fatalf("after reconnecting with seq 3: got %v, want %v", got, want)
	}
	publish(h, hist.add("live"))
	hist.add("its event lost") // seq 8
	publish(h, hist.add("live"))
	if got, want := next(t, c, 3), seqs(7, 9); !slices.Equal(got, want) {
		t.Errorf("live: got %v, want %v", got, want)
	}
}

// Messages reach a socket in seq order, each once, however their events
// interleave: publishers that commit concurrently publish out of order,
// and the socket reads what it lacks from the database.
func TestServeOrderUnderConcurrentPublishers(t *testing.T) {
	h := NewHub()
	hist := &memHistory{log: &memLog{}}
	c := serve(t, h, hist, api)
	if got := next(t, c, 1); !slices.Equal(got, []string{"ready 0"}) {
		t.Fatalf("got %v, want ready 0", got)
	}
	const publishers, each = 8, 25
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			<-start
			for range each {
				m := hist.add("m")
				runtime.Gosched() // between commit and publish: another may publish first
				publish(h, m)
			}
		})
	}
	close(start)
	got := next(t, c, publishers*each)
	wg.Wait()
	if want := seqs(1, publishers*each); !slices.Equal(got, want) {
		t.Errorf("got %v, want 1 to %d in order", got, publishers*each)
	}
}

// A socket that is busy (here, held in its first read of the database)
// does not hold up another socket of its conversation. The events it had
// no room for are dropped, and once free it catches up from the database:
// every message once, in order.
func TestServeSlowSocket(t *testing.T) {
	h := NewHub()
	hist := &memHistory{log: &memLog{}}
	busy := hold(hist, true)
	slow := serve(t, h, busy, api)
	waitFor(t, busy.entered, "the slow socket's read")
	fast := serve(t, h, hist, web)
	if got := next(t, fast, 1); !slices.Equal(got, []string{"ready 0"}) {
		t.Fatalf("got %v, want ready 0", got)
	}
	const n = 100 // more than a subscriber's buffer holds
	promptly(t, "publishing beside a busy socket", func() {
		for range n {
			publish(h, hist.add("m"))
		}
	})
	if got := next(t, fast, n); !slices.Equal(got, seqs(1, n)) {
		t.Fatalf("the other socket got %v, want 1 to %d in order", got, n)
	}
	close(busy.release)
	if got, want := next(t, slow, n+1), append([]string{"ready 0"}, seqs(1, n)...); !slices.Equal(got, want) {
		t.Fatalf("the slow socket got %v, want %v", got, want)
	}
	publish(h, hist.add("last")) // what came before it came once
	if got := next(t, slow, 1); !slices.Equal(got, seqs(n+1, n+1)) {
		t.Errorf("after catching up: got %v, want %d", got, n+1)
	}
}

// A socket that missed events (a full buffer, a bridge that lost events)
// sends the read marks it has not sent when it catches up, after the
// messages they reach; a mark already sent is not sent again, nor one
// behind it.
func TestServeRecoversReadMarks(t *testing.T) {
	h := NewHub()
	hist := &memHistory{log: &memLog{}}
	c := serve(t, h, hist, api)
	if got := next(t, c, 1); !slices.Equal(got, []string{"ready 0"}) {
		t.Fatalf("got %v, want ready 0", got)
	}
	publish(h, hist.add("m"))
	h.Publish(hist.read("ana", 1))
	if got, want := next(t, c, 2), []string{"1", "read 1"}; !slices.Equal(got, want) {
		t.Fatalf("live: got %v, want %v", got, want)
	}
	hist.add("its event lost")
	hist.read("bea", 2) // its event lost too
	h.Publish(hist.read("ana", 1))
	h.Publish(imbee.Event{Type: "missed"})
	if got, want := next(t, c, 2), []string{"2", "read 2"}; !slices.Equal(got, want) {
		t.Fatalf("after catching up: got %v, want %v", got, want)
	}
	publish(h, hist.add("m"))
	h.Publish(hist.read("bea", 1)) // behind the mark sent: not sent
	h.Publish(hist.read("ana", 3))
	if got, want := next(t, c, 2), []string{"3", "read 3"}; !slices.Equal(got, want) {
		t.Fatalf("then: got %v, want %v", got, want)
	}
}

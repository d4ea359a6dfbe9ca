package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee/internal/testkit"
)

// liveFrame is a socket frame with every field the server sends.
type liveFrame struct {
	Type    string `json:"type"`
	Seq     int64  `json:"seq"`
	Member  string `json:"member"`
	Message *struct {
		ConversationID string `json:"conversationId"`
		Seq            int64  `json:"seq"`
		Sender         string `json:"sender"`
		SenderIsBot    bool   `json:"sender_is_bot"`
		Text           string `json:"text"`
		ClientMsgID    string `json:"clientMsgId"`
	} `json:"message"`
}

// readLive reads one frame within the given time. A timeout closes the
// socket (the WebSocket library's rule), so it is for the end of a check.
func readLive(sc *socketClient, within time.Duration) (liveFrame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_, b, err := sc.c.Read(ctx)
	if err != nil {
		return liveFrame{}, err
	}
	var f liveFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return liveFrame{}, fmt.Errorf("socket frame %q: %v", b, err)
	}
	return f, nil
}

func mustReadLive(t testing.TB, sc *socketClient, within time.Duration) liveFrame {
	t.Helper()
	f, err := readLive(sc, within)
	if err != nil {
		t.Fatalf("socket read: %v", err)
	}
	return f
}

// expectQuiet checks that nothing more arrives on sc for d (and leaves sc
// closed).
func expectQuiet(t testing.TB, sc *socketClient, d time.Duration) {
	t.Helper()
	if f, err := readLive(sc, d); err == nil {
		t.Errorf("an extra frame arrived: %+v", f)
	}
}

// readMessages reads n "message" frames and checks that their seqs run
// from first on, one after the other, each once.
func readMessages(t testing.TB, sc *socketClient, first int64, n int, within time.Duration) []liveFrame {
	t.Helper()
	var out []liveFrame
	deadline := time.Now().Add(within)
	for i := range n {
		f, err := readLive(sc, time.Until(deadline))
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", i, n, err)
		}
		if f.Type != "message" || f.Message == nil {
			t.Fatalf("frame %d is %+v, want a message", i, f)
		}
		if want := first + int64(i); f.Message.Seq != want {
			t.Fatalf("frame %d has seq %d, want %d (seqs must be consecutive, in order, each once)", i, f.Message.Seq, want)
		}
		out = append(out, f)
	}
	return out
}

// sendRaw sends a message without the testing.T (for goroutines) and
// returns its seq; a repeat of clientMsgID is an error.
func sendRaw(s *server, auth, apikey, conv, text, clientMsgID string) (int64, error) {
	seq, repeat, err := sendMessage(s, auth, apikey, conv, text, clientMsgID)
	if err == nil && repeat {
		err = fmt.Errorf("send %q: previously sent", text)
	}
	return seq, err
}

// TestSocketReconnect: a client that reconnects with the last seq it saw
// gets exactly what it missed, in order, once; and messages sent at once by
// many clients all reach a connected socket, once each, in seq order.
func TestSocketReconnect(t *testing.T) { testkit.ForEachBackend(t, testSocketReconnect) }

func testSocketReconnect(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := newChat(t, s)
	c := f.c
	send := func(u user, text, key string) int64 {
		t.Helper()
		e := s.post(t, "/chat/message/send", c.auth, u.apikey, map[string]any{"conversationId": f.conv, "text": text, "clientMsgId": key})
		expect(t, e, 200, 0)
		return int64(e.Body["message"].(map[string]any)["seq"].(float64))
	}

	t.Run("ReconnectAfterSeq", func(t *testing.T) {
		// History before the socket, then one live message: the client
		// keeps the last seq it saw.
		for i := 1; i <= 3; i++ {
			send(f.ana, fmt.Sprintf("before %d", i), fmt.Sprintf("b%d", i))
		}
		sock := dialSocket(t, s, c.auth, f.bea.apikey, f.conv, 0)
		readMessages(t, sock, 1, 3, 5*time.Second)
		if fr := mustReadLive(t, sock, 5*time.Second); fr.Type != "ready" || fr.Seq != 3 {
			t.Fatalf("after the history: %+v, want ready 3", fr)
		}
		send(f.ana, "live", "live")
		fr := mustReadLive(t, sock, 5*time.Second)
		if fr.Type != "message" || fr.Message.Seq != 4 || fr.Message.Text != "live" || fr.Message.Sender != f.ana.idsha {
			t.Fatalf("live frame %+v", fr)
		}
		last := fr.Message.Seq
		sock.c.CloseNow()

		// While it is down, the other member sends 100 messages.
		for i := 1; i <= 100; i++ {
			if seq := send(f.ana, fmt.Sprintf("missed %d", i), fmt.Sprintf("m%d", i)); seq != last+int64(i) {
				t.Fatalf("message %d got seq %d, want %d", i, seq, last+int64(i))
			}
		}

		again := dialSocket(t, s, c.auth, f.bea.apikey, f.conv, last)
		got := readMessages(t, again, last+1, 100, 10*time.Second)
		for i, fr := range got {
			if want := fmt.Sprintf("missed %d", i+1); fr.Message.Text != want || fr.Message.Sender != f.ana.idsha || fr.Message.ConversationID != f.conv {
				t.Errorf("message %d = %+v, want %q from ana", i, *fr.Message, want)
			}
		}
		if fr := mustReadLive(t, again, 5*time.Second); fr.Type != "ready" || fr.Seq != last+100 {
			t.Fatalf("after catching up: %+v, want ready %d", fr, last+100)
		}
		// Still live after a catch-up, and nothing seen twice.
		send(f.bea, "after", "after")
		if fr := mustReadLive(t, again, 5*time.Second); fr.Type != "message" || fr.Message.Seq != last+101 || fr.Message.Text != "after" {
			t.Fatalf("live frame after the catch-up: %+v", fr)
		}
		expectQuiet(t, again, 300*time.Millisecond)
	})

	t.Run("ConcurrentSends", func(t *testing.T) {
		// A conversation of its own, so seqs run 1..100.
		carla := s.newUser(t, c, "carla")
		e := s.post(t, "/chat/create", c.auth, f.ana.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": carla.idsha}}})
		expect(t, e, 200, 0)
		conv := e.str("conversationId")
		sock := dialSocket(t, s, c.auth, carla.apikey, conv, 0)
		if fr := mustReadLive(t, sock, 5*time.Second); fr.Type != "ready" || fr.Seq != 0 {
			t.Fatalf("first frame %+v, want ready 0", fr)
		}

		const goroutines, each = 10, 10
		var mu sync.Mutex
		var errs []error
		textOf := map[int64]string{}
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				from := f.ana
				if g%2 == 1 {
					from = carla
				}
				for i := range each {
					text := fmt.Sprintf("g%d-%d", g, i)
					seq, err := sendRaw(s, c.auth, from.apikey, conv, text, text)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else if prev, dup := textOf[seq]; dup {
						errs = append(errs, fmt.Errorf("seq %d given to %q and %q", seq, prev, text))
					} else {
						textOf[seq] = text
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d sends failed, first: %v", len(errs), errs[0])
		}
		const n = goroutines * each
		for seq := int64(1); seq <= n; seq++ {
			if _, ok := textOf[seq]; !ok {
				t.Fatalf("the answers have no seq %d: %d answers", seq, len(textOf))
			}
		}
		for i, fr := range readMessages(t, sock, 1, n, 10*time.Second) {
			if fr.Message.Text != textOf[int64(i+1)] {
				t.Errorf("seq %d on the socket is %q, the send of it answered %q", i+1, fr.Message.Text, textOf[int64(i+1)])
			}
		}
		expectQuiet(t, sock, 300*time.Millisecond)
	})
}

// dialRefused dials a socket that must be refused before the upgrade and
// checks the HTTP status and the envelope's code.
func dialRefused(t *testing.T, s *server, headers http.Header, conv, afterSeq string, status, code int) {
	t.Helper()
	url := strings.Replace(s.URL, "http://", "ws://", 1) + "/chat/socket?conversationId=" + conv
	if afterSeq != "" {
		url += "&afterSeq=" + afterSeq
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: headers, HTTPClient: &http.Client{Transport: validated(t, http.DefaultTransport)}})
	if err == nil {
		c.CloseNow()
		t.Fatalf("the socket was accepted, want HTTP %d code %d", status, code)
	}
	if resp == nil {
		t.Fatalf("no HTTP answer: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	var e struct {
		Code int `json:"code"`
	}
	if json.Unmarshal(raw, &e) != nil || resp.StatusCode != status || e.Code != code {
		t.Fatalf("got HTTP %d %q, want HTTP %d code %d", resp.StatusCode, raw, status, code)
	}
}

// TestSocketAuth: sockets are refused, before the upgrade, to anyone but a
// member of the conversation with their own corporate's credentials.
func TestSocketAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := newChat(t, s)
	c := f.c
	other := s.newCorporate(t, "Other")
	stranger := s.newUser(t, other, "ana") // same uniqueIdSha, another corporate
	carla := s.newUser(t, c, "carla")      // same corporate, not a member
	h := func(auth, key string) http.Header {
		hd := http.Header{}
		if auth != "" {
			hd.Set("Authorization", auth)
		}
		if key != "" {
			hd.Set("X-WOOS-KEY", key)
		}
		return hd
	}

	dialRefused(t, s, h("", ""), f.conv, "0", 401, 2)
	dialRefused(t, s, h("", f.ana.apikey), f.conv, "0", 401, 2)
	dialRefused(t, s, h("not-a-real-auth", f.ana.apikey), f.conv, "0", 401, 2)
	dialRefused(t, s, h(c.auth, ""), f.conv, "0", 401, 3)
	// Another corporate's user, with this corporate's Authorization.
	dialRefused(t, s, h(c.auth, stranger.apikey), f.conv, "0", 401, 3)
	// This corporate's user with the other corporate's Authorization.
	dialRefused(t, s, h(other.auth, f.ana.apikey), f.conv, "0", 401, 3)
	// The other corporate's own credentials: the conversation is not theirs.
	dialRefused(t, s, h(other.auth, stranger.apikey), f.conv, "0", 404, 7)
	// Same corporate, not a member.
	dialRefused(t, s, h(c.auth, carla.apikey), f.conv, "0", 404, 7)
	dialRefused(t, s, h(c.auth, f.ana.apikey), "no-such-conversation", "0", 404, 7)
	dialRefused(t, s, h(c.auth, f.ana.apikey), f.conv, "-1", 400, 6)

	// The members themselves get in (the refusals above are not a bad URL).
	for _, u := range []user{f.ana, f.bea} {
		sock := dialSocket(t, s, c.auth, u.apikey, f.conv, 0)
		if fr := mustReadLive(t, sock, 5*time.Second); fr.Type != "ready" {
			t.Fatalf("a member's socket: %+v", fr)
		}
	}
}

// TestCrossServerSocket: two server processes on one PostgreSQL database;
// a message and a read mark made through one reach a socket on the other.
func TestCrossServerSocket(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		d := newDB(t)
		a := startProcess(t, d) // bootstraps the demo corporate
		b := startProcess(t, d)
		if a.auth == "" || b.auth != "" {
			t.Fatalf("the first server should bootstrap, the second not: %q, %q", a.auth, b.auth)
		}
		f := newChat(t, a)
		c := f.c

		sock := dialSocket(t, b, c.auth, f.bea.apikey, f.conv, 0)
		if fr := mustReadLive(t, sock, 5*time.Second); fr.Type != "ready" || fr.Seq != 0 {
			t.Fatalf("first frame on B: %+v", fr)
		}

		start := time.Now()
		e := a.post(t, "/chat/message/send", c.auth, f.ana.apikey, map[string]any{"conversationId": f.conv, "text": "from A", "clientMsgId": "x1"})
		expect(t, e, 200, 0)
		fr := mustReadLive(t, sock, 5*time.Second)
		if fr.Type != "message" || fr.Message.Seq != 1 || fr.Message.Text != "from A" || fr.Message.Sender != f.ana.idsha {
			t.Fatalf("frame on B: %+v", fr)
		}
		t.Logf("A → B in %v", time.Since(start).Round(time.Millisecond))

		// A burst through A: all of it, in order, once.
		for i := 2; i <= 30; i++ {
			expect(t, a.post(t, "/chat/message/send", c.auth, f.ana.apikey, map[string]any{"conversationId": f.conv, "text": fmt.Sprintf("burst %d", i)}), 200, 0)
		}
		for i, fr := range readMessages(t, sock, 2, 29, 5*time.Second) {
			if want := fmt.Sprintf("burst %d", i+2); fr.Message.Text != want {
				t.Errorf("seq %d = %q, want %q", fr.Message.Seq, fr.Message.Text, want)
			}
		}

		r := a.post(t, "/chat/read", c.auth, f.ana.apikey, map[string]any{"conversationId": f.conv, "seq": 30})
		expect(t, r, 200, 0)
		fr = mustReadLive(t, sock, 5*time.Second)
		if fr.Type != "read" || fr.Member != f.ana.idsha || fr.Seq != 30 {
			t.Fatalf("read frame on B: %+v, want ana read 30", fr)
		}
		expectQuiet(t, sock, 300*time.Millisecond)
	})
}

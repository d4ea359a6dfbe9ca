package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee/internal/pgtest"
)

// TestEventsSurvive: two server processes on one PostgreSQL database, a
// socket of each member of a chat on each, and messages and read marks
// sent through both at once. Meanwhile the database connection that
// carries the hints is taken away: each server's LISTEN connection cut
// (pg_terminate_backend), or PostgreSQL restarted. Every socket (reconnected
// with its last seq when the server closed it) receives every message, in
// order, once, and the last read marks.
func TestEventsSurvive(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		t.Run("listen_cut", func(t *testing.T) {
			d := newDB(t)
			db := d.openDB(t, false)
			testEventsSurvive(t, d, func(t *testing.T, _ [2]*server) {
				for range 3 {
					old := listening(t, d, nil)
					if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1)`, old); err != nil {
						t.Fatal(err)
					}
					listening(t, d, old)
				}
			})
		})
		t.Run("restart", func(t *testing.T) {
			dbURL, restart := pgtest.Own(t)
			d := dbSpec{db: dbURL, keyFile: filepath.Join(t.TempDir(), "imbee.key")}
			testEventsSurvive(t, d, func(t *testing.T, _ [2]*server) {
				restart()
				listening(t, d, nil)
			})
		})
	})
}

// listening waits until both servers LISTEN, on connections none of old,
// and returns those connections' process ids.
func listening(t *testing.T, d dbSpec, old []int64) []int64 {
	t.Helper()
	db := d.openDB(t, true)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pids []int64
		rows, err := db.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`)
		if err == nil {
			for rows.Next() {
				var pid int64
				if rows.Scan(&pid) == nil && !slices.Contains(old, pid) {
					pids = append(pids, pid)
				}
			}
			rows.Close()
		}
		if len(pids) == 2 {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("servers listening: %v (%v), want 2 new ones", pids, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testEventsSurvive(t *testing.T, d dbSpec, disrupt func(t *testing.T, servers [2]*server)) {
	a := startProcess(t, d) // bootstraps the demo corporate
	b := startProcess(t, d)
	servers := [2]*server{a, b}
	f := newChat(t, a)
	members := []user{f.ana, f.bea}
	listening(t, d, nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var followers []*follower
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, s := range servers {
		for _, u := range members {
			fl := &follower{url: strings.Replace(s.URL, "http://", "ws://", 1), auth: f.c.auth, apikey: u.apikey, conv: f.conv}
			if err := fl.connect(ctx); err != nil {
				t.Fatal(err)
			}
			followers = append(followers, fl)
			wg.Go(func() { fl.run(ctx) })
		}
	}

	// The load: messages through both servers, each retried with its
	// clientMsgId until it is answered; now and then a read mark.
	var mu sync.Mutex
	texts := map[int64]string{} // by seq
	stop := make(chan struct{})
	loadDone := make(chan error, 1)
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(texts)
	}
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				loadDone <- nil
				return
			default:
			}
			text := fmt.Sprintf("m%d", i)
			var seq int64
			if err := retry(ctx, func() (err error) {
				// The text is the clientMsgId: a retry of a send committed
				// but not answered returns the message sent.
				seq, _, err = sendMessage(servers[i%2], f.c.auth, members[i%2].apikey, f.conv, text, text)
				return err
			}); err != nil {
				loadDone <- err
				return
			}
			mu.Lock()
			texts[seq] = text
			mu.Unlock()
			if i%7 == 6 {
				if err := retry(ctx, func() error { return markRead(servers[(i+1)%2], f.c.auth, members[(i+1)%2].apikey, f.conv, seq) }); err != nil {
					loadDone <- err
					return
				}
			}
		}
	}()
	waitUntil(t, "messages flowing", func() bool { return count() >= 20 })
	disrupt(t, servers)
	after := count()
	waitUntil(t, "messages flowing again", func() bool { return count() >= after+20 })
	close(stop)
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	n := int64(count())
	for i, u := range members {
		if err := retry(ctx, func() error { return markRead(servers[i], f.c.auth, u.apikey, f.conv, n) }); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "every socket has every message and the last read marks", func() bool {
		for _, fl := range followers {
			if !fl.has(n, members) {
				return false
			}
		}
		return true
	})
	reconnects := 0
	for _, fl := range followers {
		fl.mu.Lock()
		for _, e := range fl.errs {
			t.Error(e)
		}
		for i, text := range fl.texts {
			if want := texts[int64(i+1)]; text != want {
				t.Errorf("seq %d is %q, want %q", i+1, text, want)
			}
		}
		reconnects += fl.reconnects
		fl.mu.Unlock()
	}
	t.Logf("%d messages to %d sockets on two servers; %d reconnections", n, len(followers), reconnects)
}

// waitUntil waits, a minute at most, for cond.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within a minute", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// retry calls f until it succeeds, a minute at most.
func retry(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sendMessage sends a message without the testing.T (for goroutines) and
// returns its seq, and whether it is a repeat of clientMsgID's.
func sendMessage(s *server, auth, apikey, conv, text, clientMsgID string) (seq int64, repeat bool, err error) {
	var e struct {
		Code int `json:"code"`
		Body struct {
			Message struct {
				Seq  int64  `json:"seq"`
				Text string `json:"text"`
			} `json:"message"`
			PreviouslySent bool `json:"previously_sent"`
		} `json:"body"`
	}
	if err := postJSON(s, "/chat/message/send", auth, apikey, map[string]any{"conversationId": conv, "text": text, "clientMsgId": clientMsgID}, &e); err != nil {
		return 0, false, err
	}
	if e.Code != 0 || e.Body.Message.Text != text {
		return 0, false, fmt.Errorf("send %q: code %d, text %q", text, e.Code, e.Body.Message.Text)
	}
	return e.Body.Message.Seq, e.Body.PreviouslySent, nil
}

func markRead(s *server, auth, apikey, conv string, seq int64) error {
	var e struct {
		Code int `json:"code"`
	}
	if err := postJSON(s, "/chat/read", auth, apikey, map[string]any{"conversationId": conv, "seq": seq}, &e); err != nil {
		return err
	}
	if e.Code != 0 {
		return fmt.Errorf("read: code %d", e.Code)
	}
	return nil
}

func postJSON(s *server, path, auth, apikey string, body, into any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest("POST", s.URL+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", auth)
	req.Header.Set("X-WOOS-KEY", apikey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: HTTP %d: %s", path, resp.StatusCode, out)
	}
	return json.Unmarshal(out, into)
}

// follower is a member's socket client: it keeps the messages it receives
// and reconnects with the last seq it has when the server closes it.
type follower struct {
	url, auth, apikey, conv string
	c                       *websocket.Conn

	mu         sync.Mutex
	texts      []string         // by seq - 1
	marks      map[string]int64 // the last read mark received of each member
	errs       []string
	reconnects int
}

func (f *follower) connect(ctx context.Context) error {
	f.mu.Lock()
	after := len(f.texts)
	f.mu.Unlock()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, fmt.Sprintf("%s/chat/socket?conversationId=%s&afterSeq=%d", f.url, f.conv, after),
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {f.auth}, "X-WOOS-KEY": {f.apikey}}})
	if err != nil {
		return err
	}
	c.SetReadLimit(1 << 20)
	f.c = c
	return nil
}

// run reads frames until ctx ends, reconnecting when the socket closes.
func (f *follower) run(ctx context.Context) {
	for {
		f.read(ctx)
		f.c.CloseNow()
		if ctx.Err() != nil {
			return
		}
		f.mu.Lock()
		f.reconnects++
		f.mu.Unlock()
		for f.connect(ctx) != nil {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// read takes one connection's frames: messages must follow one another,
// and a member's read marks only move forward.
func (f *follower) read(ctx context.Context) {
	sent := map[string]int64{}
	for {
		_, b, err := f.c.Read(ctx)
		if err != nil {
			return
		}
		var fr liveFrame
		if err := json.Unmarshal(b, &fr); err != nil {
			f.fail("frame %q: %v", b, err)
			continue
		}
		f.mu.Lock()
		switch fr.Type {
		case "message":
			if want := int64(len(f.texts) + 1); fr.Message.Seq != want {
				f.errs = append(f.errs, fmt.Sprintf("seq %d arrived, want %d: each message once, in order", fr.Message.Seq, want))
			} else {
				f.texts = append(f.texts, fr.Message.Text)
			}
		case "read":
			if fr.Seq <= sent[fr.Member] {
				f.errs = append(f.errs, fmt.Sprintf("read mark %d of %s after %d", fr.Seq, fr.Member, sent[fr.Member]))
			}
			if int64(len(f.texts)) < fr.Seq {
				f.errs = append(f.errs, fmt.Sprintf("read mark %d before its message (%d received)", fr.Seq, len(f.texts)))
			}
			sent[fr.Member] = fr.Seq
			if f.marks == nil {
				f.marks = map[string]int64{}
			}
			f.marks[fr.Member] = fr.Seq
		}
		f.mu.Unlock()
	}
}

func (f *follower) fail(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

// has says whether f has received the n messages and every member's read
// mark n.
func (f *follower) has(n int64, members []user) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if int64(len(f.texts)) != n {
		return false
	}
	for _, u := range members {
		if f.marks[u.idsha] != n {
			return false
		}
	}
	return true
}

package realtime

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/pgtest"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// counted is a server's store as its sockets and bridge read it, counting
// the reads: history the sockets' own, feed the bridge's.
type counted struct {
	*store.Store
	events         *store.EventFeed
	history, feeds atomic.Int64
}

func (c *counted) MessagesAfter(ctx context.Context, corp int64, conv string, seq int64, limit int) ([]imbee.Message, error) {
	c.history.Add(1)
	return c.Store.MessagesAfter(ctx, corp, conv, seq, limit)
}

func (c *counted) ReadMarks(ctx context.Context, corp int64, conv string) (map[string]int64, imbee.Horizon, error) {
	c.history.Add(1)
	return c.Store.ReadMarks(ctx, corp, conv)
}

func (c *counted) Next(ctx context.Context) ([]imbee.Event, bool, error) {
	c.feeds.Add(1)
	return c.events.Next(ctx)
}

func (c *counted) Listen(ctx context.Context, listening, hint func()) error {
	return c.events.Listen(ctx, listening, hint)
}

// pair is two servers on one PostgreSQL database: a, which writes, and b,
// with a hub whose bridge follows what a commits (its safety net off, so
// that only hints bring events), and a conversation of ana and bea.
type pair struct {
	dsn       string
	a         *store.Store
	b         *counted
	hub       *Hub
	corp      int64
	conv      string
	ana, bea  string
	socketURL string
}

func newPair(t *testing.T) *pair {
	t.Helper()
	ctx := context.Background()
	key := make([]byte, secret.KeySize)
	rand.Read(key)
	keys, err := secret.NewKeyring(key)
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{dsn: testkit.DSN(t)}
	open := func() *store.Store {
		s, err := store.Open(ctx, p.dsn, keys, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	p.a = open()
	p.b = &counted{Store: open()}
	c, _, err := p.a.CreateCorporate(ctx, "Acme", "Europe/Madrid")
	if err != nil {
		t.Fatal(err)
	}
	p.corp = c.ID
	var users []string
	for _, id := range []string{"ana", "bea"} {
		u, _, err := p.a.RegisterUser(ctx, c.ID, id, nil)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u.IDSha)
	}
	p.ana, p.bea = users[0], users[1]
	conv, err := p.a.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: p.ana, Type: imbee.ConversationChat, Contacts: []string{p.bea}})
	if err != nil {
		t.Fatal(err)
	}
	p.conv = conv.PublicID

	p.hub = NewHub()
	if err := p.hub.Follow(ctx, p.b); err != nil {
		t.Fatal(err)
	}
	if p.b.events, err = p.b.FollowEvents(ctx); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	bridge := NewBridge(p.hub, p.b, quiet)
	bridge.SafetyNet = time.Hour
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { bridge.Run(runCtx) })
	t.Cleanup(func() { stop(); wg.Wait() })

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := p.hub.Subscribe(Grant{CorporateID: p.corp, ConversationID: p.conv, Since: p.hub.Horizon()})
		if err != nil {
			http.Error(w, err.Error(), http.StatusTooManyRequests)
			return
		}
		Serve(w, r, p.hub, sub, p.b, quiet, 0)
	}))
	t.Cleanup(srv.Close)
	p.socketURL = strings.Replace(srv.URL, "http", "ws", 1)
	return p
}

// sockets opens n sockets of the conversation on b, each ready.
func (p *pair) sockets(t *testing.T, n int) []*websocket.Conn {
	t.Helper()
	var cs []*websocket.Conn
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := websocket.Dial(ctx, p.socketURL, nil)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if got := next(t, c, 1); !slices.Equal(got, []string{"ready 0"}) {
			t.Fatalf("got %v, want ready 0", got)
		}
		cs = append(cs, c)
	}
	return cs
}

func (p *pair) send(t testing.TB, text string) {
	t.Helper()
	if _, _, err := p.a.SendMessage(context.Background(), imbee.MessageRequest{CorporateID: p.corp, ConversationID: p.conv, Sender: p.ana, Text: text}); err != nil {
		t.Fatal(err)
	}
}

// TestBridgeOneReadPerServer: a message committed on one server reaches
// the hundred sockets of its conversation on another at the cost of one
// read of the database by that server, not one per socket; a read mark
// too.
func TestBridgeOneReadPerServer(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		p := newPair(t)
		cs := p.sockets(t, 100)
		p.send(t, "warm up") // the bridge is listening once it arrives
		for _, c := range cs {
			if got := next(t, c, 1); !slices.Equal(got, []string{"1"}) {
				t.Fatalf("got %v, want 1", got)
			}
		}
		p.b.history.Store(0)
		p.b.feeds.Store(0)
		const n = 5
		for i := range n {
			p.send(t, "m")
			for _, c := range cs {
				if got, want := next(t, c, 1), seqs(int64(i+2), int64(i+2)); !slices.Equal(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
		}
		if _, err := p.a.MarkRead(context.Background(), p.corp, p.conv, p.bea, n+1); err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if got, want := next(t, c, 1), []string{"read 6"}; !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
		history, feeds := p.b.history.Load(), p.b.feeds.Load()
		t.Logf("%d messages and a read mark to %d sockets: %d reads by the bridge, %d by sockets", n, len(cs), feeds, history)
		if history != 0 || feeds > n+2 {
			t.Errorf("%d reads by sockets and %d by the bridge for %d events to %d sockets; want none and one per event", history, feeds, n+1, len(cs))
		}
	})
}

// listeners returns the server processes of dsn's database that LISTEN.
func listeners(t testing.TB, db *sql.DB) []int64 {
	t.Helper()
	rows, err := db.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var pids []int64
	for rows.Next() {
		var pid int64
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// TestBridgeListenLost: the LISTEN connection is cut (pg_terminate_backend)
// while messages flow, three times. The bridge's safety net is off, and
// the messages stop as soon as it listens again: it must listen before it
// reads what was committed meanwhile, or those last messages would wait
// for a hint that never comes. Every socket gets every message, in order,
// once, and the read mark.
func TestBridgeListenLost(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		p := newPair(t)
		cs := p.sockets(t, 3)
		db, err := sql.Open("pgx", p.dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var sent, had int64 // messages sent; those every socket has had
		// flow sends messages until the bridge listens on a connection
		// other than those of old.
		flow := func(old []int64) []int64 {
			deadline := time.Now().Add(30 * time.Second)
			for {
				p.send(t, "m")
				sent++
				if pids := listeners(t, db); len(pids) > 0 && !slices.Equal(pids, old) {
					return pids
				}
				if time.Now().After(deadline) {
					t.Fatal("the bridge did not listen again")
				}
			}
		}
		const cuts = 3
		pids := flow(nil)
		for range cuts {
			if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY($1)`, pids); err != nil {
				t.Fatal(err)
			}
			pids = flow(pids)
			for _, c := range cs {
				if got, want := next(t, c, int(sent-had)), seqs(had+1, sent); !slices.Equal(got, want) {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
			had = sent
		}
		if _, err := p.a.MarkRead(context.Background(), p.corp, p.conv, p.bea, sent); err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if got, want := next(t, c, 1), []string{"read " + strconv.FormatInt(sent, 10)}; !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
		t.Logf("%d messages around %d cuts of the LISTEN connection", sent, cuts)
	})
}

// fakeFeed is a feed whose LISTEN connection the test cuts, and whose
// attempts to listen again fail while down is set. It logs what the bridge
// asks of it.
type fakeFeed struct {
	mu   sync.Mutex
	log  []string
	down bool
	cut  chan struct{}
}

func (f *fakeFeed) note(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.log = append(f.log, s)
}

func (f *fakeFeed) Next(context.Context) ([]imbee.Event, bool, error) {
	f.note("read")
	return nil, false, nil
}

func (f *fakeFeed) Listen(ctx context.Context, listening, hint func()) error {
	f.mu.Lock()
	down := f.down
	f.mu.Unlock()
	if down {
		f.note("refused")
		return errors.New("connection refused")
	}
	f.note("listen")
	listening()
	select {
	case <-f.cut:
		return errors.New("terminated")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestBridgeListensBeforeReading: after a lost connection the bridge
// listens again before it reads what was committed meanwhile (a read
// before would miss the hints of what commits in between), and reads
// then; the wait between attempts grows while they fail and starts over
// after one that listened.
func TestBridgeListensBeforeReading(t *testing.T) {
	f := &fakeFeed{cut: make(chan struct{})}
	b := NewBridge(NewHub(), f, slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.SafetyNet = time.Hour
	var waits []time.Duration
	b.after = func(d time.Duration) <-chan time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		waits = append(waits, d)
		if len(waits) == 3 {
			f.down = false // back after two refusals
		}
		c := make(chan time.Time, 1)
		c <- time.Time{}
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	waitLog := func(want ...string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			f.mu.Lock()
			got := slices.Clone(f.log)
			f.mu.Unlock()
			if slices.Equal(got, want) {
				return
			}
			if time.Now().After(deadline) || len(got) > len(want) {
				t.Fatalf("the bridge did %v, want %v", got, want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitLog("listen", "read")
	f.mu.Lock()
	f.down = true
	f.mu.Unlock()
	f.cut <- struct{}{}
	waitLog("listen", "read", "refused", "refused", "listen", "read")
	f.cut <- struct{}{}
	waitLog("listen", "read", "refused", "refused", "listen", "read", "listen", "read")
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 0}; !slices.Equal(waits, want) {
		t.Errorf("waits %v, want %v", waits, want)
	}
}

package realtime

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee"
)

// memLog is a revocations log in memory: what the store's table holds.
type memLog struct {
	mu    sync.Mutex
	rs    []imbee.Revocation
	fail  error
	reads int
}

func (l *memLog) add(corp int64, kind imbee.RevocationKind, subject int64) imbee.Horizon {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rs = append(l.rs, imbee.Revocation{ID: int64(len(l.rs) + 1), CorporateID: corp, Kind: kind, Subject: subject})
	return imbee.Horizon(len(l.rs) + 1)
}

func (l *memLog) Revocations(_ context.Context, h imbee.Horizon, limit int) ([]imbee.Revocation, imbee.Horizon, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reads++
	if l.fail != nil {
		return nil, h, l.fail
	}
	var out []imbee.Revocation
	for _, r := range l.rs {
		if imbee.Horizon(r.ID) >= h && len(out) < limit {
			out = append(out, r)
			h = imbee.Horizon(r.ID + 1)
		}
	}
	return out, h, nil
}

func (l *memLog) RevocationsHorizon(context.Context) (imbee.Horizon, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return imbee.Horizon(len(l.rs) + 1), nil
}

func (l *memLog) horizon() imbee.Horizon {
	h, _ := l.RevocationsHorizon(context.Background())
	return h
}

func following(t *testing.T) (*Hub, *memLog) {
	t.Helper()
	h, l := NewHub(), &memLog{}
	l.add(9, imbee.RevokedLink, 1) // from before the hub started: never applied
	if err := h.Follow(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	return h, l
}

func ended(s *Sub) bool {
	select {
	case <-s.Ended():
		return true
	default:
		return false
	}
}

// mustSubscribe subscribes g, checked now when g.Since is not set.
func mustSubscribe(t *testing.T, h *Hub, g Grant) *Sub {
	t.Helper()
	if g.Since == 0 {
		g.Since = h.Horizon()
	}
	s, err := h.Subscribe(g)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var (
	web = Grant{CorporateID: 1, ConversationID: "c", Key: "session:1", LinkID: 10, UserID: 20, BotID: 30}
	api = Grant{CorporateID: 1, ConversationID: "c", Key: "apikey:20", UserID: 20}
	app = Grant{CorporateID: 1, ConversationID: "c", Key: "app:40", UserID: 20, AppSessionID: 40}
)

func TestGrantEndedBy(t *testing.T) {
	r := func(corp int64, kind imbee.RevocationKind, subject int64) imbee.Revocation {
		return imbee.Revocation{CorporateID: corp, Kind: kind, Subject: subject}
	}
	for _, tc := range []struct {
		name     string
		r        imbee.Revocation
		web, api bool
		app      bool // a web app session's socket: its user signed in
	}{
		{"its link", r(1, imbee.RevokedLink, 10), true, false, false},
		{"another link", r(1, imbee.RevokedLink, 11), false, false, false},
		{"its user's links", r(1, imbee.RevokedUserLinks, 20), true, false, false},
		{"its bot", r(1, imbee.RevokedBot, 30), true, false, false},
		{"its user's keys", r(1, imbee.RevokedUserKeys, 20), false, true, true},
		{"another user's keys", r(1, imbee.RevokedUserKeys, 21), false, false, false},
		{"its corporate's keys", r(1, imbee.RevokedCorporateKeys, 0), false, true, false},
		{"its corporate disabled", r(1, imbee.RevokedCorporate, 0), true, true, true},
		{"another corporate disabled", r(2, imbee.RevokedCorporate, 0), false, false, false},
		{"another corporate's link with the same id", r(2, imbee.RevokedLink, 10), false, false, false},
		{"its app session signed out", r(1, imbee.RevokedAppSession, 40), false, false, true},
		{"another app session signed out", r(1, imbee.RevokedAppSession, 41), false, false, false},
		{"a kind from a newer server", r(1, "something_new", 0), true, true, true},
	} {
		if got := web.EndedBy(tc.r); got != tc.web {
			t.Errorf("%s: web socket ended %v, want %v", tc.name, got, tc.web)
		}
		if got := api.EndedBy(tc.r); got != tc.api {
			t.Errorf("%s: apikey socket ended %v, want %v", tc.name, got, tc.api)
		}
		if got := app.EndedBy(tc.r); got != tc.app {
			t.Errorf("%s: web app socket ended %v, want %v", tc.name, got, tc.app)
		}
	}
}

// An event committed after a revocation (its horizon beyond it) is fanned
// out only once the revocation is applied: the ended socket never gets it,
// the others do.
func TestPublishAppliesRevocationsFirst(t *testing.T) {
	h, l := following(t)
	w := mustSubscribe(t, h, web)
	a := mustSubscribe(t, h, api)
	hz := l.add(1, imbee.RevokedLink, 10) // another server's or the CLI's: no Sync here
	h.Publish(imbee.Event{Type: "message", CorporateID: 1, ConversationID: "c", Seq: 1, Horizon: hz,
		Message: &imbee.Message{CorporateID: 1, ConversationID: "c", Seq: 1, Text: "after"}})
	if !ended(w) || len(w.C) != 0 {
		t.Errorf("the revoked socket: ended %v, %d events queued", ended(w), len(w.C))
	}
	if ended(a) || len(a.C) != 1 {
		t.Errorf("the other socket: ended %v, %d events queued", ended(a), len(a.C))
	}
	// An event the hub's horizon covers costs no read of the log.
	reads := l.reads
	h.Publish(imbee.Event{Type: "read", CorporateID: 1, ConversationID: "c", Seq: 1, Horizon: hz})
	if l.reads != reads {
		t.Errorf("an event within the horizon read the log")
	}
	// An event of unknown horizon reads it (when anyone listens).
	h.Publish(imbee.Event{Type: "read", CorporateID: 1, ConversationID: "c", Seq: 1})
	if l.reads != reads+1 {
		t.Errorf("an event of unknown horizon did not read the log")
	}
}

// When the log cannot be read, an event is not fanned out: the sockets are
// told to catch up instead (their read checks the horizon again).
func TestPublishWithoutLogMisses(t *testing.T) {
	h, l := following(t)
	w := mustSubscribe(t, h, web)
	l.fail = errors.New("database down")
	hz := l.add(1, imbee.RevokedLink, 10)
	h.Publish(imbee.Event{Type: "message", CorporateID: 1, ConversationID: "c", Seq: 1, Horizon: hz})
	if len(w.C) != 0 {
		t.Fatal("an event was fanned out past a revocation the hub could not read")
	}
	select {
	case <-w.Missed():
	default:
		t.Error("the socket was not told to catch up")
	}
}

// A socket whose access was checked before a revocation the hub applied
// before it subscribed is ended when it subscribes.
func TestSubscribeAfterRevocation(t *testing.T) {
	h, l := following(t)
	g := web
	g.Since = h.Horizon() // read, then the access checked...
	l.add(1, imbee.RevokedLink, 10)
	if err := h.Sync(context.Background()); err != nil { // ...meanwhile revoked and applied
		t.Fatal(err)
	}
	if s, _ := h.Subscribe(g); !ended(s) {
		t.Error("a socket checked before a revocation survived it")
	}
	g.Since = h.Horizon() // checked after: the revocation had ended the session already
	g.LinkID = 11
	if s := mustSubscribe(t, h, g); ended(s) {
		t.Error("a revocation of another link ended a socket")
	}
	// Checked so long ago that the hub forgot what happened since.
	now := time.Now()
	h.now = func() time.Time { return now.Add(2 * keepRecent) }
	l.add(2, imbee.RevokedCorporate, 0)
	h.Sync(context.Background())
	old := api
	old.Since = 1
	if s, _ := h.Subscribe(old); !ended(s) {
		t.Error("a socket checked before the forgotten revocations survived")
	}
}

// TestSinceAppliesTheLogFirst: a revocation committed before a socket's
// access check, but not yet read by the hub (the CLI disabled a corporate,
// then enabled it again, within one poll), is not taken as newer than the
// check: the socket, opened after the enable, stays open.
func TestSinceAppliesTheLogFirst(t *testing.T) {
	h, l := following(t)
	l.add(1, imbee.RevokedCorporate, 0) // the disable, not read yet
	g := api
	g.Since = h.Since(context.Background()) // ...then the access is checked: enabled again
	s := mustSubscribe(t, h, g)
	if err := h.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ended(s) {
		t.Error("a socket opened after a revocation was undone was ended by it")
	}
	stale := api
	stale.Since = 2 // what Horizon alone gave before the log was read
	if s, _ := h.Subscribe(stale); !ended(s) {
		t.Error("the check would not have failed without Since: the test proves nothing")
	}
}

func TestMaxSockets(t *testing.T) {
	h := NewHub()
	h.MaxSockets = 5
	var subs []*Sub
	for range 5 {
		subs = append(subs, mustSubscribe(t, h, web))
	}
	if _, err := h.Subscribe(web); !errors.Is(err, ErrTooManySockets) {
		t.Fatalf("a sixth socket of one session: %v", err)
	}
	other := web
	other.Key = "session:2"
	mustSubscribe(t, h, other) // another session counts apart
	h.Unsubscribe(subs[0])
	h.Unsubscribe(subs[0]) // twice frees one place only
	mustSubscribe(t, h, web)
	if _, err := h.Subscribe(web); !errors.Is(err, ErrTooManySockets) {
		t.Fatalf("after one closed, two more opened: %v", err)
	}
	h.MaxSockets = 0
	mustSubscribe(t, h, web)
	// A grant with no Since, once the hub follows a log, cannot be told
	// apart from one checked too long ago.
	h, _ = following(t)
	if s, _ := h.Subscribe(web); !ended(s) {
		t.Error("a socket with no Since survived")
	}
}

// Poll applies revocations that nothing announced (the CLI on SQLite).
func TestPoll(t *testing.T) {
	h, l := following(t)
	s := mustSubscribe(t, h, api)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Poll(ctx, 10*time.Millisecond)
	l.add(1, imbee.RevokedUserKeys, 20)
	select {
	case <-s.Ended():
	case <-time.After(10 * time.Second):
		t.Fatal("a polled revocation did not end the socket")
	}
	for deadline := time.Now().Add(10 * time.Second); h.Horizon() != l.horizon(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("horizon %d, log's %d", h.Horizon(), l.horizon())
		}
	}
}

// messageEvent is a new message's event in conversation "c".
func messageEvent(seq int64) imbee.Event {
	m := imbee.Message{CorporateID: 1, ConversationID: "c", Seq: seq}
	return imbee.Event{Type: "message", CorporateID: 1, ConversationID: "c", Seq: seq, Message: &m}
}

// promptly runs f, and fails the test if f has not returned within a
// generous deadline: Publish must never wait for a subscriber.
func promptly(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
	}
}

// A subscriber that falls behind keeps the events its buffer holds (the
// oldest); the rest are dropped and it is told, once, to catch up from the
// database. It stays subscribed.
func TestPublishFullBuffer(t *testing.T) {
	h := NewHub()
	s := mustSubscribe(t, h, api)
	n := int64(cap(s.C) + 10)
	promptly(t, "publishing past a full buffer", func() {
		for seq := int64(1); seq <= n; seq++ {
			h.Publish(messageEvent(seq))
		}
	})
	if len(s.C) != cap(s.C) {
		t.Fatalf("%d events queued, want %d", len(s.C), cap(s.C))
	}
	for want := int64(1); len(s.C) > 0; want++ {
		if p := <-s.C; p.Seq != want {
			t.Fatalf("event %d queued, want %d", p.Seq, want)
		}
	}
	select {
	case <-s.Missed():
	default:
		t.Fatal("the subscriber was not told it missed events")
	}
	select {
	case <-s.Missed():
		t.Error("the subscriber was told twice")
	default:
	}
	if ended(s) {
		t.Error("the subscriber was ended")
	}
	h.Publish(messageEvent(n + 1))
	select {
	case p := <-s.C:
		if p.Seq != n+1 {
			t.Errorf("event %d, want %d", p.Seq, n+1)
		}
	default:
		t.Error("a subscriber that fell behind gets no more events")
	}
}

// A subscriber that reads nothing does not hold up the others of its
// conversation: they get every event, in order, as it is published.
func TestPublishSlowSubscriber(t *testing.T) {
	h := NewHub()
	slow := mustSubscribe(t, h, api)
	fast := mustSubscribe(t, h, web)
	n := int64(4 * cap(fast.C))
	promptly(t, "publishing beside a subscriber that reads nothing", func() {
		for seq := int64(1); seq <= n; seq++ {
			h.Publish(messageEvent(seq))
			select {
			case p := <-fast.C:
				if p.Seq != seq {
					t.Errorf("event %d, want %d", p.Seq, seq)
					return
				}
			default:
				t.Errorf("event %d did not reach the other subscriber", seq)
				return
			}
		}
	})
	select {
	case <-fast.Missed():
		t.Error("the subscriber that keeps up was told it missed events")
	default:
	}
	select {
	case <-slow.Missed():
	default:
		t.Error("the slow subscriber was not told it missed events")
	}
	if len(slow.C) != cap(slow.C) {
		t.Errorf("the slow subscriber has %d events queued, want %d", len(slow.C), cap(slow.C))
	}
}

// TestHubOnline: a user is online while any of their sockets is open,
// however it closes (unsubscribed, or ended by a revocation, then
// unsubscribed); presence changes are signalled on the first socket and
// the last, not in between.
func TestHubOnline(t *testing.T) {
	h, l := following(t)
	changed := func() bool {
		select {
		case <-h.PresenceChanged():
			return true
		default:
			return false
		}
	}
	online := func(when string, want bool) {
		t.Helper()
		if got := h.UserOnline(1, 20); got != want {
			t.Errorf("%s: user online %v, want %v", when, got, want)
		}
		if got := h.OnlineUsers()[User{1, 20}]; got != want {
			t.Errorf("%s: in OnlineUsers %v, want %v", when, got, want)
		}
	}
	online("no socket", false)
	g := web
	g.Since = h.Horizon()
	a := mustSubscribe(t, h, g)
	online("one socket", true)
	if !changed() {
		t.Error("the first socket signalled nothing")
	}
	g2 := api
	g2.Since = h.Horizon()
	b := mustSubscribe(t, h, g2)
	if changed() {
		t.Error("a second socket signalled a change")
	}
	h.Unsubscribe(a)
	h.Unsubscribe(a)
	online("one of two closed (twice)", true)
	if changed() {
		t.Error("closing one of two signalled a change")
	}
	other := api
	other.CorporateID, other.Since = 2, h.Horizon()
	mustSubscribe(t, h, other)
	changed()
	l.add(1, imbee.RevokedCorporate, 0)
	if err := h.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !ended(b) {
		t.Fatal("the revocation did not end the socket")
	}
	online("the last socket ended by a revocation", false)
	if !changed() {
		t.Error("the last socket's end signalled nothing")
	}
	h.Unsubscribe(b)
	if !h.UserOnline(2, 20) || len(h.OnlineUsers()) != 1 {
		t.Errorf("the same user id in another corporate: online %v, users %v", h.UserOnline(2, 20), h.OnlineUsers())
	}
}

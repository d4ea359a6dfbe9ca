// Package realtime tells a conversation's connected members what happens in
// it as it happens: new messages and read marks, over WebSockets. The hub
// fans events out inside one server, encoding each frame once for all the
// conversation's sockets; on PostgreSQL each server's bridge reads what the
// other servers commit (the store's outbox, hinted by LISTEN/NOTIFY) once
// for the server, messages included, and hands it to the hub. An event is
// only a hint: a socket that misses one (a full buffer, a gap in seqs)
// reads what it lacks from the database, messages and read marks, so a
// client sees every message once, in order.
//
// Ending access ends sockets: every socket is registered with what let it
// open (its Grant), and the hub follows the revocations log that every
// revoking transaction writes to, closing the sockets each revocation
// names. Every event and every read of messages carries the horizon of the
// log its transaction saw (imbee.Horizon); the hub applies the log up to
// that horizon before a socket gets anything, so nothing committed after a
// revocation reaches a socket it ends, whichever server committed it.
package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imbee/imbee"
)

// RevocationLog is the log of endings of access that the hub follows.
type RevocationLog interface {
	// Revocations returns up to limit revocations at or after horizon h,
	// oldest first, and the horizon they reach.
	Revocations(ctx context.Context, h imbee.Horizon, limit int) ([]imbee.Revocation, imbee.Horizon, error)
	// RevocationsHorizon is the log's horizon now.
	RevocationsHorizon(ctx context.Context) (imbee.Horizon, error)
}

// ErrTooManySockets is Subscribe's answer when the grant's key has
// MaxSockets sockets open already.
var ErrTooManySockets = errors.New("too many open sockets")

// Hub fans events out to the subscribers of each conversation.
type Hub struct {
	// MaxSockets caps the sockets open at once per Grant.Key, on this
	// server; 0: no cap. Set it before the hub is used.
	MaxSockets int

	mu     sync.RWMutex
	subs   map[string]map[*Sub]struct{}
	byCorp map[int64]map[*Sub]struct{}
	open   map[string]int // sockets open per Grant.Key
	// online counts each user's sockets; a user's first and last one
	// signal presence.
	online   map[User]int
	presence chan struct{}
	// recent are the revocations applied lately, for sockets whose access
	// was checked before they were applied but which subscribe after;
	// every revocation at or after recentFrom is in it.
	recent     []appliedRevocation
	recentFrom imbee.Horizon

	syncMu  sync.Mutex // one read of the log at a time
	log     RevocationLog
	horizon atomic.Int64 // every revocation below it has been applied
	now     func() time.Time
}

type appliedRevocation struct {
	imbee.Revocation
	at time.Time
}

// keepRecent is how long applied revocations are kept for sockets whose
// access check began before them: far longer than any check takes.
const keepRecent = time.Minute

// syncPage is how many revocations one read of the log takes.
const syncPage = 500

// NewHub returns an empty hub. Until Follow is called it ends no sockets.
func NewHub() *Hub {
	return &Hub{subs: map[string]map[*Sub]struct{}{}, byCorp: map[int64]map[*Sub]struct{}{}, open: map[string]int{},
		online: map[User]int{}, presence: make(chan struct{}, 1), now: time.Now}
}

// Grant is what let a socket open: the hub closes the socket when a
// revocation names it.
type Grant struct {
	CorporateID    int64
	ConversationID string
	// Key is what MaxSockets counts: the web session or the apikey
	// ("" counts nothing).
	Key string
	// A web chat socket has its session's link (LinkID, never 0), the
	// link's user and bot; a socket opened with credentials has the user
	// whose apikey opened it (UserID) and no LinkID; a web app socket has
	// the user who signed in (UserID) and the app session (AppSessionID),
	// and ends as the user's credentials do.
	LinkID, UserID, BotID int64
	AppSessionID          int64
	// Expires, when set, is when the socket's session ends: the socket
	// closes then.
	Expires time.Time
	// Since is the hub's Horizon read before the access was checked. (Left
	// 0 once the hub follows a log, the socket is ended at once: the hub
	// cannot tell what was revoked since.)
	Since imbee.Horizon
}

// EndedBy says whether r ends the access g was granted with.
func (g *Grant) EndedBy(r imbee.Revocation) bool {
	if r.CorporateID != g.CorporateID {
		return false
	}
	web := g.LinkID != 0
	switch r.Kind {
	case imbee.RevokedCorporate:
		return true
	case imbee.RevokedCorporateKeys:
		return !web && g.AppSessionID == 0 // a person's sign-in is not the corporate's key
	case imbee.RevokedUserKeys:
		return !web && g.UserID == r.Subject
	case imbee.RevokedLink:
		return web && g.LinkID == r.Subject
	case imbee.RevokedUserLinks:
		return web && g.UserID == r.Subject
	case imbee.RevokedBot:
		return web && g.BotID == r.Subject
	case imbee.RevokedAppSession:
		return g.AppSessionID != 0 && g.AppSessionID == r.Subject
	}
	// A kind this server does not know (a newer server wrote it): ending
	// too much costs a reconnect, ending too little a leak.
	return true
}

// Sub is one subscriber: a socket of one conversation.
type Sub struct {
	key   string
	grant Grant
	// C carries the events; when it is full, events are dropped and
	// Missed is set, and the subscriber catches up from the database.
	C      chan Published
	missed chan struct{}
	ended  chan struct{} // closed when a revocation ends the grant
	done   bool          // ended closed; guarded by the hub's mu
	gone   bool          // unsubscribed; guarded by the hub's mu
	online bool          // counted in the hub's online; guarded by its mu
}

// User is a corporate's user.
type User struct{ CorporateID, UserID int64 }

// Published is an event as the hub hands it out: with its frame already
// encoded when the event carries everything a socket sends, so that a
// group's hundred sockets do not encode the same message a hundred times.
type Published struct {
	imbee.Event
	Frame []byte // nil when the socket must read from the database
}

// Missed receives a value when events for s were dropped.
func (s *Sub) Missed() <-chan struct{} { return s.missed }

// Ended is closed when access that opened s has been revoked: the socket
// must close, sending nothing more.
func (s *Sub) Ended() <-chan struct{} { return s.ended }

// Grant is what s was opened with.
func (s *Sub) Grant() Grant { return s.grant }

func key(corporateID int64, conversationID string) string {
	return strconv.FormatInt(corporateID, 10) + "/" + conversationID
}

// Horizon is how far the hub has applied the revocations log. Read it
// before checking a socket's access, and give it to Subscribe as
// Grant.Since.
func (h *Hub) Horizon() imbee.Horizon { return imbee.Horizon(h.horizon.Load()) }

// UserOnline says whether the corporate's user has a socket open on this
// server, on any of their conversations (opened with their apikey, a link
// or the web app): someone looking needs no push.
func (h *Hub) UserOnline(corporateID, userID int64) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.online[User{corporateID, userID}] > 0
}

// OnlineUsers are the users with a socket open on this server.
func (h *Hub) OnlineUsers() map[User]bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make(map[User]bool, len(h.online))
	for u := range h.online {
		out[u] = true
	}
	return out
}

// PresenceChanged receives a value when a user's first socket on this
// server opened or their last one closed, since the last receive.
func (h *Hub) PresenceChanged() <-chan struct{} { return h.presence }

// countOnline adds s to its user's sockets. h.mu is held.
func (h *Hub) countOnline(s *Sub) {
	if s.grant.UserID == 0 {
		return
	}
	s.online = true
	u := User{s.grant.CorporateID, s.grant.UserID}
	if h.online[u]++; h.online[u] == 1 {
		h.signalPresence()
	}
}

// uncountOnline takes s out of its user's sockets. h.mu is held.
func (h *Hub) uncountOnline(s *Sub) {
	if !s.online {
		return
	}
	s.online = false
	u := User{s.grant.CorporateID, s.grant.UserID}
	if h.online[u]--; h.online[u] <= 0 {
		delete(h.online, u)
		h.signalPresence()
	}
}

func (h *Hub) signalPresence() {
	select {
	case h.presence <- struct{}{}:
	default:
	}
}

// Subscribe starts receiving the conversation's events for a socket opened
// with g. It returns ErrTooManySockets when g.Key has MaxSockets sockets
// already. A revocation applied since g.Since that ends g ends the Sub at
// once.
func (h *Hub) Subscribe(g Grant) (*Sub, error) {
	s := &Sub{key: key(g.CorporateID, g.ConversationID), grant: g, C: make(chan Published, 64),
		missed: make(chan struct{}, 1), ended: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.MaxSockets > 0 && g.Key != "" {
		if h.open[g.Key] >= h.MaxSockets {
			return nil, ErrTooManySockets
		}
		h.open[g.Key]++
	}
	if g.Since < h.recentFrom {
		// Checked so long ago that the revocations since are forgotten.
		h.end(s)
		return s, nil
	}
	for _, r := range h.recent {
		if imbee.Horizon(r.ID) >= g.Since && g.EndedBy(r.Revocation) {
			h.end(s)
			return s, nil
		}
	}
	add(h.subs, s.key, s)
	add(h.byCorp, g.CorporateID, s)
	h.countOnline(s)
	return s, nil
}

func add[K comparable](m map[K]map[*Sub]struct{}, k K, s *Sub) {
	if m[k] == nil {
		m[k] = map[*Sub]struct{}{}
	}
	m[k][s] = struct{}{}
}

func remove[K comparable](m map[K]map[*Sub]struct{}, k K, s *Sub) {
	if set := m[k]; set != nil {
		delete(set, s)
		if len(set) == 0 {
			delete(m, k)
		}
	}
}

// Unsubscribe stops s's events and frees its place under MaxSockets.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.gone {
		return
	}
	s.gone = true
	remove(h.subs, s.key, s)
	remove(h.byCorp, s.grant.CorporateID, s)
	h.uncountOnline(s)
	if h.MaxSockets > 0 && s.grant.Key != "" {
		if h.open[s.grant.Key]--; h.open[s.grant.Key] <= 0 {
			delete(h.open, s.grant.Key)
		}
	}
}

// end takes s out of the fan-out and tells its socket to close. h.mu is
// held.
func (h *Hub) end(s *Sub) {
	remove(h.subs, s.key, s)
	remove(h.byCorp, s.grant.CorporateID, s)
	h.uncountOnline(s)
	if !s.done {
		s.done = true
		close(s.ended)
	}
}

// Follow makes the hub follow log from its current end: from then on,
// revocations end the sockets they name once the hub reads them (Sync,
// Poll, or an event whose horizon is ahead of the hub's).
func (h *Hub) Follow(ctx context.Context, log RevocationLog) error {
	start, err := log.RevocationsHorizon(ctx)
	if err != nil {
		return err
	}
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	h.mu.Lock()
	h.recentFrom = start
	h.mu.Unlock()
	h.log = log
	h.horizon.Store(int64(start))
	return nil
}

// Poll reads the log every interval until ctx ends: revocations from a
// process that cannot tell this one (the CLI on SQLite, another server
// whose NOTIFY was lost) take effect within about interval.
func (h *Hub) Poll(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.Sync(ctx) // an error is retried at the next tick
	}
}

// Since is what a socket's Grant.Since should be: call it before checking
// the socket's access. It first applies every revocation committed so far,
// so that one committed before the check (and perhaps undone since, as a
// disable by an enable) is not taken as newer than it, and the socket is
// ended only by revocations that may follow its check. If the log cannot be
// read, the horizon reached so far is returned: a socket may then be ended
// needlessly, never kept wrongly.
func (h *Hub) Since(ctx context.Context) imbee.Horizon {
	h.Sync(ctx)
	return h.Horizon()
}

// Sync applies every revocation committed so far. A server calls it after
// it revokes, so that its own sockets are closed before it answers.
func (h *Hub) Sync(ctx context.Context) error { return h.reach(ctx, 0) }

// reach applies the log at least up to horizon need; need 0 means up to
// what is committed now.
func (h *Hub) reach(ctx context.Context, need imbee.Horizon) error {
	if need != 0 && need <= h.Horizon() {
		return nil
	}
	h.syncMu.Lock()
	defer h.syncMu.Unlock()
	if h.log == nil || need != 0 && need <= h.Horizon() {
		return nil // no log, or another call read it meanwhile
	}
	for {
		rs, next, err := h.log.Revocations(ctx, h.Horizon(), syncPage)
		if err != nil {
			return err
		}
		h.apply(rs, next)
		if len(rs) < syncPage {
			return nil
		}
	}
}

// apply ends the subscribers that rs name, then moves the horizon to next:
// an event's fan-out that sees the new horizon sees them gone.
func (h *Hub) apply(rs []imbee.Revocation, next imbee.Horizon) {
	if len(rs) == 0 {
		return
	}
	now := h.now()
	h.mu.Lock()
	for _, r := range rs {
		for s := range h.byCorp[r.CorporateID] {
			if s.grant.EndedBy(r) {
				h.end(s)
			}
		}
		h.recent = append(h.recent, appliedRevocation{r, now})
	}
	i := 0
	for i < len(h.recent) && now.Sub(h.recent[i].at) > keepRecent {
		h.recentFrom = imbee.Horizon(h.recent[i].ID + 1)
		i++
	}
	h.recent = h.recent[i:]
	h.mu.Unlock()
	h.horizon.Store(int64(next))
}

// syncTimeout bounds a read of the log made for an event.
const syncTimeout = 5 * time.Second

// Publish tells this server's subscribers of e; it never blocks on a
// subscriber. (The store tells the other servers, on PostgreSQL, through
// its outbox.) When e's horizon is ahead of the hub's (or not known), the
// hub first reads the log, so that no socket a revocation ends gets e; if
// that read fails, the conversation's sockets are told to catch up instead
// (their read checks again). An event of type "missed", from a bridge that
// may have lost events, makes every subscriber catch up from the database;
// one of type "revoked", from another server, makes the hub read the log.
func (h *Hub) Publish(e imbee.Event) {
	switch e.Type {
	case "revoked":
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		h.Sync(ctx) // an error is retried by Poll
		cancel()
		return
	case "missed":
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		h.Sync(ctx) // if this fails, each socket's catch-up reads it
		cancel()
		h.mu.RLock()
		defer h.mu.RUnlock()
		for _, m := range h.subs {
			for s := range m {
				s.miss()
			}
		}
		return
	}
	k := key(e.CorporateID, e.ConversationID)
	h.mu.RLock()
	n := len(h.subs[k])
	h.mu.RUnlock()
	if n == 0 {
		return
	}
	if e.Horizon == 0 || e.Horizon > h.Horizon() {
		ctx, cancel := context.WithTimeout(context.Background(), syncTimeout)
		err := h.reach(ctx, e.Horizon)
		cancel()
		if err != nil {
			h.mu.RLock()
			for s := range h.subs[k] {
				s.miss()
			}
			h.mu.RUnlock()
			return
		}
	}
	p := Published{Event: e}
	switch {
	case e.Type == "message" && e.Message != nil:
		p.Frame, _ = json.Marshal(Frame{Type: "message", Message: View(*e.Message)})
	case e.Type == "read":
		p.Frame, _ = json.Marshal(Frame{Type: "read", Member: e.Member, Seq: e.Seq})
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	for s := range h.subs[k] {
		select {
		case s.C <- p:
		default:
			s.miss()
		}
	}
}

func (s *Sub) miss() {
	select {
	case s.missed <- struct{}{}:
	default:
	}
}

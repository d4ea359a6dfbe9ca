// Package realtime tells a conversation's connected members what happens in
// it as it happens: new messages and read marks, over WebSockets. The hub
// fans events out inside one server; on PostgreSQL a bridge carries them to
// the other servers with LISTEN/NOTIFY. An event is only a hint: a socket
// that misses one (a full buffer, another server's message) reads what it
// lacks from the database, so a client sees every message once, in order.
package realtime

import (
	"encoding/json"
	"strconv"
	"sync"

	"github.com/imbee/imbee"
)

// Hub fans events out to the subscribers of each conversation.
type Hub struct {
	mu   sync.RWMutex
	subs map[string]map[*Sub]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[string]map[*Sub]struct{}{}} }

// Sub is one subscriber: a socket of one conversation.
type Sub struct {
	key string
	// C carries the events; when it is full, events are dropped and
	// Missed is set, and the subscriber catches up from the database.
	C      chan Published
	missed chan struct{}
}

// Published is an event as the hub hands it out: with its frame already
// encoded when the event carries everything a socket sends, so that a
// group's hundred sockets do not encode the same message a hundred times.
type Published struct {
	imbee.Event
	Frame []byte // nil when the socket must read from the database
}

// Missed receives a value when events for s were dropped.
func (s *Sub) Missed() <-chan struct{} { return s.missed }

func key(corporateID int64, conversationID string) string {
	return strconv.FormatInt(corporateID, 10) + "/" + conversationID
}

// Subscribe starts receiving the conversation's events.
func (h *Hub) Subscribe(corporateID int64, conversationID string) *Sub {
	s := &Sub{key: key(corporateID, conversationID), C: make(chan Published, 64), missed: make(chan struct{}, 1)}
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.subs[s.key]
	if m == nil {
		m = map[*Sub]struct{}{}
		h.subs[s.key] = m
	}
	m[s] = struct{}{}
	return s
}

// Unsubscribe stops s's events.
func (h *Hub) Unsubscribe(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.subs[s.key]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.key)
		}
	}
}

// Publish tells this server's subscribers of e; it never blocks. (The
// store tells the other servers, on PostgreSQL, when it commits.) An event
// of type "missed", from a bridge that lost its connection, makes every
// subscriber catch up from the database.
func (h *Hub) Publish(e imbee.Event) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if e.Type == "missed" {
		for _, m := range h.subs {
			for s := range m {
				s.miss()
			}
		}
		return
	}
	subs := h.subs[key(e.CorporateID, e.ConversationID)]
	if len(subs) == 0 {
		return
	}
	p := Published{Event: e}
	switch {
	case e.Type == "message" && e.Message != nil:
		p.Frame, _ = json.Marshal(Frame{Type: "message", Message: View(*e.Message)})
	case e.Type == "read":
		p.Frame, _ = json.Marshal(Frame{Type: "read", Member: e.Member, Seq: e.Seq})
	}
	for s := range subs {
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

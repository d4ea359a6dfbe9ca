package realtime

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/coder/websocket"

	"github.com/imbee/imbee"
)

// History is what a socket reads to catch up.
type History interface {
	MessagesAfter(ctx context.Context, corporateID int64, conversationID string, seq int64, limit int) ([]imbee.Message, error)
	// ReadMarks returns how far each member has read (those who have
	// read any), and the horizon of the read (see imbee.Horizon).
	ReadMarks(ctx context.Context, corporateID int64, conversationID string) (map[string]int64, imbee.Horizon, error)
}

// Frame is what a socket sends: {"type": "message", "message": {…}},
// {"type": "read", "member": …, "seq": …}, or, once the messages after the
// client's seq have been sent, {"type": "ready", "seq": …}.
type Frame struct {
	Type    string       `json:"type"`
	Message *MessageView `json:"message,omitempty"`
	Member  string       `json:"member,omitempty"`
	Seq     int64        `json:"seq,omitempty"`
}

// MessageView is a message as the API and sockets show it.
type MessageView struct {
	ConversationID string `json:"conversationId"`
	Seq            int64  `json:"seq"`
	Sender         string `json:"sender"`
	SenderIsBot    bool   `json:"sender_is_bot"`
	Text           string `json:"text"`
	ClientMsgID    string `json:"clientMsgId,omitempty"`
	CreatedAt      string `json:"created_at"`
}

// View is m as clients see it.
func View(m imbee.Message) *MessageView {
	return &MessageView{ConversationID: m.ConversationID, Seq: m.Seq, Sender: m.Sender, SenderIsBot: m.SenderIsBot,
		Text: m.Text, ClientMsgID: m.ClientMsgID, CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339)}
}

const (
	pageSize     = 200
	pingInterval = 30 * time.Second
	writeTimeout = 10 * time.Second
)

// Serve upgrades the request to a WebSocket for a member of a conversation
// (the caller has checked that, and subscribed sub with what granted it)
// and sends it every message after seq after, in order, then each new
// message and read mark as they happen, until the client leaves, its
// access is revoked or its session expires (close code 1008 for both).
// Browsers' sockets must come from this server's own pages (the Origin
// check of the WebSocket library).
func Serve(w http.ResponseWriter, r *http.Request, h *Hub, sub *Sub, hist History, log *slog.Logger, after int64) {
	defer h.Unsubscribe(sub)
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	defer c.CloseNow()
	// Clients say nothing after the handshake; reading handles pings and
	// the close, and ends ctx when the client goes.
	ctx := c.CloseRead(context.WithoutCancel(r.Context()))
	g := sub.Grant()
	s := &socket{c: c, hub: h, sub: sub, hist: hist, corp: g.CorporateID, conv: g.ConversationID, sent: after, marks: map[string]int64{}}
	var expired <-chan time.Time
	if !g.Expires.IsZero() {
		t := time.NewTimer(time.Until(g.Expires))
		defer t.Stop()
		expired = t.C
	}
	// Subscribed first, then caught up: nothing committed in between is
	// missed, and anything seen twice is skipped by seq.
	if err := s.catchUp(ctx); err != nil {
		s.end(log, err)
		return
	}
	if err := s.write(ctx, Frame{Type: "ready", Seq: s.sent}); err != nil {
		s.end(log, err)
		return
	}
	ping := time.NewTicker(pingInterval)
	defer ping.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			c.Close(websocket.StatusNormalClosure, "")
			return
		case <-sub.Ended():
			err = errRevoked
		case <-expired:
			err = errExpired
		case e := <-sub.C:
			err = s.deliver(ctx, e)
		case <-sub.Missed():
			err = s.recover(ctx)
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, writeTimeout)
			err = c.Ping(pctx)
			cancel()
		}
		if err != nil {
			s.end(log, err)
			return
		}
	}
}

// Why a socket closes with 1008 (policy violation).
var (
	errRevoked = errors.New("access revoked")
	errExpired = errors.New("session expired")
)

type socket struct {
	c    *websocket.Conn
	hub  *Hub
	sub  *Sub
	hist History
	corp int64
	conv string
	sent int64 // the last seq sent
	// marks are the read marks sent, by member: a mark is sent once, and
	// never one behind it.
	marks map[string]int64
}

// deliver sends what p tells of: the message itself when it is the next
// one, else whatever the database has after the last seq sent.
func (s *socket) deliver(ctx context.Context, p Published) error {
	if s.revoked() {
		return errRevoked // queued before the revocation, but not sent
	}
	switch {
	case p.Type == "read":
		return s.mark(ctx, p.Member, p.Seq, p.Frame)
	case p.Seq <= s.sent:
		return nil // already sent
	case p.Frame != nil && p.Seq == s.sent+1:
		s.sent = p.Seq
		return s.writeRaw(ctx, p.Frame)
	}
	return s.catchUp(ctx)
}

// catchUp sends every stored message after the last seq sent. Before it
// sends what it read, the hub applies the revocations the read saw, so a
// message committed after this socket's access ended is never sent.
func (s *socket) catchUp(ctx context.Context) error {
	for {
		ms, err := s.hist.MessagesAfter(ctx, s.corp, s.conv, s.sent, pageSize)
		if err != nil {
			return err
		}
		var horizon imbee.Horizon
		for _, m := range ms {
			horizon = max(horizon, m.Horizon)
		}
		if len(ms) > 0 {
			if err := s.hub.reach(ctx, horizon); err != nil {
				return err
			}
		}
		if s.revoked() {
			return errRevoked
		}
		for _, m := range ms {
			s.sent = m.Seq
			if err := s.write(ctx, Frame{Type: "message", Message: View(m)}); err != nil {
				return err
			}
		}
		if len(ms) < pageSize {
			return nil
		}
	}
}

// mark sends member's read mark seq (frame, when not nil, is it encoded),
// unless a mark as far has been sent; the message it reaches goes first.
func (s *socket) mark(ctx context.Context, member string, seq int64, frame []byte) error {
	if seq <= s.marks[member] {
		return nil
	}
	if seq > s.sent {
		if err := s.catchUp(ctx); err != nil {
			return err
		}
	}
	s.marks[member] = seq
	if frame != nil {
		return s.writeRaw(ctx, frame)
	}
	return s.write(ctx, Frame{Type: "read", Member: member, Seq: seq})
}

// recover sends what events missed may have told of: the messages after
// the last seq sent, then the read marks ahead of those sent.
func (s *socket) recover(ctx context.Context) error {
	if err := s.catchUp(ctx); err != nil {
		return err
	}
	marks, horizon, err := s.hist.ReadMarks(ctx, s.corp, s.conv)
	if err != nil || len(marks) == 0 {
		return err
	}
	if err := s.hub.reach(ctx, horizon); err != nil {
		return err
	}
	if s.revoked() {
		return errRevoked
	}
	for _, member := range slices.Sorted(maps.Keys(marks)) {
		if err := s.mark(ctx, member, marks[member], nil); err != nil {
			return err
		}
	}
	return nil
}

func (s *socket) write(ctx context.Context, f Frame) error {
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return s.writeRaw(ctx, b)
}

func (s *socket) writeRaw(ctx context.Context, b []byte) error {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return s.c.Write(wctx, websocket.MessageText, b)
}

func (s *socket) revoked() bool {
	select {
	case <-s.sub.Ended():
		return true
	default:
		return false
	}
}

func (s *socket) end(log *slog.Logger, err error) {
	switch {
	case errors.Is(err, errRevoked), errors.Is(err, errExpired):
		s.c.Close(websocket.StatusPolicyViolation, err.Error())
		return
	case errors.Is(err, context.Canceled) || websocket.CloseStatus(err) != -1:
		return
	}
	log.Debug("socket ended", "conversation", s.conv, "err", err)
	s.c.Close(websocket.StatusInternalError, "")
}

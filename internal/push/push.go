// Package push tells people of new messages while they are not looking:
// Web Push (RFC 8030) to the browsers they turned notifications on in,
// encrypted for each browser (RFC 8291) and signed with the server's VAPID
// key (RFC 8292), when none of their sockets is open. A push is a hint,
// not the message's delivery: it is sent once, best effort, after the
// message is committed; a subscription that its push service says is gone
// (404, 410) is forgotten.
package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"unicode/utf8"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/imbee/imbee"
)

// Store is what the pushes read and forget.
type Store interface {
	PushTargets(ctx context.Context, corporateID int64, conversationID, sender string) ([]imbee.PushSubscription, error)
	DeletePushSubscription(ctx context.Context, corporateID, userID int64, endpoint string) error
}

// Presence says whether a user has a socket open (realtime.Hub).
type Presence interface {
	UserOnline(corporateID, userID int64) bool
}

// Config is the pusher's identity and its way out.
type Config struct {
	VAPIDPrivate, VAPIDPublic string // secret.Keyring.VAPID
	// Subscriber is the contact that push services see in the VAPID
	// token's "sub": an https URL as it is, anything else as a mail address
	// (mailto: is added).
	Subscriber string
	// Client posts to push services: the same guard as bots' webhooks,
	// since a browser chose the endpoint.
	Client *http.Client
	// TTL is how long a push service keeps a push for a browser that is
	// offline, in seconds.
	TTL int
}

// Pusher sends the pushes, from a queue of its own: a send never waits
// for a push service.
type Pusher struct {
	store    Store
	presence Presence
	cfg      Config
	log      *slog.Logger
	queue    chan imbee.Message
}

// queueSize bounds the messages waiting to be pushed; past it, pushes are
// dropped (and counted in the log): they are hints.
const queueSize = 1024

// New returns a Pusher; Run sends what Notify queues.
func New(s Store, presence Presence, cfg Config, log *slog.Logger) *Pusher {
	if cfg.TTL <= 0 {
		cfg.TTL = 3600
	}
	return &Pusher{store: s, presence: presence, cfg: cfg, log: log, queue: make(chan imbee.Message, queueSize)}
}

// Notify queues the pushes for a message just committed. It never blocks.
func (p *Pusher) Notify(m imbee.Message) {
	select {
	case p.queue <- m:
	default:
		p.log.Warn("push queue full: a message's pushes are dropped", "conversation", m.ConversationID, "seq", m.Seq)
	}
}

// Run sends the queued pushes until ctx ends.
func (p *Pusher) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-p.queue:
			p.send(ctx, m)
		}
	}
}

// Payload is what a push carries to the browser's service worker: enough
// to show a notification and open the chat.
type Payload struct {
	ConversationID string `json:"conversationId"`
	Seq            int64  `json:"seq"`
	Text           string `json:"text"`
}

// maxPushText bounds the text a push carries: push services take about
// 4 KB of payload.
const maxPushText = 500

func (p *Pusher) send(ctx context.Context, m imbee.Message) {
	targets, err := p.store.PushTargets(ctx, m.CorporateID, m.ConversationID, m.Sender)
	if err != nil {
		p.log.Error("read push targets", "err", err)
		return
	}
	text := m.Text
	if utf8.RuneCountInString(text) > maxPushText {
		text = string([]rune(text)[:maxPushText]) + "…"
	}
	body, _ := json.Marshal(Payload{ConversationID: m.ConversationID, Seq: m.Seq, Text: text})
	for _, t := range targets {
		if p.presence.UserOnline(t.CorporateID, t.UserID) {
			continue
		}
		if err := p.post(ctx, t, body); err != nil {
			p.log.Warn("push failed", "corporate", t.CorporateID, "subscription", t.ID, "err", err)
		}
	}
}

// errGone is a push service's answer that the subscription is no more.
var errGone = errors.New("subscription gone")

func (p *Pusher) post(ctx context.Context, t imbee.PushSubscription, body []byte) error {
	sub := &webpush.Subscription{Endpoint: t.Endpoint, Keys: webpush.Keys{
		P256dh: base64.RawURLEncoding.EncodeToString(t.P256dh), Auth: base64.RawURLEncoding.EncodeToString(t.Auth)}}
	resp, err := webpush.SendNotificationWithContext(ctx, body, sub, &webpush.Options{
		HTTPClient: p.cfg.Client, Subscriber: p.cfg.Subscriber, TTL: p.cfg.TTL, Urgency: webpush.UrgencyNormal,
		VAPIDPublicKey: p.cfg.VAPIDPublic, VAPIDPrivateKey: p.cfg.VAPIDPrivate,
	})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		if err := p.store.DeletePushSubscription(ctx, t.CorporateID, t.UserID, t.Endpoint); err != nil {
			return err
		}
		return errGone
	case resp.StatusCode/100 != 2:
		return errors.New("push service answered " + resp.Status)
	}
	return nil
}

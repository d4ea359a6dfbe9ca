package writes_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/pgtest"
	"github.com/imbee/imbee/internal/realtime"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/testkit"
	"github.com/imbee/imbee/internal/writes"
)

// TestMain starts PostgreSQL for the tests' "postgres" halves.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// fixture is a new database of the test's backend, with a corporate, a bot
// with a webhook, and a link of ana's spent once (its session's chat is
// the conversation the tests write to); and the writes over it, whose
// effects reach a real hub that follows the store's revocations log
// through an observer.
type fixture struct {
	s    *store.Store
	w    *writes.Runner
	hub  *realtime.Hub
	obs  *observer
	corp imbee.Corporate
	bot  imbee.Bot
	link imbee.Link
	sess imbee.Session // ana's web session: its chat, link, user and bot
	h0   imbee.Horizon // the revocations log's horizon when the fixture was made
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	keys, err := secret.NewKeyring(make([]byte, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, testkit.DSN(t), keys, store.Options{Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &fixture{s: s}
	if f.corp, _, err = s.CreateCorporate(ctx, "Acme", "UTC"); err != nil {
		t.Fatal(err)
	}
	if f.bot, err = s.CreateBot(ctx, f.corp.ID, "Helper"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetBotWebhook(ctx, f.corp.ID, f.bot.IDSha, "https://hooks.example.com/bot"); err != nil {
		t.Fatal(err)
	}
	f.link, err = s.IssueLink(ctx, linkRequest(f.corp, f.bot))
	if err != nil {
		t.Fatal(err)
	}
	if f.sess, _, err = s.SpendLink(ctx, f.link.Token, imbee.LinkAttempt{Method: "POST", Address: "192.0.2.1", Agent: "browser"}); err != nil {
		t.Fatal(err)
	}
	f.hub = realtime.NewHub()
	if err := f.hub.Follow(ctx, s); err != nil {
		t.Fatal(err)
	}
	f.h0 = f.hub.Horizon()
	f.obs = &observer{hub: f.hub, state: f.state}
	f.w = writes.New(s, writes.Effects{Events: f.obs, Deliveries: waker{f.obs, "deliveries"}, Webhooks: waker{f.obs, "webhooks"}}, nil)
	return f
}

func linkRequest(c imbee.Corporate, bot imbee.Bot) imbee.LinkRequest {
	end := time.Now().AddDate(0, 0, 2).UTC().Truncate(24 * time.Hour)
	return imbee.LinkRequest{CorporateID: c.ID, UniqueID: "ana", BotIDSha: bot.IDSha, MaxUses: 5,
		DateLimit: end.AddDate(0, 0, -1).Format(time.DateOnly), ExpiresAt: end,
		Recipients: []imbee.Recipient{{Channel: imbee.ChannelMail, Address: "ana@example.com"}}}
}

// state is what the database holds that the effects follow: the chat's
// messages and ana's read mark in it, the deliveries and webhook events
// queued, and the revocations committed since the fixture was made.
func (f *fixture) state() string {
	ctx := context.Background()
	_, _, last, read, err := f.s.Messages(ctx, f.corp.ID, f.sess.ConversationID, f.sess.UserIDSha, imbee.MessagePage{Limit: 1})
	if err != nil {
		return err.Error()
	}
	ds, err := f.s.Deliveries(ctx, "", 100)
	if err != nil {
		return err.Error()
	}
	es, err := f.s.WebhookEvents(ctx, "", 100)
	if err != nil {
		return err.Error()
	}
	h, err := f.s.RevocationsHorizon(ctx)
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("%d messages, read %d, %d deliveries, %d webhook events, %d revocations", last, read, len(ds), len(es), h-f.h0)
}

// webGrant and apiGrant are sockets of the chat: ana's web chat's, and
// one opened with her apikey.
func (f *fixture) webGrant() realtime.Grant {
	return realtime.Grant{CorporateID: f.corp.ID, ConversationID: f.sess.ConversationID,
		LinkID: f.sess.LinkID, UserID: f.sess.UserID, BotID: f.sess.BotID, Since: f.hub.Horizon()}
}

func (f *fixture) apiGrant() realtime.Grant {
	return realtime.Grant{CorporateID: f.corp.ID, ConversationID: f.sess.ConversationID, UserID: f.sess.UserID, Since: f.hub.Horizon()}
}

func (f *fixture) subscribe(t *testing.T, g realtime.Grant) *realtime.Sub {
	t.Helper()
	sub, err := f.hub.Subscribe(g)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.hub.Unsubscribe(sub) })
	return sub
}

func (f *fixture) message(text, clientMsgID string) imbee.MessageRequest {
	return imbee.MessageRequest{CorporateID: f.corp.ID, ConversationID: f.sess.ConversationID, Sender: f.sess.UserIDSha,
		Text: text, ClientMsgID: clientMsgID}
}

// observer stands between the writes and their effects: it records each
// effect with the database's state as the effect runs, then passes events
// on to the real hub.
type observer struct {
	hub   *realtime.Hub
	state func() string
	mu    sync.Mutex
	seen  []string
}

func (o *observer) record(effect string) {
	st := o.state()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.seen = append(o.seen, effect+": "+st)
}

// take returns the effects recorded since the last call.
func (o *observer) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	seen := o.seen
	o.seen = nil
	return seen
}

func (o *observer) Publish(e imbee.Event) {
	o.record("publish " + e.Type)
	o.hub.Publish(e)
}

func (o *observer) Sync(ctx context.Context) error {
	o.record("sync")
	return o.hub.Sync(ctx)
}

type waker struct {
	o    *observer
	name string
}

func (k waker) Kick() { k.o.record("kick " + k.name) }

func wantEffects(t *testing.T, o *observer, want ...string) {
	t.Helper()
	if got := o.take(); !slices.Equal(got, want) {
		t.Errorf("effects:\n got %q\nwant %q", got, want)
	}
}

// received says whether sub has an event waiting: the hub's fan-out runs
// inside Publish, so an event published is there at once.
func received(sub *realtime.Sub) (imbee.Event, bool) {
	select {
	case p := <-sub.C:
		return p.Event, true
	default:
		return imbee.Event{}, false
	}
}

func ended(sub *realtime.Sub) bool {
	select {
	case <-sub.Ended():
		return true
	default:
		return false
	}
}

// TestSendMessage: a new message is on the chat's sockets and wakes the
// webhook worker once it and its webhook event are committed; a repeat, and
// a send the store refuses, tell no one.
func TestSendMessage(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		f := newFixture(t)
		sub := f.subscribe(t, f.apiGrant())
		m, existed, err := f.w.SendMessage(t.Context(), f.message("hello", "c1"))
		if err != nil || existed {
			t.Fatalf("send: existed %v, %v", existed, err)
		}
		wantEffects(t, f.obs,
			"publish message: 1 messages, read 0, 1 deliveries, 1 webhook events, 0 revocations",
			"kick webhooks: 1 messages, read 0, 1 deliveries, 1 webhook events, 0 revocations")
		if e, ok := received(sub); !ok || e.Type != "message" || e.Message == nil || e.Message.ID != m.ID {
			t.Errorf("socket got %+v, %v; want message %d", e, ok, m.ID)
		}

		if _, existed, err := f.w.SendMessage(t.Context(), f.message("hello", "c1")); err != nil || !existed {
			t.Fatalf("repeat: existed %v, %v", existed, err)
		}
		wantEffects(t, f.obs)

		stranger := f.message("hello", "c2")
		stranger.Sender = "not-a-member"
		if _, _, err := f.w.SendMessage(t.Context(), stranger); err == nil {
			t.Fatal("a stranger's send was stored")
		}
		wantEffects(t, f.obs)
		if e, ok := received(sub); ok {
			t.Errorf("socket got %+v after a repeat and a refused send", e)
		}
	})
}

// TestMarkRead: the read mark is on the chat's sockets once committed; a
// mark the store refuses tells no one.
func TestMarkRead(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		f := newFixture(t)
		if _, _, err := f.w.SendMessage(t.Context(), f.message("hello", "")); err != nil {
			t.Fatal(err)
		}
		f.obs.take()
		sub := f.subscribe(t, f.apiGrant())
		// A bot's message, so that ana has something unread.
		if _, _, err := f.s.SendMessage(t.Context(), imbee.MessageRequest{CorporateID: f.corp.ID, ConversationID: f.sess.ConversationID,
			Sender: f.bot.IDSha, SenderIsBot: true, Text: "hi"}); err != nil {
			t.Fatal(err)
		}
		read, err := f.w.MarkRead(t.Context(), f.corp.ID, f.sess.ConversationID, f.sess.UserIDSha, 2)
		if err != nil || read != 2 {
			t.Fatalf("mark read: %d, %v", read, err)
		}
		wantEffects(t, f.obs, "publish read: 2 messages, read 2, 1 deliveries, 1 webhook events, 0 revocations")
		if e, ok := received(sub); !ok || e.Type != "read" || e.Seq != 2 || e.Member != f.sess.UserIDSha {
			t.Errorf("socket got %+v, %v; want ana's read mark 2", e, ok)
		}

		if _, err := f.w.MarkRead(t.Context(), f.corp.ID, "no-such-chat", f.sess.UserIDSha, 1); err == nil {
			t.Fatal("a read mark in no chat was stored")
		}
		wantEffects(t, f.obs)
	})
}

// TestIssueLink: the delivery worker is woken once the link's deliveries
// are committed, and not for a link the store refuses.
func TestIssueLink(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		f := newFixture(t)
		req := linkRequest(f.corp, f.bot)
		req.UniqueID = "bea"
		if _, err := f.w.IssueLink(t.Context(), req); err != nil {
			t.Fatal(err)
		}
		wantEffects(t, f.obs, "kick deliveries: 0 messages, read 0, 2 deliveries, 0 webhook events, 0 revocations")

		req.BotIDSha = "no-such-bot"
		if _, err := f.w.IssueLink(t.Context(), req); err == nil {
			t.Fatal("a link of no bot was issued")
		}
		wantEffects(t, f.obs)
	})
}

// TestRevocations: each write that ends access closes, before it returns,
// the sockets on this server that it ends, once the revocation is
// committed; one the store refuses closes nothing.
func TestRevocations(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		const revoked = "sync: 0 messages, read 0, 1 deliveries, 0 webhook events, 1 revocations"
		for _, tc := range []struct {
			name          string
			web           bool // the socket it ends: the web chat's, or the apikey's
			write, refuse func(f *fixture) error
		}{
			{"RevokeLink", true,
				func(f *fixture) error {
					_, err := f.w.RevokeLink(context.Background(), f.corp.ID, f.link.Token)
					return err
				},
				func(f *fixture) error {
					_, err := f.w.RevokeLink(context.Background(), f.corp.ID, "imbl_nope")
					return err
				}},
			{"RevokeUserLinks", true,
				func(f *fixture) error {
					_, err := f.w.RevokeUserLinks(context.Background(), f.corp.ID, "ana")
					return err
				},
				func(f *fixture) error {
					_, err := f.w.RevokeUserLinks(context.Background(), f.corp.ID, "nobody")
					return err
				}},
			{"RevokeBot", true,
				func(f *fixture) error {
					_, err := f.w.RevokeBot(context.Background(), f.corp.ID, f.bot.IDSha)
					return err
				},
				func(f *fixture) error {
					_, err := f.w.RevokeBot(context.Background(), f.corp.ID, "no-such-bot")
					return err
				}},
			{"RotateUser", false,
				func(f *fixture) error { _, err := f.w.RotateUser(context.Background(), f.corp.ID, "ana"); return err },
				func(f *fixture) error {
					_, err := f.w.RotateUser(context.Background(), f.corp.ID, "nobody")
					return err
				}},
			{"RotateCorporate", false,
				func(f *fixture) error { _, err := f.w.RotateCorporate(context.Background(), f.corp.ID); return err },
				func(f *fixture) error { _, err := f.w.RotateCorporate(context.Background(), f.corp.ID+1); return err }},
			{"SetCorporateDisabled", true,
				func(f *fixture) error {
					_, err := f.w.SetCorporateDisabled(context.Background(), f.corp.ID, true)
					return err
				},
				func(f *fixture) error {
					_, err := f.w.SetCorporateDisabled(context.Background(), f.corp.ID+1, true)
					return err
				}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newFixture(t)
				g := f.apiGrant()
				if tc.web {
					g = f.webGrant()
				}
				sub := f.subscribe(t, g)
				if err := tc.refuse(f); err == nil {
					t.Fatal("the store took a revocation of nothing")
				}
				wantEffects(t, f.obs)
				if ended(sub) {
					t.Fatal("a refused revocation ended the socket")
				}
				if err := tc.write(f); err != nil {
					t.Fatal(err)
				}
				wantEffects(t, f.obs, revoked)
				if !ended(sub) {
					t.Error("the socket is open after the revocation returned")
				}
			})
		}
	})
}

// TestRetries: queuing dead rows again wakes their worker once committed.
func TestRetries(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.w.RetryDeliveries(t.Context(), []int64{1}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.w.RetryWebhookEvents(t.Context(), []int64{1}); err != nil {
			t.Fatal(err)
		}
		wantEffects(t, f.obs,
			"kick deliveries: 0 messages, read 0, 1 deliveries, 0 webhook events, 0 revocations",
			"kick webhooks: 0 messages, read 0, 1 deliveries, 0 webhook events, 0 revocations")
	})
}

// TestFailedWrites: a write that fails (here: the store is closed) runs
// none of its effects.
func TestFailedWrites(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		f := newFixture(t)
		sub := f.subscribe(t, f.webGrant())
		ctx := t.Context()
		f.s.Close()
		for name, write := range map[string]func() error{
			"SendMessage": func() error { _, _, err := f.w.SendMessage(ctx, f.message("hello", "")); return err },
			"MarkRead": func() error {
				_, err := f.w.MarkRead(ctx, f.corp.ID, f.sess.ConversationID, f.sess.UserIDSha, 0)
				return err
			},
			"IssueLink":            func() error { _, err := f.w.IssueLink(ctx, linkRequest(f.corp, f.bot)); return err },
			"RevokeLink":           func() error { _, err := f.w.RevokeLink(ctx, f.corp.ID, f.link.Token); return err },
			"RevokeUserLinks":      func() error { _, err := f.w.RevokeUserLinks(ctx, f.corp.ID, "ana"); return err },
			"RevokeBot":            func() error { _, err := f.w.RevokeBot(ctx, f.corp.ID, f.bot.IDSha); return err },
			"RotateUser":           func() error { _, err := f.w.RotateUser(ctx, f.corp.ID, "ana"); return err },
			"RotateCorporate":      func() error { _, err := f.w.RotateCorporate(ctx, f.corp.ID); return err },
			"SetCorporateDisabled": func() error { _, err := f.w.SetCorporateDisabled(ctx, f.corp.ID, true); return err },
			"RetryDeliveries":      func() error { _, err := f.w.RetryDeliveries(ctx, []int64{1}); return err },
			"RetryWebhookEvents":   func() error { _, err := f.w.RetryWebhookEvents(ctx, []int64{1}); return err },
		} {
			if err := write(); err == nil {
				t.Errorf("%s on a closed store: no error", name)
			}
			if got := f.obs.take(); len(got) > 0 {
				t.Errorf("%s failed, yet ran %q", name, got)
			}
		}
		if e, ok := received(sub); ok || ended(sub) {
			t.Errorf("socket got %+v (ended: %v) from failed writes", e, ended(sub))
		}
	})
}

// counter records what the queues count.
type counter struct {
	mu       sync.Mutex
	counted  []string
	recorded func() string // the state when a count is made
}

func (c *counter) DeliverySent(ch imbee.Channel) { c.add("delivery " + string(ch)) }
func (c *counter) WebhookSent()                  { c.add("webhook") }

func (c *counter) add(what string) {
	st := c.recorded()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counted = append(c.counted, what+": "+st)
}

// TestQueuesCountSent: a send is counted once its record is committed, by
// channel; a record that fails counts nothing.
func TestQueuesCountSent(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		f := newFixture(t)
		ctx := t.Context()
		if _, _, err := f.w.SendMessage(ctx, f.message("hello", "")); err != nil {
			t.Fatal(err)
		}
		sentRows := func() string {
			ds, err := f.s.Deliveries(context.Background(), imbee.DeliverySent, 10)
			if err != nil {
				return err.Error()
			}
			es, err := f.s.WebhookEvents(context.Background(), imbee.DeliverySent, 10)
			if err != nil {
				return err.Error()
			}
			return fmt.Sprintf("%d deliveries and %d webhook events sent", len(ds), len(es))
		}
		c := &counter{recorded: sentRows}
		q := writes.NewQueues(f.s, c)
		ds, err := q.ClaimDeliveries(ctx, 10, 10, time.Minute)
		if err != nil || len(ds) != 1 {
			t.Fatalf("claimed %d deliveries, %v", len(ds), err)
		}
		if err := q.MarkSent(ctx, ds[0], "prov-1"); err != nil {
			t.Fatal(err)
		}
		es, err := q.ClaimWebhookEvents(ctx, 10, 10, time.Minute)
		if err != nil || len(es) != 1 {
			t.Fatalf("claimed %d webhook events, %v", len(es), err)
		}
		if err := q.MarkWebhookSent(ctx, es[0].CorporateID, es[0].ID); err != nil {
			t.Fatal(err)
		}
		f.s.Close()
		if q.MarkSent(ctx, ds[0], "prov-2") == nil || q.MarkWebhookSent(ctx, es[0].CorporateID, es[0].ID) == nil {
			t.Fatal("a record on a closed store did not fail")
		}
		want := []string{"delivery mail: 1 deliveries and 0 webhook events sent", "webhook: 1 deliveries and 1 webhook events sent"}
		if !slices.Equal(c.counted, want) {
			t.Errorf("counted:\n got %q\nwant %q", c.counted, want)
		}
	})
}

// Package writes runs imbee's write use cases: every change the API, the
// link pages and the admin commands make goes through one function here,
// which commits it through the store and then runs what must follow the
// commit (tell the conversation's sockets, close the sockets a revocation
// ends, wake the worker that sends what was queued). Reads do not come
// here: they have nothing to follow them.
//
// Effects run only after the store has committed, and not at all when it
// refused or failed: a socket never sees a message that is not stored, and
// a worker is never woken for a row that does not exist.
package writes

import (
	"context"
	"log/slog"
	"time"

	"github.com/imbee/imbee"
)

// Store is the storage of the writes: each method is one transaction.
type Store interface {
	RegisterUser(ctx context.Context, corporateID int64, uniqueID string, dev *imbee.Device) (imbee.User, bool, error)
	RegisterUsers(ctx context.Context, corporateID int64, specs []imbee.UserSpec) ([]imbee.Registration, error)
	RotateUser(ctx context.Context, corporateID int64, uniqueID string) (imbee.User, error)
	SignIn(ctx context.Context, virtualUser, pass string, life time.Duration) (imbee.AppSession, error)
	SignOut(ctx context.Context, token string) error
	SavePushSubscription(ctx context.Context, sub imbee.PushSubscription) error
	DeletePushSubscription(ctx context.Context, corporateID, userID int64, endpoint string) error
	IssueLink(ctx context.Context, req imbee.LinkRequest) (imbee.Link, error)
	SpendLink(ctx context.Context, token string, a imbee.LinkAttempt) (imbee.Session, imbee.LinkState, error)
	RecordLinkAttempts(ctx context.Context, as []imbee.LinkAttempt) error
	RevokeLink(ctx context.Context, corporateID int64, token string) (imbee.Link, error)
	RevokeUserLinks(ctx context.Context, corporateID int64, uniqueID string) (int64, error)
	RetryDeliveries(ctx context.Context, ids []int64) (int64, error)
	CreateConversation(ctx context.Context, req imbee.ChatRequest) (imbee.Conversation, error)
	SendMessage(ctx context.Context, req imbee.MessageRequest) (imbee.Message, bool, error)
	MarkRead(ctx context.Context, corporateID int64, conversationID, member string, seq int64) (int64, error)
	CreateCorporate(ctx context.Context, name, timezone string) (imbee.Corporate, imbee.CorporateCredentials, error)
	UpdateCorporate(ctx context.Context, id int64, set imbee.CorporateSettings) (imbee.Corporate, error)
	SetCorporateDisabled(ctx context.Context, id int64, disabled bool) (imbee.Corporate, error)
	RotateCorporate(ctx context.Context, id int64) (imbee.CorporateCredentials, error)
	CreateBot(ctx context.Context, corporateID int64, name string) (imbee.Bot, error)
	RevokeBot(ctx context.Context, corporateID int64, idsha string) (int64, error)
	SetBotWebhook(ctx context.Context, corporateID int64, botIDSha, url string) (string, error)
	RetryWebhookEvents(ctx context.Context, ids []int64) (int64, error)
}

// Events are this server's sockets (realtime.Hub).
type Events interface {
	// Publish tells a conversation's sockets of a committed event.
	Publish(e imbee.Event)
	// Sync applies the revocations committed so far: the sockets they end
	// close before the revoking call answers.
	Sync(ctx context.Context) error
}

// Waker is a queue's worker (delivery.Worker, delivery.WebhookWorker):
// woken when rows are committed for it, it sends them at once instead of
// at its next poll.
type Waker interface{ Kick() }

// Effects are what the writes tell after they commit. A nil field is
// nothing to tell in this process: an admin command has no sockets and no
// workers, and the servers learn of its writes from the database (the
// revocations log, the queues' poll).
type Effects struct {
	Events     Events
	Deliveries Waker // the worker that sends links by mail and SMS
	Webhooks   Waker // the worker that posts messages to bots' webhooks
	Push       Notifier
}

// Notifier tells people who are not looking of a committed message
// (push.Pusher). It must not block.
type Notifier interface{ Notify(m imbee.Message) }

// Runner runs the writes.
type Runner struct {
	store Store
	fx    Effects
	log   *slog.Logger
}

// New returns the writes over s, with the effects fx; log (nil: none)
// records an effect that failed after its commit.
func New(s Store, fx Effects, log *slog.Logger) *Runner {
	if fx.Events == nil {
		fx.Events = noEvents{}
	}
	if fx.Deliveries == nil {
		fx.Deliveries = noWorker{}
	}
	if fx.Webhooks == nil {
		fx.Webhooks = noWorker{}
	}
	if fx.Push == nil {
		fx.Push = noPush{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runner{store: s, fx: fx, log: log}
}

type noEvents struct{}

func (noEvents) Publish(imbee.Event)        {}
func (noEvents) Sync(context.Context) error { return nil }

type noPush struct{}

func (noPush) Notify(imbee.Message) {}

type noWorker struct{}

func (noWorker) Kick() {}

// endingAccess runs write, which may end access (a revocation, a
// rotation), and once it has committed closes this server's sockets that
// it ends, before the answer goes out. Other servers close theirs when
// they read the revocations log: at once on PostgreSQL's NOTIFY, or at
// their next poll.
func endingAccess[T any](ctx context.Context, r *Runner, write func() (T, error)) (T, error) {
	v, err := write()
	if err != nil {
		return v, err
	}
	if err := r.fx.Events.Sync(ctx); err != nil {
		// The hub's poll applies it within a fraction of a second.
		r.log.Warn("apply revocations", "err", err)
	}
	return v, nil
}

// waking runs write, which queues rows for worker, and once it has
// committed wakes worker to send them.
func waking[T any](worker Waker, write func() (T, error)) (T, error) {
	v, err := write()
	if err == nil {
		worker.Kick()
	}
	return v, err
}

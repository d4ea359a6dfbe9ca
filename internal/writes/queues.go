package writes

import (
	"context"
	"time"

	"github.com/imbee/imbee"
)

// QueueStore is the storage of the delivery and webhook workers: their
// claims and the outcomes of their sends.
type QueueStore interface {
	ClaimDeliveries(ctx context.Context, limit, pool int, lease time.Duration) ([]imbee.Delivery, error)
	MarkSent(ctx context.Context, sent []imbee.SentJob) error
	MarkFailed(ctx context.Context, corporateID, id int64, cause, reason string, retryAt time.Time, dead bool) error
	ClaimWebhookEvents(ctx context.Context, limit, pool int, lease time.Duration) ([]imbee.WebhookEvent, error)
	MarkWebhooksSent(ctx context.Context, sent []imbee.SentJob) error
	MarkWebhookFailed(ctx context.Context, corporateID, id int64, cause string, retryAt time.Time, dead bool) error
}

// Counter counts what was sent (metrics.Metrics).
type Counter interface {
	DeliverySent(ch imbee.Channel)
	WebhookSent()
}

// Queues are the workers' writes (delivery.Queue and
// delivery.WebhookQueue): webhook events delivered at the same time are
// recorded in one write, and each send is counted once its record is
// committed. The claims, failures and link deliveries go to the store as
// they are: batching the deliveries' records measured no faster
// (docs/performance.md).
type Queues struct {
	QueueStore
	counts       Counter
	webhooksSent batcher[imbee.SentJob]
}

// NewQueues returns the workers' writes over s, counted by counts.
func NewQueues(s QueueStore, counts Counter) *Queues {
	q := &Queues{QueueStore: s, counts: counts}
	q.webhooksSent.write = s.MarkWebhooksSent
	return q
}

// MarkSent records a link's delivery d sent, and counts it by channel.
func (q *Queues) MarkSent(ctx context.Context, d imbee.Delivery, providerID string) error {
	if err := q.QueueStore.MarkSent(ctx, []imbee.SentJob{{CorporateID: d.CorporateID, ID: d.ID, ProviderID: providerID}}); err != nil {
		return err
	}
	q.counts.DeliverySent(d.Recipient.Channel)
	return nil
}

// MarkWebhookSent records a webhook event delivered, and counts it.
func (q *Queues) MarkWebhookSent(ctx context.Context, corporateID, id int64) error {
	if err := q.webhooksSent.do(ctx, imbee.SentJob{CorporateID: corporateID, ID: id}); err != nil {
		return err
	}
	q.counts.WebhookSent()
	return nil
}

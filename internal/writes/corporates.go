package writes

import (
	"context"

	"github.com/imbee/imbee"
)

// CreateCorporate creates a corporate and returns its credentials.
func (r *Runner) CreateCorporate(ctx context.Context, name, timezone string) (imbee.Corporate, imbee.CorporateCredentials, error) {
	return r.store.CreateCorporate(ctx, name, timezone)
}

// UpdateCorporate changes a corporate's settings.
func (r *Runner) UpdateCorporate(ctx context.Context, id int64, set imbee.CorporateSettings) (imbee.Corporate, error) {
	return r.store.UpdateCorporate(ctx, id, set)
}

// SetCorporateDisabled disables a corporate (its sessions end, its sockets
// close) or enables it again.
func (r *Runner) SetCorporateDisabled(ctx context.Context, id int64, disabled bool) (imbee.Corporate, error) {
	return endingAccess(ctx, r, func() (imbee.Corporate, error) { return r.store.SetCorporateDisabled(ctx, id, disabled) })
}

// RotateCorporate replaces a corporate's credentials; the sockets opened
// under the old ones close.
func (r *Runner) RotateCorporate(ctx context.Context, id int64) (imbee.CorporateCredentials, error) {
	return endingAccess(ctx, r, func() (imbee.CorporateCredentials, error) { return r.store.RotateCorporate(ctx, id) })
}

// CreateBot creates a bot in a corporate.
func (r *Runner) CreateBot(ctx context.Context, corporateID int64, name string) (imbee.Bot, error) {
	return r.store.CreateBot(ctx, corporateID, name)
}

// RevokeBot retires a bot: its links end, their sessions end and their
// sockets close.
func (r *Runner) RevokeBot(ctx context.Context, corporateID int64, idsha string) (int64, error) {
	return endingAccess(ctx, r, func() (int64, error) { return r.store.RevokeBot(ctx, corporateID, idsha) })
}

// SetBotWebhook sets (url "": removes) a bot's webhook and returns its new
// signing secret.
func (r *Runner) SetBotWebhook(ctx context.Context, corporateID int64, botIDSha, url string) (string, error) {
	return r.store.SetBotWebhook(ctx, corporateID, botIDSha, url)
}

// RetryWebhookEvents queues dead webhook events again and wakes the
// webhook worker.
func (r *Runner) RetryWebhookEvents(ctx context.Context, ids []int64) (int64, error) {
	return waking(r.fx.Webhooks, func() (int64, error) { return r.store.RetryWebhookEvents(ctx, ids) })
}

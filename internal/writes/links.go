package writes

import (
	"context"

	"github.com/imbee/imbee"
)

// IssueLink stores a link with its deliveries (or finds the same link
// issued before) and wakes the delivery worker to send them.
func (r *Runner) IssueLink(ctx context.Context, req imbee.LinkRequest) (imbee.Link, error) {
	return waking(r.fx.Deliveries, func() (imbee.Link, error) { return r.store.IssueLink(ctx, req) })
}

// SpendLink spends one use of a link and opens a web session, recording
// the attempt. Nothing follows: the session's socket opens afterwards.
func (r *Runner) SpendLink(ctx context.Context, token string, a imbee.LinkAttempt) (imbee.Session, imbee.LinkState, error) {
	return r.store.SpendLink(ctx, token, a)
}

// RecordLinkAttempts adds views of links' pages to their audit trails.
func (r *Runner) RecordLinkAttempts(ctx context.Context, as []imbee.LinkAttempt) error {
	return r.store.RecordLinkAttempts(ctx, as)
}

// RevokeLink ends a link and the web sessions it opened, and closes their
// sockets on this server.
func (r *Runner) RevokeLink(ctx context.Context, corporateID int64, token string) (imbee.Link, error) {
	return endingAccess(ctx, r, func() (imbee.Link, error) { return r.store.RevokeLink(ctx, corporateID, token) })
}

// RevokeUserLinks ends every link of a user and the sessions they opened,
// and closes their sockets on this server.
func (r *Runner) RevokeUserLinks(ctx context.Context, corporateID int64, uniqueID string) (int64, error) {
	return endingAccess(ctx, r, func() (int64, error) { return r.store.RevokeUserLinks(ctx, corporateID, uniqueID) })
}

// RetryDeliveries queues dead deliveries again and wakes the delivery
// worker.
func (r *Runner) RetryDeliveries(ctx context.Context, ids []int64) (int64, error) {
	return waking(r.fx.Deliveries, func() (int64, error) { return r.store.RetryDeliveries(ctx, ids) })
}

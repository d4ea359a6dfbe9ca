package writes

import (
	"context"
	"time"

	"github.com/imbee/imbee"
)

// RegisterUser creates a user (or finds the one registered with the same
// id) and records its device.
func (r *Runner) RegisterUser(ctx context.Context, corporateID int64, uniqueID string, dev *imbee.Device) (imbee.User, bool, error) {
	return r.store.RegisterUser(ctx, corporateID, uniqueID, dev)
}

// RegisterUsers is RegisterUser for many users, in one transaction.
func (r *Runner) RegisterUsers(ctx context.Context, corporateID int64, specs []imbee.UserSpec) ([]imbee.Registration, error) {
	return r.store.RegisterUsers(ctx, corporateID, specs)
}

// RotateUser gives a user a new pass and apikey and closes, on this
// server, the sockets opened with the old apikey.
func (r *Runner) RotateUser(ctx context.Context, corporateID int64, uniqueID string) (imbee.User, error) {
	return endingAccess(ctx, r, func() (imbee.User, error) { return r.store.RotateUser(ctx, corporateID, uniqueID) })
}

// SignIn opens a web app session for the user whose virtualUser and pass
// these are.
func (r *Runner) SignIn(ctx context.Context, virtualUser, pass string, life time.Duration) (imbee.AppSession, error) {
	return r.store.SignIn(ctx, virtualUser, pass, life)
}

// SignOut ends a web app session and closes, on this server, its sockets.
func (r *Runner) SignOut(ctx context.Context, token string) error {
	_, err := endingAccess(ctx, r, func() (struct{}, error) { return struct{}{}, r.store.SignOut(ctx, token) })
	return err
}

// SavePushSubscription records a browser a signed-in person turned
// notifications on in.
func (r *Runner) SavePushSubscription(ctx context.Context, sub imbee.PushSubscription) error {
	return r.store.SavePushSubscription(ctx, sub)
}

// DeletePushSubscription forgets one.
func (r *Runner) DeletePushSubscription(ctx context.Context, corporateID, userID int64, endpoint string) error {
	return r.store.DeletePushSubscription(ctx, corporateID, userID, endpoint)
}

package writes

import (
	"context"

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

package store

import (
	"context"
	"fmt"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// MaxPushSubscriptions is how many browsers a user may get pushes in: a
// new one past it replaces the oldest.
const MaxPushSubscriptions = 10

// pushAD binds a sealed auth secret to its subscription's owner and
// endpoint: moved to another row, it does not open.
func pushAD(corporateID, userID int64, endpoint string) []byte {
	return fmt.Appendf(nil, "%d/%d/%s", corporateID, userID, endpoint)
}

// SavePushSubscription records a browser's subscription for the user (the
// same endpoint again replaces its keys) and keeps the user's newest
// MaxPushSubscriptions.
func (s *Store) SavePushSubscription(ctx context.Context, sub imbee.PushSubscription) error {
	sealed := s.keys.Seal(secret.PushAuth, sub.Auth, pushAD(sub.CorporateID, sub.UserID, sub.Endpoint))
	return s.inWrite(ctx, func(q querier) error {
		if _, err := q.ExecContext(ctx, `
			INSERT INTO push_subscriptions (corporate_id, user_id, endpoint, p256dh, auth_sealed, created_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (corporate_id, user_id, endpoint) DO UPDATE SET p256dh = excluded.p256dh, auth_sealed = excluded.auth_sealed, created_at = excluded.created_at`,
			sub.CorporateID, sub.UserID, sub.Endpoint, sub.P256dh, sealed, unix(s.now())); err != nil {
			return internal("save push subscription", err)
		}
		if _, err := q.ExecContext(ctx, `
			DELETE FROM push_subscriptions WHERE corporate_id = ? AND user_id = ? AND id NOT IN (
				SELECT id FROM push_subscriptions WHERE corporate_id = ? AND user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?)`,
			sub.CorporateID, sub.UserID, sub.CorporateID, sub.UserID, MaxPushSubscriptions); err != nil {
			return internal("trim push subscriptions", err)
		}
		return nil
	})
}

// DeletePushSubscription forgets a subscription: the browser turned
// notifications off, or its push service says it is gone.
func (s *Store) DeletePushSubscription(ctx context.Context, corporateID, userID int64, endpoint string) error {
	return s.inWrite(ctx, func(q querier) error {
		if _, err := q.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE corporate_id = ? AND user_id = ? AND endpoint = ?`,
			corporateID, userID, endpoint); err != nil {
			return internal("delete push subscription", err)
		}
		return nil
	})
}

// PushTargets are the subscriptions of the members of a conversation who
// should hear of a message from sender: its users (not its bots), sender
// excepted, who have no socket open on another server (presence; the
// caller asks its own sockets).
func (s *Store) PushTargets(ctx context.Context, corporateID int64, conversationID, sender string) ([]imbee.PushSubscription, error) {
	rows, err := s.reads.QueryContext(ctx, `
		SELECT p.id, p.user_id, p.endpoint, p.p256dh, p.auth_sealed
		FROM conversations c
		JOIN conversation_members m ON m.corporate_id = c.corporate_id AND m.conversation_id = c.id
		JOIN users u ON u.corporate_id = m.corporate_id AND u.idsha = m.idsha
		JOIN push_subscriptions p ON p.corporate_id = u.corporate_id AND p.user_id = u.id
		WHERE c.corporate_id = ? AND c.public_id = ? AND m.is_bot = 0 AND m.idsha <> ?
		AND NOT EXISTS (SELECT 1 FROM presence pr WHERE pr.corporate_id = u.corporate_id AND pr.user_id = u.id AND pr.expires_at > ?)
		ORDER BY p.id`, corporateID, conversationID, sender, unix(s.now()))
	if err != nil {
		return nil, internal("read push targets", err)
	}
	defer rows.Close()
	var out []imbee.PushSubscription
	for rows.Next() {
		sub := imbee.PushSubscription{CorporateID: corporateID}
		var sealed []byte
		if err := rows.Scan(&sub.ID, &sub.UserID, &sub.Endpoint, &sub.P256dh, &sealed); err != nil {
			return nil, internal("read push targets", err)
		}
		if sub.Auth, err = s.keys.Open(secret.PushAuth, sealed, pushAD(corporateID, sub.UserID, sub.Endpoint)); err != nil {
			continue // sealed under another key or for another row: useless
		}
		out = append(out, sub)
	}
	return out, rows.Err()
}

package store

import (
	"context"
	"time"
)

// presenceBatch bounds the users one presence statement names.
const presenceBatch = 500

// MarkPresent records that the corporate's users have a socket open on
// server until the given time (a later call renews it).
func (s *Store) MarkPresent(ctx context.Context, server string, corporateID int64, userIDs []int64, until time.Time) error {
	for lo := 0; lo < len(userIDs); lo += presenceBatch {
		hi := min(lo+presenceBatch, len(userIDs))
		args := make([]any, 0, 4*(hi-lo))
		for _, id := range userIDs[lo:hi] {
			args = append(args, corporateID, id, server, unix(until))
		}
		if err := s.inWrite(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, `
				INSERT INTO presence (corporate_id, user_id, server, expires_at) VALUES `+placeholders(hi-lo, 4)+`
				ON CONFLICT (corporate_id, user_id, server) DO UPDATE SET expires_at = excluded.expires_at`, args...)
			return err
		}); err != nil {
			return internal("mark users present", err)
		}
	}
	return nil
}

// MarkAbsent forgets that the corporate's users have a socket open on
// server: their last one there closed.
func (s *Store) MarkAbsent(ctx context.Context, server string, corporateID int64, userIDs []int64) error {
	for lo := 0; lo < len(userIDs); lo += presenceBatch {
		hi := min(lo+presenceBatch, len(userIDs))
		args := []any{corporateID, server}
		for _, id := range userIDs[lo:hi] {
			args = append(args, id)
		}
		if err := s.inWrite(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, `DELETE FROM presence WHERE corporate_id = ? AND server = ? AND user_id IN `+placeholders(1, hi-lo), args...)
			return err
		}); err != nil {
			return internal("mark users absent", err)
		}
	}
	return nil
}

// PurgePresence deletes the rows of servers that stopped renewing them.
func (s *Store) PurgePresence(ctx context.Context) (int64, error) {
	return s.deleteInBatches(ctx, "purge presence", `
		DELETE FROM presence WHERE (corporate_id, user_id, server) IN (
			SELECT corporate_id, user_id, server FROM presence WHERE expires_at <= ? LIMIT ?)`, unix(s.now()))
}

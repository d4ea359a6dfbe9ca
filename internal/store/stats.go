package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/imbee/imbee"
)

// The backlog's statements: by status, never reading the sent rows (the
// history), so a scrape costs the same at any history size.
const (
	queueDeliveries = `
		SELECT channel, status, COUNT(*), MIN(created_at) FROM deliveries
		WHERE status IN ('queued', 'sending', 'failed', 'dead') GROUP BY channel, status`
	queueWebhooks = `
		SELECT status, COUNT(*), MIN(created_at) FROM webhook_events
		WHERE status IN ('queued', 'sending', 'failed', 'dead') GROUP BY status`
)

// Queues reads the queues' unsent rows, through the (status,
// next_attempt_at) indexes: its cost follows the backlog, not the history.
// It reads through the pool directly rather than the statement
// cache, so that ctx's deadline interrupts a slow statement.
func (s *Store) Queues(ctx context.Context) (imbee.QueueStats, error) {
	st := imbee.QueueStats{Deliveries: map[imbee.QueueKey]int64{}, Webhooks: map[imbee.DeliveryStatus]int64{}}
	now := unix(s.now())
	// age raises *oldest to the age of a row created at created if it waits.
	age := func(status imbee.DeliveryStatus, created int64, oldest *int64) {
		if status != imbee.DeliveryDead && now-created > *oldest {
			*oldest = now - created
		}
	}
	err := s.scan(ctx, queueDeliveries,
		func(rows *sql.Rows) error {
			var k imbee.QueueKey
			var n, created int64
			if err := rows.Scan(&k.Channel, &k.Status, &n, &created); err != nil {
				return err
			}
			st.Deliveries[k] = n
			age(k.Status, created, &st.OldestDelivery)
			return nil
		})
	if err != nil {
		return st, fmt.Errorf("delivery queue: %w", err)
	}
	err = s.scan(ctx, queueWebhooks,
		func(rows *sql.Rows) error {
			var status imbee.DeliveryStatus
			var n, created int64
			if err := rows.Scan(&status, &n, &created); err != nil {
				return err
			}
			st.Webhooks[status] = n
			age(status, created, &st.OldestWebhook)
			return nil
		})
	if err != nil {
		return st, fmt.Errorf("webhook queue: %w", err)
	}
	return st, nil
}

// scan runs query (without arguments) on the pool and calls row for each
// row.
func (s *Store) scan(ctx context.Context, query string, row func(*sql.Rows) error) error {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Pools returns the store's connection pools by name, for their metrics:
// SQLite's writer ("write") and readers ("read"), or PostgreSQL's pool
// ("postgres").
func (s *Store) Pools() map[string]*sql.DB {
	if s.sqlite != nil {
		return map[string]*sql.DB{"write": s.sqlite.write, "read": s.sqlite.read}
	}
	return map[string]*sql.DB{"postgres": s.db}
}

// Ready says whether the store can serve: the database answers, and its
// schema is at the newest migration this binary embeds (not behind, as
// after restoring an old backup; not ahead, as after a newer imbee
// migrated it). Its error is an *imbee.Error whose message is safe to
// show and says what to do.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return &imbee.Error{Code: imbee.CodeGeneric, Message: "database unreachable", Err: err}
	}
	var current sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MAX(version_id) FROM goose_db_version`).Scan(&current); err != nil {
		return &imbee.Error{Code: imbee.CodeGeneric, Message: "database schema version unreadable", Err: err}
	}
	target, err := s.dialect.latestMigration()
	if err != nil {
		return imbee.Internal("embedded migrations", err)
	}
	switch {
	case current.Int64 < target:
		return imbee.Errorf(imbee.CodeGeneric, "database schema at version %d, this server needs %d: run imbee migrate", current.Int64, target)
	case current.Int64 > target:
		return imbee.Errorf(imbee.CodeGeneric, "database schema at version %d, newer than this server knows (%d): upgrade imbee", current.Int64, target)
	}
	return nil
}

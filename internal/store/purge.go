package store

import (
	"context"
	"database/sql/driver"
)

// purgeBatch bounds the rows one purge statement deletes. Each batch is
// its own short transaction: a purge of a million rows holds no long
// transaction, writes no huge WAL record, and on SQLite lets requests
// through the one writer between its batches.
var purgeBatch = 1000

// Advisory locks of imbee's own, each a pair (class, key) of PostgreSQL's
// two-int form: a space apart from goose's migration lock, which is one
// bigint.
const (
	lockPurge     int32 = 0x696d6201 // with key 0: the purge, one server at a time
	lockRecipient int32 = 0x696d6202 // with a hash of (corporate, recipient key): its send limit, one count at a time
)

// deleteInBatches runs del, a DELETE of at most purgeBatch rows (bound to
// its last ?, after args), until a batch deletes fewer; it returns how
// many rows it deleted in all.
func (s *Store) deleteInBatches(ctx context.Context, op, del string, args ...any) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.inWrite(ctx, func(q querier) error {
			res, err := q.ExecContext(ctx, del, append(args[:len(args):len(args)], purgeBatch)...)
			if err != nil {
				return internal(op, err)
			}
			n, err = res.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < int64(purgeBatch) {
			return total, err
		}
	}
}

// purgeSessions deletes the rows of a sessions table (link or app) past
// their expires_at, the routes of older ones first, a batch at a time.
func (s *Store) purgeSessions(ctx context.Context, table, routes string) (int64, error) {
	now := unix(s.now())
	if _, err := s.deleteInBatches(ctx, "purge "+routes, `
		DELETE FROM `+routes+` WHERE token_hash IN (
			SELECT r.token_hash FROM `+routes+` r
			JOIN `+table+` x ON x.corporate_id = r.corporate_id AND x.id = r.session_id
			WHERE x.expires_at <= ? LIMIT ?)`, now); err != nil {
		return 0, err
	}
	return s.deleteInBatches(ctx, "purge "+table, `
		DELETE FROM `+table+` WHERE (corporate_id, id) IN (
			SELECT x.corporate_id, x.id FROM `+table+` x WHERE x.expires_at <= ? AND NOT EXISTS (
				SELECT 1 FROM `+routes+` r WHERE r.corporate_id = x.corporate_id AND r.session_id = x.id)
			LIMIT ?)`, now)
}

// PurgeOnce runs purge unless another server on the database is running
// it: on PostgreSQL it holds a session advisory lock meanwhile (which
// PostgreSQL releases if this server dies); a SQLite database has one
// server, which always runs it. ran says whether purge ran.
func (s *Store) PurgeOnce(ctx context.Context, purge func(ctx context.Context) error) (ran bool, err error) {
	if !s.dialect.concurrentWriters {
		return true, purge(ctx)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return false, internal("purge lock", err)
	}
	defer conn.Close()
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock($1, 0)`, lockPurge).Scan(&ran); err != nil {
		return false, internal("purge lock", err)
	}
	if !ran {
		return false, nil
	}
	defer func() {
		// The lock is the session's: a connection that may still hold it
		// must not go back to the pool.
		var unlocked bool
		if err := conn.QueryRowContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1, 0)`, lockPurge).Scan(&unlocked); err != nil || !unlocked {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return true, purge(ctx)
}

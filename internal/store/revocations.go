package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/imbee/imbee"
)

// horizonSQL is an expression that reads how much of the revocations log
// a statement sees (see imbee.Horizon): the last id, one seek to the end
// of the primary key on both backends (PostgreSQL: an index-only scan
// backward, about 15 µs of a send's statement; SQLite: the last rowid).
const horizonSQL = `coalesce((SELECT id FROM revocations ORDER BY id DESC LIMIT 1), 0) + 1`

// revocationsLock is the PostgreSQL advisory lock key that orders revoking
// transactions ("imbeerev" in ASCII).
const revocationsLock int64 = 0x696d626565726576

// revoke logs an ending of access inside the transaction that ends it, so
// that the log holds it if and only if it happened; on PostgreSQL its event
// also tells the other servers once it commits (see notify), rather than
// at their next read of the log.
func (s *Store) revoke(ctx context.Context, q querier, corporateID int64, kind imbee.RevocationKind, subject int64) error {
	if s.dialect.concurrentWriters {
		// One revoking transaction at a time, to its commit: ids are then
		// committed in their order, so a reader that sees an id has seen
		// every smaller one, and a horizon skips none. (SQLite has one
		// writer anyway.) Revocations are rare; nothing else takes it.
		if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, revocationsLock); err != nil {
			return internal("lock revocations", err)
		}
	}
	if _, err := q.ExecContext(ctx, `INSERT INTO revocations (corporate_id, kind, subject, created_at) VALUES (?, ?, ?, ?)`,
		corporateID, string(kind), subject, unix(s.now())); err != nil {
		return internal("log revocation", err)
	}
	if err := s.notify(ctx, q, imbee.Event{Type: "revoked", CorporateID: corporateID}); err != nil {
		return internal("notify", err)
	}
	return nil
}

// Revocations returns up to limit revocations after the horizon h (those
// with an id of at least h), oldest first, and the horizon they reach.
func (s *Store) Revocations(ctx context.Context, h imbee.Horizon, limit int) ([]imbee.Revocation, imbee.Horizon, error) {
	rows, err := s.reads.QueryContext(ctx, `SELECT id, corporate_id, kind, subject FROM revocations WHERE id >= ? ORDER BY id LIMIT ?`, int64(h), limit)
	if err != nil {
		return nil, h, internal("read revocations", err)
	}
	defer rows.Close()
	var out []imbee.Revocation
	for rows.Next() {
		var r imbee.Revocation
		var kind string
		if err := rows.Scan(&r.ID, &r.CorporateID, &kind, &r.Subject); err != nil {
			return nil, h, internal("read revocations", err)
		}
		r.Kind = imbee.RevocationKind(kind)
		out = append(out, r)
		h = imbee.Horizon(r.ID + 1)
	}
	if err := rows.Err(); err != nil {
		return nil, h, internal("read revocations", err)
	}
	return out, h, nil
}

// RevocationsHorizon is the horizon of the revocations log now: a server
// starting follows the log from there (its sockets are all opened later).
func (s *Store) RevocationsHorizon(ctx context.Context) (imbee.Horizon, error) {
	var h int64
	if err := s.reads.QueryRowContext(ctx, `SELECT `+horizonSQL).Scan(&h); err != nil {
		return 0, internal("read revocations", err)
	}
	return imbee.Horizon(h), nil
}

// PurgeRevocations deletes revocations logged before t, in batches: every
// server has long read them. It says how many it deleted.
func (s *Store) PurgeRevocations(ctx context.Context, t time.Time) (int64, error) {
	return s.deleteInBatches(ctx, "purge revocations", purgeRevocations, unix(t))
}

const purgeRevocations = `
	DELETE FROM revocations WHERE (corporate_id, id) IN (
		SELECT corporate_id, id FROM revocations WHERE created_at < ? LIMIT ?)`

// SetCorporateDisabled disables a corporate (its credentials answer
// CodeAuth, its links' pages say they were withdrawn, its web sessions end
// and its sockets close, on every server) or enables it again. It returns
// the corporate as it is then, and CodeNotFound for an unknown id.
func (s *Store) SetCorporateDisabled(ctx context.Context, id int64, disabled bool) (imbee.Corporate, error) {
	var c imbee.Corporate
	err := s.inWrite(ctx, func(q querier) error {
		var r corporateRow
		var err error
		if disabled {
			err = q.QueryRowContext(ctx, `UPDATE corporates SET disabled_at = coalesce(disabled_at, ?) WHERE id = ? RETURNING `+corporateColumns,
				unix(s.now()), id).Scan(r.dest()...)
		} else {
			err = q.QueryRowContext(ctx, `UPDATE corporates SET disabled_at = NULL WHERE id = ? RETURNING `+corporateColumns,
				id).Scan(r.dest()...)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return imbee.Errorf(imbee.CodeNotFound, "no corporate with id %d", id)
		}
		if err != nil {
			return internal("disable corporate", err)
		}
		c = r.corporate()
		if disabled {
			// Logged again when it was disabled already: harmless, and a
			// socket that slipped through somehow is closed now.
			return s.revoke(ctx, q, id, imbee.RevokedCorporate, 0)
		}
		return nil
	})
	return c, err
}

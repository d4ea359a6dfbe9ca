package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// abandonedAfter is how long a claimed key may wait for its response before
// another request may take it over: longer than any request may run (the
// server's write timeout), so only a crashed request's claim is taken.
const abandonedAfter = 2 * time.Minute

// ClaimIdempotencyKey claims k for a request about to run. It returns the
// stored response when k already answered the same request (a replay), nil
// when the caller now holds the claim and must call CompleteIdempotencyKey or
// ReleaseIdempotencyKey, or CodeIdempotencyMismatch / CodeIdempotencyInProgress.
// A key lives ttl from its first use.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, k imbee.IdempotencyKey, ttl time.Duration) ([]byte, error) {
	// Replays and conflicts are answered from a read; only a first use writes.
	if resp, found, err := s.idempotencyState(ctx, s.reads, k); found || err != nil {
		return resp, err
	}
	var resp []byte
	err := s.inWrite(ctx, func(q querier) error {
		now := s.now()
		resp = nil
		// An expired key is new again; an abandoned claim is taken over.
		if _, err := q.ExecContext(ctx, `
			DELETE FROM idempotency_keys
			WHERE corporate_id = ? AND principal = ? AND key_hash = ?
			  AND (expires_at <= ? OR (response IS NULL AND created_at <= ?))`,
			k.CorporateID, k.Principal, k.KeyHash, unix(now), unix(now.Add(-abandonedAfter))); err != nil {
			return internal("expire idempotency key", err)
		}
		res, err := q.ExecContext(ctx, `
			INSERT INTO idempotency_keys (corporate_id, principal, key_hash, request_hash, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT DO NOTHING`,
			k.CorporateID, k.Principal, k.KeyHash, k.RequestHash, unix(now), unix(now.Add(ttl)))
		if err != nil {
			return internal("claim idempotency key", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		// Another request claimed it between our read and this write.
		var found bool
		resp, found, err = s.idempotencyState(ctx, q, k)
		if err == nil && !found { // cannot be: the DELETE above freed such rows
			err = internal("claim idempotency key", errors.New("conflicting key row is free"))
		}
		return err
	})
	return resp, err
}

// idempotencyState reads k's row: found is false when the key is unused,
// expired or abandoned (free to claim).
func (s *Store) idempotencyState(ctx context.Context, q querier, k imbee.IdempotencyKey) (resp []byte, found bool, err error) {
	var reqHash, sealed []byte
	var created, expires int64
	err = q.QueryRowContext(ctx, `
		SELECT request_hash, response, created_at, expires_at FROM idempotency_keys
		WHERE corporate_id = ? AND principal = ? AND key_hash = ?`,
		k.CorporateID, k.Principal, k.KeyHash).Scan(&reqHash, &sealed, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, internal("read idempotency key", err)
	}
	now := s.now()
	switch {
	case expires <= unix(now):
		return nil, false, nil
	case !bytes.Equal(reqHash, k.RequestHash):
		return nil, true, imbee.Errorf(imbee.CodeIdempotencyMismatch,
			"this Idempotency-Key was already used for a different request: use a new key for a new request")
	case sealed != nil:
		resp, err := s.keys.Open(secret.StoredResponse, sealed, sealBinding(k))
		if err != nil {
			return nil, true, internal("open stored response", err)
		}
		return resp, true, nil
	case created <= unix(now.Add(-abandonedAfter)):
		return nil, false, nil
	}
	return nil, true, &imbee.Error{Code: imbee.CodeIdempotencyInProgress, RetryAfter: time.Second,
		Message: "a request with this Idempotency-Key is still being processed: retry after Retry-After"}
}

// CompleteIdempotencyKey stores the response of the request that holds k's
// claim, sealed: it holds credentials and link URLs.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, k imbee.IdempotencyKey, response []byte) error {
	sealed := s.keys.Seal(secret.StoredResponse, response, sealBinding(k))
	return s.inWrite(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `
			UPDATE idempotency_keys SET response = ?
			WHERE corporate_id = ? AND principal = ? AND key_hash = ? AND request_hash = ? AND response IS NULL`,
			sealed, k.CorporateID, k.Principal, k.KeyHash, k.RequestHash)
		if err != nil {
			return internal("store idempotent response", err)
		}
		return nil
	})
}

// ReleaseIdempotencyKey frees k after its request failed: nothing is kept
// for a request that changed nothing, so the key can be used again.
func (s *Store) ReleaseIdempotencyKey(ctx context.Context, k imbee.IdempotencyKey) error {
	return s.inWrite(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `
			DELETE FROM idempotency_keys
			WHERE corporate_id = ? AND principal = ? AND key_hash = ? AND request_hash = ? AND response IS NULL`,
			k.CorporateID, k.Principal, k.KeyHash, k.RequestHash)
		if err != nil {
			return internal("release idempotency key", err)
		}
		return nil
	})
}

// PurgeIdempotencyKeys deletes expired keys, in batches, and returns how
// many.
func (s *Store) PurgeIdempotencyKeys(ctx context.Context) (int64, error) {
	return s.deleteInBatches(ctx, "purge idempotency keys", purgeIdempotencyKeys, unix(s.now()))
}

const purgeIdempotencyKeys = `
	DELETE FROM idempotency_keys WHERE (corporate_id, principal, key_hash) IN (
		SELECT corporate_id, principal, key_hash FROM idempotency_keys WHERE expires_at <= ? LIMIT ?)`

// sealBinding ties a sealed response to its key and request: a response
// copied into another row does not open.
func sealBinding(k imbee.IdempotencyKey) []byte {
	return append(append([]byte(nil), k.KeyHash...), k.RequestHash...)
}

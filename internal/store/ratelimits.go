package store

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"
)

// SharesRateLimits says whether servers may share this database
// (PostgreSQL), so that the rate limits must be kept in it for all of
// them (Lend) rather than in each server's memory (SQLite: one server).
func (s *Store) SharesRateLimits() bool { return s.dialect.concurrentWriters }

// maxRateInterval bounds the time between two requests of a rate, so that
// the nanosecond arithmetic cannot overflow: a rate below one request in
// 11 days counts as that.
const maxRateInterval = 1e15

// Lend takes up to n requests from a rate limit's bucket kept in the
// database, shared by every server on it: a corporate's (userID 0) or one
// user's share of it. The bucket holds burst requests and gets perSecond
// back a second; a changed rate or burst starts again with a full bucket of
// the new size. It returns how many it took (0: refused, and wait is how
// long until one would be), and what the bucket holds after, in requests (a
// fraction when refused). PostgreSQL only (SharesRateLimits).
//
// The row holds GCRA's theoretical arrival time (tat): when the next
// request would be due at the sustained rate. Taking m requests moves tat
// m intervals on from now at the earliest, and is allowed while that
// leaves it at most burst intervals ahead of now. That is one conditional
// upsert, committed on its own, so concurrent servers take from the bucket
// one at a time and the row is held only for the statement.
func (s *Store) Lend(ctx context.Context, corporateID, userID int64, perSecond float64, burst, n int) (taken int, wait time.Duration, remaining float64, err error) {
	interval := int64(min(max(1e9/perSecond, 1), maxRateInterval))
	burst = max(burst, 1)
	tolerance := int64(burst) * interval
	now := s.now().UnixNano()
	var tat int64
	err = s.reads.QueryRowContext(ctx, takeRate, corporateID, userID, now, interval, perSecond, burst, tolerance, max(n, 1)).Scan(&tat, &taken)
	if errors.Is(err, sql.ErrNoRows) {
		// Refused by a row that another server inserted after this
		// statement's snapshot: its state is one interval on.
		return 0, time.Duration(interval), 0, nil
	}
	if err != nil {
		return 0, 0, 0, internal("take rate", err)
	}
	ahead := tat - now
	remaining = float64(burst) - float64(ahead)/float64(interval)
	if taken == 0 {
		wait = time.Duration(ahead + interval - tolerance)
	}
	return taken, wait, remaining, nil
}

// GiveBack returns a request that Lend took from the bucket of
// (corporateID, userID) with this rate and burst: for a limit on failures,
// which takes a try before the attempt and gives it back when the attempt
// succeeds. A bucket since refilled, or filled at another rate, is left
// as it is. PostgreSQL only (SharesRateLimits).
func (s *Store) GiveBack(ctx context.Context, corporateID, userID int64, perSecond float64, burst int) error {
	interval := int64(min(max(1e9/perSecond, 1), maxRateInterval))
	_, err := s.reads.ExecContext(ctx, `
		UPDATE rate_buckets SET tat = tat - $5::bigint
		WHERE corporate_id = $1 AND user_id = $2 AND per_second = $3 AND burst = $4 AND tat > $6::bigint`,
		corporateID, userID, perSecond, max(burst, 1), interval, s.now().UnixNano())
	if err != nil {
		return internal("give back rate", err)
	}
	return nil
}

// takeRate's arguments: $1 corporate, $2 user, $3 now and $4 the interval
// in nanoseconds, $5 the rate and $6 the burst the row was filled at, $7
// the tolerance (burst intervals), $8 the most to take. It takes what is
// there up to $8; the upsert returns the row only when it takes some,
// otherwise the row as it is says when the next may come.
const takeRate = `
	WITH took AS (
		INSERT INTO rate_buckets AS b (corporate_id, user_id, tat, per_second, burst, taken)
		VALUES ($1, $2, $3::bigint + least($8::int, $6::int) * $4::bigint, $5, $6, least($8::int, $6::int))
		ON CONFLICT (corporate_id, user_id) DO UPDATE
		SET tat = CASE WHEN b.per_second = excluded.per_second AND b.burst = excluded.burst
		               THEN greatest(b.tat, $3::bigint) + least($8::int, ($3::bigint + $7::bigint - greatest(b.tat, $3::bigint)) / $4::bigint) * $4::bigint
		               ELSE excluded.tat END,
		    taken = CASE WHEN b.per_second = excluded.per_second AND b.burst = excluded.burst
		                 THEN least($8::int, ($3::bigint + $7::bigint - greatest(b.tat, $3::bigint)) / $4::bigint)
		                 ELSE excluded.taken END,
		    per_second = excluded.per_second, burst = excluded.burst
		WHERE b.per_second <> excluded.per_second OR b.burst <> excluded.burst
		   OR greatest(b.tat, $3::bigint) + $4::bigint <= $3::bigint + $7::bigint
		RETURNING tat, taken)
	SELECT tat, taken FROM took
	UNION ALL
	SELECT tat, 0 FROM rate_buckets
	WHERE corporate_id = $1 AND user_id = $2 AND NOT EXISTS (SELECT FROM took)`

// PurgeRateBuckets deletes the buckets that have filled up again (tat
// passed): such a row says no more than no row does, so only the keys
// active in the last burst's worth of time stay. It walks the table in key
// order, a batch of rows at a time, each its own transaction: tat has no
// index (one would stop PostgreSQL from updating rows in place), so a
// batch that looked for idle rows from the start each time would scan the
// rows it deleted before again. It returns how many it deleted.
func (s *Store) PurgeRateBuckets(ctx context.Context) (int64, error) {
	if !s.SharesRateLimits() {
		return 0, nil // SQLite: the buckets are in the server's memory
	}
	now := s.now().UnixNano()
	var total int64
	lastCorporate, lastUser := int64(math.MinInt64), int64(math.MinInt64)
	for {
		var scanned, deleted int64
		err := s.inWrite(ctx, func(q querier) error {
			err := q.QueryRowContext(ctx, purgeRateBuckets, lastCorporate, lastUser, purgeBatch, now).Scan(&scanned, &deleted, &lastCorporate, &lastUser)
			if errors.Is(err, sql.ErrNoRows) {
				scanned = 0 // past the last row
				return nil
			}
			return err
		})
		if err != nil {
			return total, internal("purge rate buckets", err)
		}
		total += deleted
		if scanned < int64(purgeBatch) {
			return total, nil
		}
	}
}

// purgeRateBuckets deletes the idle rows among the batch ($3 rows) after
// key ($1, $2), and says how many rows it looked at and deleted, and the
// batch's last key (no row: no rows after that key). A row that a request
// moves meanwhile is checked again as it is then, and kept.
const purgeRateBuckets = `
	WITH batch AS (
		SELECT corporate_id, user_id FROM rate_buckets
		WHERE (corporate_id, user_id) > ($1, $2)
		ORDER BY corporate_id, user_id LIMIT $3),
	gone AS (
		DELETE FROM rate_buckets b USING batch
		WHERE b.corporate_id = batch.corporate_id AND b.user_id = batch.user_id AND b.tat < $4
		RETURNING 1)
	SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM gone), last.corporate_id, last.user_id
	FROM (SELECT corporate_id, user_id FROM batch ORDER BY corporate_id DESC, user_id DESC LIMIT 1) last`

package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/imbee/imbee"
)

// ClaimDeliveries takes up to limit deliveries that are due and marks them
// as being sent until now+lease. A delivery whose sender died mid-send
// becomes due again when its lease runs out, so nothing committed is lost.
// Each corporate gets a fair share of pool, the sends in flight at once
// (see fairDue): one whose recipients hang cannot hold them all.
func (s *Store) ClaimDeliveries(ctx context.Context, limit, pool int, lease time.Duration) ([]imbee.Delivery, error) {
	var out []imbee.Delivery
	err := s.inWrite(ctx, func(q querier) error {
		out = out[:0]
		now := s.now()
		due, err := fairDue(ctx, q, "deliveries", "deliveries"+s.dialect.indexedBy("deliveries_queue"), unix(now), limit, pool)
		if err != nil || len(due) == 0 {
			return internalOrNil("claim deliveries", err)
		}
		in, args := inKeys(due)
		rows, err := q.QueryContext(ctx, `
			UPDATE deliveries`+s.dialect.byRowID()+`
			SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
			WHERE (`+in+`) AND status IN ('queued', 'failed', 'sending') AND next_attempt_at <= ?
			RETURNING id, corporate_id, link_id, channel, recipient, attempts`,
			append(append([]any{unix(now.Add(lease)), unix(now)}, args...), unix(now))...)
		if err != nil {
			return internal("claim deliveries", err)
		}
		for rows.Next() {
			d := imbee.Delivery{Status: imbee.DeliverySending}
			if err := rows.Scan(&d.ID, &d.CorporateID, &d.LinkID, &d.Recipient.Channel, &d.Recipient.Address, &d.Attempts); err != nil {
				rows.Close()
				return internal("claim deliveries", err)
			}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return internal("claim deliveries", err)
		}
		for i := range out {
			var nonce []byte
			var keyed bool
			err := q.QueryRowContext(ctx, `
				SELECT l.token_nonce, l.token_keyed, b.name, c.name, c.language, c.sender_name
				FROM links l JOIN bots b ON b.corporate_id = l.corporate_id AND b.id = l.bot_id JOIN corporates c ON c.id = l.corporate_id
				WHERE l.corporate_id = ? AND l.id = ?`, out[i].CorporateID, out[i].LinkID).Scan(&nonce, &keyed, &out[i].BotName, &out[i].CorporateName, &out[i].Language, &out[i].SenderName)
			if err != nil {
				return internal("claim deliveries", err)
			}
			out[i].LinkToken = s.linkToken(out[i].CorporateID, out[i].LinkID, nonce, keyed)
		}
		return nil
	})
	return out, err
}

// MarkSent records that providers accepted the deliveries, in one
// transaction.
func (s *Store) MarkSent(ctx context.Context, sent []imbee.SentJob) error {
	now := unix(s.now())
	return s.inWrite(ctx, func(q querier) error {
		for _, r := range sent {
			if _, err := q.ExecContext(ctx, `
				UPDATE deliveries SET status = 'sent', provider_id = ?, last_error = '', last_reason = '', updated_at = ?
				WHERE corporate_id = ? AND id = ?`, r.ProviderID, now, r.CorporateID, r.ID); err != nil {
				return internal("mark sent", err)
			}
		}
		return nil
	})
}

// MarkFailed records a failed attempt: retried at retryAt, or dead for good
// when dead is set. cause is the whole error, for the operator; reason its
// class, which the tenant sees.
func (s *Store) MarkFailed(ctx context.Context, corporateID, id int64, cause, reason string, retryAt time.Time, dead bool) error {
	return s.inWrite(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `UPDATE deliveries SET last_reason = ? WHERE corporate_id = ? AND id = ? AND status = 'sending'`, reason, corporateID, id)
		if err != nil {
			return internal("mark failed", err)
		}
		return s.markFailedTx(ctx, q, "deliveries", corporateID, id, cause, retryAt, dead)
	})
}

// markFailed records a failed attempt on a row of a queue table
// (deliveries or webhook_events).
func (s *Store) markFailed(ctx context.Context, table string, corporateID, id int64, cause string, retryAt time.Time, dead bool) error {
	return s.inWrite(ctx, func(q querier) error { return s.markFailedTx(ctx, q, table, corporateID, id, cause, retryAt, dead) })
}

// Only a row being sent is changed: a server that stalled past its lease
// records its attempt late, and must not queue again a row that the server
// which took it over has sent meanwhile.
func (s *Store) markFailedTx(ctx context.Context, q querier, table string, corporateID, id int64, cause string, retryAt time.Time, dead bool) error {
	status := imbee.DeliveryFailed
	if dead {
		status = imbee.DeliveryDead
	}
	_, err := q.ExecContext(ctx, `
		UPDATE `+table+` SET status = ?, last_error = ?, next_attempt_at = ?, updated_at = ?
		WHERE corporate_id = ? AND id = ? AND status = 'sending'`, string(status), cause, unix(retryAt.Add(time.Second-time.Nanosecond)), unix(s.now()), corporateID, id) // rounded up: never due early
	if err != nil {
		return internal("mark failed", err)
	}
	return nil
}

// Deliveries lists deliveries, newest first, optionally of one status.
func (s *Store) Deliveries(ctx context.Context, status imbee.DeliveryStatus, limit int) ([]imbee.Delivery, error) {
	if status != "" {
		return s.listDeliveries(ctx, `WHERE status = ? ORDER BY id DESC LIMIT ?`, string(status), limit)
	}
	return s.listDeliveries(ctx, `ORDER BY id DESC LIMIT ?`, limit)
}

// listDeliveries reads the ledger rows that where (a WHERE, ORDER and LIMIT
// clause) selects.
func (s *Store) listDeliveries(ctx context.Context, where string, args ...any) ([]imbee.Delivery, error) {
	rows, err := s.reads.QueryContext(ctx, `
		SELECT id, corporate_id, link_id, channel, recipient, status, attempts, last_error, last_reason, provider_id,
			created_at, updated_at, next_attempt_at
		FROM deliveries `+where, args...)
	if err != nil {
		return nil, internal("list deliveries", err)
	}
	defer rows.Close()
	var out []imbee.Delivery
	for rows.Next() {
		var d imbee.Delivery
		var created, updated, next int64
		if err := rows.Scan(&d.ID, &d.CorporateID, &d.LinkID, &d.Recipient.Channel, &d.Recipient.Address, &d.Status,
			&d.Attempts, &d.LastError, &d.LastReason, &d.ProviderID, &created, &updated, &next); err != nil {
			return nil, internal("list deliveries", err)
		}
		d.CreatedAt, d.UpdatedAt, d.NextAttemptAt = time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC(), time.Unix(next, 0).UTC()
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("list deliveries", err)
	}
	return out, nil
}

// RetryDeliveries queues dead deliveries again, with a fresh set of
// attempts: the ones in ids, or every dead one when ids is empty. It returns
// how many were queued; ids that are not dead are left alone.
func (s *Store) RetryDeliveries(ctx context.Context, ids []int64) (int64, error) {
	return s.retryDead(ctx, "deliveries", ids)
}

// retryDead queues dead rows of a queue table again (see RetryDeliveries).
func (s *Store) retryDead(ctx context.Context, table string, ids []int64) (int64, error) {
	var n int64
	err := s.inWrite(ctx, func(q querier) error {
		n = 0
		now := unix(s.now())
		query := `UPDATE ` + table + ` SET status = 'queued', attempts = 0, next_attempt_at = ?, updated_at = ? WHERE status = 'dead'`
		if len(ids) == 0 {
			res, err := q.ExecContext(ctx, query, now, now)
			if err != nil {
				return internal("retry", err)
			}
			n, _ = res.RowsAffected()
			return nil
		}
		for _, id := range ids {
			res, err := q.ExecContext(ctx, query+` AND id = ?`, now, now, id)
			if err != nil {
				return internal("retry", err)
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	return n, err
}

// fairDue picks (inside a write transaction) up to limit due rows of a
// queue table (deliveries or webhook_events), fairly among corporates. A
// corporate may hold in flight (rows 'sending' under an unexpired lease, on
// any server) at most pool divided by the number of corporates with due or
// in-flight rows, and at least one: alone it may use the whole pool, and as
// others come it gets no more rows until it is down to its share, while
// theirs are claimed first. Within a claim the corporates take turns, the
// one whose oldest due row is oldest first: each one's oldest row, then
// each one's next.
//
// A disabled corporate's rows wait, neither claimed nor counted, until it
// is enabled again: the operator stopped it, its sends too.
//
// Its cost grows with the corporates that have unsent rows, not with the
// backlog nor with the corporates at rest: all its reads are seeks in one
// partial index on (corporate_id, status, next_attempt_at) (migration
// 00009). It steps from one such corporate to the next, and for each
// counts its rows in flight and finds its oldest due row of each unsent
// status; then it reads the oldest due rows of at most limit corporates.
// The UPDATE that claims the rows checks each is still due, which under
// PostgreSQL's row locks skips rows another server claimed meanwhile.
//
// Only the step from one corporate to the next reads across tenants (on a
// distributed engine, one index seek per shard); every other read, and the
// claim, names its corporate, so each touches one tenant's rows.
//
// from is the table as the statements read it: on SQLite pinned to that
// index (without statistics its planner prefers the (status, channel)
// index and reads every unsent row). Every statement repeats the index's
// condition (status IN unsent): SQLite uses a partial index only for a
// query whose WHERE contains it.
func fairDue(ctx context.Context, q querier, table, from string, now int64, limit, pool int) ([]rowKey, error) {
	const unsent = `status IN ('queued', 'failed', 'sending')`
	head := func(status string) string {
		return `(SELECT MIN(next_attempt_at) FROM ` + from + ` WHERE ` + unsent +
			` AND corporate_id = active.id AND status = '` + status + `' AND next_attempt_at <= ?)`
	}
	rows, err := q.QueryContext(ctx, `
		WITH RECURSIVE active(id) AS (
			SELECT MIN(corporate_id) FROM `+from+` WHERE `+unsent+`
			UNION ALL
			SELECT (SELECT MIN(corporate_id) FROM `+from+` WHERE `+unsent+` AND corporate_id > active.id)
			FROM active WHERE active.id IS NOT NULL)
		SELECT id,
			(SELECT COUNT(*) FROM `+from+` WHERE `+unsent+`
				AND corporate_id = active.id AND status = 'sending' AND next_attempt_at > ?),
			`+head("queued")+`, `+head("failed")+`, `+head("sending")+`
		FROM active WHERE id IS NOT NULL
			AND NOT EXISTS (SELECT 1 FROM corporates c WHERE c.id = active.id AND c.disabled_at IS NOT NULL)`, now, now, now, now)
	if err != nil {
		return nil, err
	}
	type corp struct {
		id, busy int64
		head     sql.NullInt64 // its oldest due row's next_attempt_at
	}
	var active []corp
	for rows.Next() {
		var c corp
		var heads [3]sql.NullInt64
		if err := rows.Scan(&c.id, &c.busy, &heads[0], &heads[1], &heads[2]); err != nil {
			rows.Close()
			return nil, err
		}
		for _, h := range heads {
			if h.Valid && (!c.head.Valid || h.Int64 < c.head.Int64) {
				c.head = h
			}
		}
		if c.busy > 0 || c.head.Valid {
			active = append(active, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	share := max(1, int64(pool)/max(1, int64(len(active))))
	var takers []corp
	for _, c := range active {
		if c.head.Valid && c.busy < share {
			takers = append(takers, c)
		}
	}
	slices.SortFunc(takers, func(a, b corp) int { return cmp.Or(cmp.Compare(a.head.Int64, b.head.Int64), cmp.Compare(a.id, b.id)) })
	takers = takers[:min(len(takers), limit)]
	if len(takers) == 0 {
		return nil, nil
	}
	// Each taker's oldest due rows of each status, in index order; merged
	// per corporate below.
	var query strings.Builder
	var args []any
	quota := map[int64]int64{}
	for i, c := range takers {
		quota[c.id] = min(share-c.busy, int64(limit))
		for j, status := range []string{"queued", "failed", "sending"} {
			if i+j > 0 {
				query.WriteString(" UNION ALL ")
			}
			fmt.Fprintf(&query, `SELECT * FROM (SELECT id, corporate_id, next_attempt_at FROM %s
				WHERE %s AND corporate_id = ? AND status = '%s' AND next_attempt_at <= ?
				ORDER BY next_attempt_at, id LIMIT ?) AS c%d_%d`, from, unsent, status, i, j)
			args = append(args, c.id, now, quota[c.id])
		}
	}
	rows, err = q.QueryContext(ctx, query.String(), args...)
	if err != nil {
		return nil, err
	}
	type candidate struct{ id, corporate, rank, at int64 }
	var cands []candidate
	for rows.Next() {
		var c candidate
		if err := rows.Scan(&c.id, &c.corporate, &c.at); err != nil {
			rows.Close()
			return nil, err
		}
		cands = append(cands, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Rank each corporate's rows, oldest first, within its quota; then the
	// corporates take turns by rank.
	slices.SortFunc(cands, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.corporate, b.corporate), cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id))
	})
	var ranked []candidate
	for i := range cands {
		if i > 0 && cands[i].corporate == cands[i-1].corporate {
			cands[i].rank = cands[i-1].rank + 1
		}
		if cands[i].rank < quota[cands[i].corporate] {
			ranked = append(ranked, cands[i])
		}
	}
	slices.SortFunc(ranked, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.at, b.at), cmp.Compare(a.id, b.id))
	})
	keys := make([]rowKey, 0, min(len(ranked), limit))
	for _, c := range ranked[:min(len(ranked), limit)] {
		keys = append(keys, rowKey{c.corporate, c.id})
	}
	return keys, nil
}

// rowKey names a tenant's row: its corporate and id.
type rowKey struct{ corporate, id int64 }

// inKeys is a condition that holds for the rows of keys, one corporate_id
// = ? AND id IN (…) per corporate, and its arguments.
func inKeys(keys []rowKey) (string, []any) {
	byCorporate := map[int64][]any{}
	var corporates []int64
	for _, k := range keys {
		if _, ok := byCorporate[k.corporate]; !ok {
			corporates = append(corporates, k.corporate)
		}
		byCorporate[k.corporate] = append(byCorporate[k.corporate], k.id)
	}
	var cond []string
	var args []any
	for _, c := range corporates {
		ids := byCorporate[c]
		cond = append(cond, "corporate_id = ? AND id IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")+")")
		args = append(append(args, c), ids...)
	}
	return "(" + strings.Join(cond, ") OR (") + ")", args
}

// internalOrNil wraps a storage failure, if any.
func internalOrNil(op string, err error) error {
	if err != nil {
		return internal(op, err)
	}
	return nil
}

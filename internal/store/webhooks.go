package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// SetBotWebhook sets (or, with url "", removes) the webhook of a bot of the
// corporate and returns its new signing secret: shown once, derived from a
// fresh nonce, so the previous secret stops being valid. It returns
// CodeNotFound (field bot_idsha) for a bot not of this corporate.
func (s *Store) SetBotWebhook(ctx context.Context, corporateID int64, botIDSha, url string) (string, error) {
	var nonce []byte
	if url != "" {
		nonce = secret.NewNonce()
	}
	err := s.inWrite(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `UPDATE bots SET webhook_url = ?, webhook_nonce = ? WHERE corporate_id = ? AND idsha = ? AND revoked_at IS NULL`,
			url, nonce, corporateID, botIDSha)
		if err != nil {
			return internal("set webhook", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return imbee.NotFound(imbee.SubjectBot, "{%s} does not name a bot of this corporate", imbee.SubjectBot)
		}
		return nil
	})
	if err != nil || url == "" {
		return "", err
	}
	return s.keys.Derive(secret.WebhookSecret, nonce), nil
}

// BotByIDSha returns a bot of the corporate (CodeNotFound otherwise).
func (s *Store) BotByIDSha(ctx context.Context, corporateID int64, idsha string) (imbee.Bot, error) {
	b := imbee.Bot{CorporateID: corporateID, IDSha: idsha}
	var created int64
	err := s.reads.QueryRowContext(ctx, `SELECT id, name, created_at FROM bots WHERE corporate_id = ? AND idsha = ? AND revoked_at IS NULL`,
		corporateID, idsha).Scan(&b.ID, &b.Name, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return b, imbee.NotFound(imbee.SubjectBot, "{%s} does not name a bot of this corporate", imbee.SubjectBot)
	}
	if err != nil {
		return b, internal("find bot", err)
	}
	b.CreatedAt = time.Unix(created, 0).UTC()
	return b, nil
}

// ClaimWebhookEvents takes up to limit due webhook events, leased until
// now+lease, with their bot's current URL and secret (URL "" when the bot's
// webhook was removed since); each corporate gets a fair share of pool, as
// ClaimDeliveries.
func (s *Store) ClaimWebhookEvents(ctx context.Context, limit, pool int, lease time.Duration) ([]imbee.WebhookEvent, error) {
	var out []imbee.WebhookEvent
	err := s.inWrite(ctx, func(q querier) error {
		out = out[:0]
		now := s.now()
		due, err := fairDue(ctx, q, "webhook_events", "webhook_events"+s.dialect.indexedBy("webhook_events_queue"), unix(now), limit, pool)
		if err != nil || len(due) == 0 {
			return internalOrNil("claim webhook events", err)
		}
		in, args := inKeys(due)
		rows, err := q.QueryContext(ctx, `
			UPDATE webhook_events`+s.dialect.byRowID()+`
			SET status = 'sending', attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
			WHERE (`+in+`) AND status IN ('queued', 'failed', 'sending') AND next_attempt_at <= ?
			RETURNING id, corporate_id, bot_id, event_id, payload, attempts`,
			append(append([]any{unix(now.Add(lease)), unix(now)}, args...), unix(now))...)
		if err != nil {
			return internal("claim webhook events", err)
		}
		var botIDs []int64
		for rows.Next() {
			var e imbee.WebhookEvent
			var botID int64
			var payload string
			if err := rows.Scan(&e.ID, &e.CorporateID, &botID, &e.EventID, &payload, &e.Attempts); err != nil {
				rows.Close()
				return internal("claim webhook events", err)
			}
			e.Payload, e.Status = []byte(payload), imbee.DeliverySending
			out = append(out, e)
			botIDs = append(botIDs, botID)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return internal("claim webhook events", err)
		}
		for i, botID := range botIDs {
			var nonce []byte
			if err := q.QueryRowContext(ctx, `SELECT idsha, webhook_url, webhook_nonce FROM bots WHERE corporate_id = ? AND id = ?`, out[i].CorporateID, botID).
				Scan(&out[i].BotIDSha, &out[i].URL, &nonce); err != nil {
				return internal("claim webhook events", err)
			}
			if out[i].URL != "" && len(nonce) > 0 {
				out[i].Secret = s.keys.Derive(secret.WebhookSecret, nonce)
			} else {
				out[i].URL = ""
			}
		}
		return nil
	})
	return out, err
}

// MarkWebhooksSent records that the bots' endpoints accepted the webhook
// events: in one transaction, one statement per corporate among them.
func (s *Store) MarkWebhooksSent(ctx context.Context, sent []imbee.SentJob) error {
	now := unix(s.now())
	return s.inWrite(ctx, func(q querier) error {
		return eachCorporate(sent, func(rows []imbee.SentJob) error {
			args := []any{now}
			_, err := q.ExecContext(ctx, `UPDATE webhook_events SET status = 'sent', last_error = '', updated_at = ? WHERE `+eachRow(rows, &args), args...)
			if err != nil {
				return internal("mark sent", err)
			}
			return nil
		})
	})
}

// markSentBatch bounds the rows one statement of MarkWebhooksSent names.
var markSentBatch = 100

// eachRow is the condition that picks rows, one term a row, and appends
// its arguments. Each term names a row by its whole key, so that each is
// an index lookup on both backends: an "id IN (…)" list made SQLite scan
// every row of the corporate, and a join with a VALUES list made
// PostgreSQL do the same.
func eachRow(rows []imbee.SentJob, args *[]any) string {
	terms := make([]string, len(rows))
	for i, r := range rows {
		terms[i] = "(id = ? AND corporate_id = ?)"
		*args = append(*args, r.ID, r.CorporateID)
	}
	return strings.Join(terms, " OR ")
}

// eachCorporate calls fn with the jobs of each corporate among sent, at
// most markSentBatch at a time: each statement stays on one tenant's rows.
func eachCorporate(sent []imbee.SentJob, fn func(rows []imbee.SentJob) error) error {
	byCorp := map[int64][]imbee.SentJob{}
	var order []int64
	for _, j := range sent {
		if _, ok := byCorp[j.CorporateID]; !ok {
			order = append(order, j.CorporateID)
		}
		byCorp[j.CorporateID] = append(byCorp[j.CorporateID], j)
	}
	for _, corp := range order {
		rows := byCorp[corp]
		for lo := 0; lo < len(rows); lo += markSentBatch {
			if err := fn(rows[lo:min(lo+markSentBatch, len(rows))]); err != nil {
				return err
			}
		}
	}
	return nil
}

// MarkWebhookFailed records a failed attempt (see MarkFailed).
func (s *Store) MarkWebhookFailed(ctx context.Context, corporateID, id int64, cause string, retryAt time.Time, dead bool) error {
	return s.markFailed(ctx, "webhook_events", corporateID, id, cause, retryAt, dead)
}

// RetryWebhookEvents queues dead webhook events again (see RetryDeliveries).
func (s *Store) RetryWebhookEvents(ctx context.Context, ids []int64) (int64, error) {
	return s.retryDead(ctx, "webhook_events", ids)
}

// WebhookEvents lists webhook events, newest first, optionally of one status.
func (s *Store) WebhookEvents(ctx context.Context, status imbee.DeliveryStatus, limit int) ([]imbee.WebhookEvent, error) {
	query := `
		SELECT e.id, e.corporate_id, b.idsha, e.event_id, e.payload, e.status, e.attempts, e.last_error, e.created_at, e.updated_at
		FROM webhook_events e JOIN bots b ON b.corporate_id = e.corporate_id AND b.id = e.bot_id`
	args := []any{}
	if status != "" {
		query += ` WHERE e.status = ?`
		args = append(args, string(status))
	}
	rows, err := s.reads.QueryContext(ctx, query+` ORDER BY e.id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, internal("list webhook events", err)
	}
	defer rows.Close()
	var out []imbee.WebhookEvent
	for rows.Next() {
		var e imbee.WebhookEvent
		var payload string
		var created, updated int64
		if err := rows.Scan(&e.ID, &e.CorporateID, &e.BotIDSha, &e.EventID, &payload, &e.Status, &e.Attempts, &e.LastError, &created, &updated); err != nil {
			return nil, internal("list webhook events", err)
		}
		e.Payload, e.CreatedAt, e.UpdatedAt = []byte(payload), time.Unix(created, 0).UTC(), time.Unix(updated, 0).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}

// RevokeBot retires a bot of the corporate: it takes no new links,
// conversations or messages, its links stop working (ending their web
// sessions) and its webhook is removed. It returns how many links it ended;
// an unknown or already revoked bot is CodeNotFound.
func (s *Store) RevokeBot(ctx context.Context, corporateID int64, idsha string) (int64, error) {
	var n int64
	err := s.inWrite(ctx, func(q querier) error {
		now := unix(s.now())
		var botID int64
		err := q.QueryRowContext(ctx, `
			UPDATE bots SET revoked_at = ?, webhook_url = '', webhook_nonce = NULL
			WHERE corporate_id = ? AND idsha = ? AND revoked_at IS NULL
			RETURNING id`, now, corporateID, idsha).Scan(&botID)
		if errors.Is(err, sql.ErrNoRows) {
			return imbee.NotFound(imbee.SubjectBot, "no such bot (or it is revoked already)")
		}
		if err != nil {
			return internal("revoke bot", err)
		}
		res, err := q.ExecContext(ctx, `UPDATE links SET revoked_at = ? WHERE corporate_id = ? AND bot_id = ? AND revoked_at IS NULL`, now, corporateID, botID)
		if err != nil {
			return internal("revoke bot links", err)
		}
		n, _ = res.RowsAffected()
		return s.revoke(ctx, q, corporateID, imbee.RevokedBot, botID)
	})
	return n, err
}

package store

import (
	"context"
	"fmt"
	"strings"
)

// copiedTable is a table CopyAll moves: its columns, and the key its rows
// are read in ("id": an id column that new rows continue).
type copiedTable struct {
	name    string
	columns string
	order   string
}

// copiedTables is the one list of the tables CopyAll moves, parents before
// children as their foreign keys need; migrate-data reports them in this
// order. schema_test.go checks that, with the tables left deliberately
// (listed there with why), they are every table of both dialects, with
// every column.
var copiedTables = []copiedTable{
	{"corporates", "id, name, timezone, language, sender_name, rate_limit, rate_burst, auth_nonce, corporate_token_nonce, corporate_token_hash, created_at, disabled_at", "id"},
	{"corporate_routes", "auth_hash, corporate_id", "auth_hash"},
	{"bots", "id, corporate_id, idsha, name, webhook_url, webhook_nonce, revoked_at, created_at", "id"},
	{"users", "id, corporate_id, unique_id, idsha, secret_nonce, apikey_hash, pass_keyed, created_at", "id"},
	{"user_routes", "idsha, corporate_id, user_id", "idsha"},
	{"devices", "id, corporate_id, user_id, platform, device_name, hardware_id, os_version, first_seen, last_seen", "id"},
	{"conversations", "id, corporate_id, public_id, type, name, pair_key, last_seq, created_at", "id"},
	{"conversation_members", "conversation_id, corporate_id, position, idsha, is_bot, is_admin, read_seq", "conversation_id, position"},
	{"messages", "id, corporate_id, conversation_id, seq, sender, sender_is_bot, client_msg_id, text, created_at", "id"},
	{"links", "id, corporate_id, user_id, bot_id, token_nonce, token_keyed, max_uses, uses, date_limit, expires_at, revoked_at, current, created_at", "id"},
	{"link_routes", "token_hash, corporate_id, link_id", "token_hash"},
	{"sessions", "id, corporate_id, link_id, user_id, conversation_id, token_hash, expires_at, created_at", "id"},
	{"session_routes", "token_hash, corporate_id, session_id", "token_hash"},
	{"app_sessions", "id, corporate_id, user_id, secret_nonce, token_hash, expires_at, created_at", "id"},
	{"app_session_routes", "token_hash, corporate_id, session_id", "token_hash"},
	{"push_subscriptions", "id, corporate_id, user_id, endpoint, p256dh, auth_sealed, created_at", "id"},
	{"deliveries", "id, corporate_id, link_id, channel, recipient, recipient_key, status, attempts, next_attempt_at, last_error, last_reason, provider_id, created_at, updated_at", "id"},
	{"webhook_events", "id, corporate_id, bot_id, event_id, payload, status, attempts, next_attempt_at, last_error, created_at, updated_at", "id"},
	{"link_attempts", "id, corporate_id, link_id, at_us, method, result, client_hash, agent", "id"},
	{"idempotency_keys", "corporate_id, principal, key_hash, request_hash, response, created_at, expires_at", "corporate_id, principal, key_hash"},
}

// Copied is how many rows CopyAll moved into one table.
type Copied struct {
	Table string
	Rows  int
}

// copyBatch is how many rows one INSERT carries.
const copyBatch = 200

// CopyAll moves every row of src into dst, ids included, in one transaction
// of dst: it all arrives or nothing does. dst must be empty. Both stores must
// use the same server key (Open checks it), so every secret stays valid.
// It returns the rows copied per table, every table in the order copied.
func CopyAll(ctx context.Context, src, dst *Store) ([]Copied, error) {
	if n, err := dst.CountCorporates(ctx); err != nil || n > 0 {
		if err == nil {
			err = fmt.Errorf("the target database already has %d corporates: migrate into an empty one", n)
		}
		return nil, err
	}
	var counts []Copied
	err := dst.inWrite(ctx, func(q querier) error {
		counts = counts[:0] // fn may run again
		for _, t := range copiedTables {
			n, err := copyTable(ctx, src, q, t.name, t.columns, t.order)
			if err != nil {
				return fmt.Errorf("copy %s: %w", t.name, err)
			}
			counts = append(counts, Copied{t.name, n})
		}
		var bootstrapped string
		if err := src.reads.QueryRowContext(ctx, `SELECT coalesce(max(value), '') FROM meta WHERE name = 'bootstrapped'`).Scan(&bootstrapped); err != nil {
			return err
		}
		if bootstrapped != "" {
			if _, err := q.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES ('bootstrapped', ?) ON CONFLICT (name) DO NOTHING`, bootstrapped); err != nil {
				return err
			}
		}
		// New ids continue after the copied ones.
		for _, t := range copiedTables {
			query := dst.dialect.continueIDs(t.name)
			if t.order != "id" || query == "" {
				continue
			}
			if _, err := q.ExecContext(ctx, query); err != nil {
				return fmt.Errorf("reset %s ids: %w", t.name, err)
			}
		}
		return nil
	})
	return counts, err
}

func copyTable(ctx context.Context, src *Store, q querier, table, columns, order string) (int, error) {
	rows, err := src.reads.QueryContext(ctx, `SELECT `+columns+` FROM `+table+` ORDER BY `+order)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	ncol := len(strings.Split(columns, ","))
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", ncol), ", ") + ")"
	var batch []any
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		values := strings.TrimSuffix(strings.Repeat(row+", ", len(batch)/ncol), ", ")
		_, err := q.ExecContext(ctx, `INSERT INTO `+table+` (`+columns+`) VALUES `+values, batch...)
		batch = batch[:0]
		return err
	}
	for rows.Next() {
		vals := make([]any, ncol)
		ptrs := make([]any, ncol)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		batch = append(batch, vals...)
		n++
		if n%copyBatch == 0 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	return n, flush()
}

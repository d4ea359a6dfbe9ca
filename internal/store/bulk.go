package store

import (
	"context"
	"fmt"
	"time"

	"github.com/imbee/imbee/internal/secret"
)

// bulkBatch is how many rows of each kind one bulk transaction inserts.
const bulkBatch = 20000

// BulkLoad inserts n users of the corporate (unique ids prefix0…), n 1:1
// chats (user i with user i+1) and n links (user i with the bot, 10 uses,
// ending at expires), in large transactions with prepared statements. It is
// the fast path for loading a big installation (the benchmarks' scale run);
// rows get the same derived secrets as rows made through the API.
func (s *Store) BulkLoad(ctx context.Context, corporateID, botID int64, prefix string, n int, expires time.Time) error {
	now := unix(s.now())
	dateLimit := expires.UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	var prevUser struct {
		id    int64
		idsha string
	}
	for lo := 0; lo < n; lo += bulkBatch {
		hi := min(lo+bulkBatch, n)
		err := s.inWrite(ctx, func(q querier) error {
			for i := lo; i < hi; i++ {
				nonce := secret.NewNonce()
				idsha := secret.NewID()
				var userID int64
				if err := q.QueryRowContext(ctx, `
					INSERT INTO users (corporate_id, unique_id, idsha, secret_nonce, pass_keyed, created_at)
					VALUES (?, ?, ?, ?, 1, ?) RETURNING id`,
					corporateID, fmt.Sprintf("%s%d", prefix, i), idsha, nonce, now).Scan(&userID); err != nil {
					return internal("bulk user", err)
				}
				linkNonce := secret.NewNonce()
				if _, err := q.ExecContext(ctx, `
					INSERT INTO links (corporate_id, user_id, bot_id, token_nonce, token_keyed, max_uses, date_limit, expires_at, created_at)
					VALUES (?, ?, ?, ?, 1, 10, ?, ?, ?)`,
					corporateID, userID, botID, linkNonce, dateLimit, unix(expires), now,
				); err != nil {
					return internal("bulk link", err)
				}
				if prevUser.id != 0 {
					key := prevUser.idsha + ":" + idsha
					if idsha < prevUser.idsha {
						key = idsha + ":" + prevUser.idsha
					}
					var convID int64
					if err := q.QueryRowContext(ctx, `
						INSERT INTO conversations (corporate_id, public_id, type, pair_key, created_at)
						VALUES (?, ?, 'chat', ?, ?) RETURNING id`,
						corporateID, secret.NewID(), key, now).Scan(&convID); err != nil {
						return internal("bulk chat", err)
					}
					if _, err := q.ExecContext(ctx, `
						INSERT INTO conversation_members (conversation_id, corporate_id, position, idsha, is_bot, is_admin)
						VALUES (?, ?, 0, ?, 0, 1), (?, ?, 1, ?, 0, 0)`,
						convID, corporateID, prevUser.idsha, convID, corporateID, idsha); err != nil {
						return internal("bulk members", err)
					}
				}
				prevUser.id, prevUser.idsha = userID, idsha
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

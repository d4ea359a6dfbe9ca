package store

import (
	"context"
	"database/sql"
	"errors"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// CreateConversation creates a group, or returns the pair's 1:1 chat,
// creating it on first call from either side. Contacts must be users or bots
// of the same corporate (CodeNotFound otherwise); the caller has already
// refused a chat with oneself.
func (s *Store) CreateConversation(ctx context.Context, req imbee.ChatRequest) (conv imbee.Conversation, err error) {
	err = s.inWrite(ctx, func(q querier) error {
		members := []imbee.Member{{IDSha: req.Creator, IsAdmin: true}}
		for _, idsha := range req.Contacts {
			m, err := memberByIDSha(ctx, q, req.CorporateID, idsha)
			if err != nil {
				return err
			}
			members = append(members, m)
		}
		if req.Type == imbee.ConversationChat {
			conv, err = s.ensureChat(ctx, q, req.CorporateID, members[0], members[1])
			return err
		}
		conv, err = s.insertConversation(ctx, q, req.CorporateID, imbee.ConversationGroup, req.Name, nil, members)
		return err
	})
	return conv, err
}

// memberByIDSha finds a user or bot of the corporate.
func memberByIDSha(ctx context.Context, q querier, corporateID int64, idsha string) (imbee.Member, error) {
	m := imbee.Member{IDSha: idsha}
	err := q.QueryRowContext(ctx, `
		SELECT 0, '' FROM users WHERE corporate_id = ? AND idsha = ?
		UNION ALL
		SELECT 1, name FROM bots WHERE corporate_id = ? AND idsha = ?`,
		corporateID, idsha, corporateID, idsha).Scan(&m.IsBot, &m.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return m, &imbee.Error{Code: imbee.CodeNotFound, Field: "contacts", Message: "contact " + idsha + " does not exist"}
	}
	if err != nil {
		return m, internal("find contact", err)
	}
	return m, nil
}

// ensureChat returns the 1:1 chat of a and b, creating it with a as its
// creator when there is none. The unique (corporate_id, pair_key) decides
// which of concurrent creators wins.
func (s *Store) ensureChat(ctx context.Context, q querier, corporateID int64, a, b imbee.Member) (imbee.Conversation, error) {
	key := a.IDSha + ":" + b.IDSha
	if b.IDSha < a.IDSha {
		key = b.IDSha + ":" + a.IDSha
	}
	conv, err := s.insertConversation(ctx, q, corporateID, imbee.ConversationChat, "", &key, []imbee.Member{a, b})
	if err == nil || !errors.Is(err, errPairExists) {
		return conv, err
	}
	conv = imbee.Conversation{CorporateID: corporateID, Type: imbee.ConversationChat, Existing: true}
	err = q.QueryRowContext(ctx, `
		SELECT id, public_id FROM conversations WHERE corporate_id = ? AND pair_key = ?`,
		corporateID, key).Scan(&conv.ID, &conv.PublicID)
	if err != nil {
		return conv, internal("read chat", err)
	}
	conv.Members, err = conversationMembers(ctx, q, conv.ID)
	return conv, err
}

var errPairExists = errors.New("chat exists")

func (s *Store) insertConversation(ctx context.Context, q querier, corporateID int64, typ imbee.ConversationType, name string, pairKey *string, members []imbee.Member) (imbee.Conversation, error) {
	conv := imbee.Conversation{CorporateID: corporateID, PublicID: secret.NewID(), Type: typ, Name: name, Members: members}
	err := q.QueryRowContext(ctx, `
		INSERT INTO conversations (corporate_id, public_id, type, name, pair_key, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (corporate_id, pair_key) DO NOTHING
		RETURNING id`,
		corporateID, conv.PublicID, string(typ), name, pairKey, unix(s.now())).Scan(&conv.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return conv, errPairExists
	}
	if err != nil {
		return conv, internal("create conversation", err)
	}
	for i, m := range members {
		if _, err := q.ExecContext(ctx, `
			INSERT INTO conversation_members (conversation_id, corporate_id, position, idsha, is_bot, is_admin)
			VALUES (?, ?, ?, ?, ?, ?)`,
			conv.ID, corporateID, i, m.IDSha, m.IsBot, m.IsAdmin); err != nil {
			return conv, internal("add member", err)
		}
	}
	return conv, nil
}

func conversationMembers(ctx context.Context, q querier, conversationID int64) ([]imbee.Member, error) {
	rows, err := q.QueryContext(ctx, `
		SELECT idsha, is_admin, is_bot FROM conversation_members
		WHERE conversation_id = ? ORDER BY position`, conversationID)
	if err != nil {
		return nil, internal("read members", err)
	}
	defer rows.Close()
	var out []imbee.Member
	for rows.Next() {
		var m imbee.Member
		if err := rows.Scan(&m.IDSha, &m.IsAdmin, &m.IsBot); err != nil {
			return nil, internal("read members", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

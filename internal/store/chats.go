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
	if req.Type == imbee.ConversationChat && len(req.Contacts) == 1 {
		// A repeat reads the chat and writes nothing. A chat of this
		// corporate with that pair key proves that the contact exists.
		conv, err = s.chatByPair(ctx, s.reads, req.CorporateID, pairKey(req.Creator, req.Contacts[0]))
		if err == nil || !errors.Is(err, sql.ErrNoRows) {
			return conv, err
		}
	}
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
	key := pairKey(a.IDSha, b.IDSha)
	conv, err := s.insertConversation(ctx, q, corporateID, imbee.ConversationChat, "", &key, []imbee.Member{a, b})
	if err == nil || !errors.Is(err, errPairExists) {
		return conv, err
	}
	conv, err = s.chatByPair(ctx, q, corporateID, key)
	if err != nil {
		return conv, internal("read chat", err)
	}
	return conv, nil
}

// pairKey names the 1:1 chat of two members, whichever asks.
func pairKey(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + ":" + b
}

// chatByPair reads an existing 1:1 chat with its members, in one query.
// It returns sql.ErrNoRows when the pair has none.
func (s *Store) chatByPair(ctx context.Context, q querier, corporateID int64, key string) (imbee.Conversation, error) {
	conv := imbee.Conversation{CorporateID: corporateID, Type: imbee.ConversationChat, Existing: true}
	rows, err := q.QueryContext(ctx, `
		SELECT c.id, c.public_id, m.idsha, m.is_admin, m.is_bot
		FROM conversations c JOIN conversation_members m ON m.conversation_id = c.id
		WHERE c.corporate_id = ? AND c.pair_key = ?
		ORDER BY m.position`, corporateID, key)
	if err != nil {
		return conv, internal("read chat", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m imbee.Member
		if err := rows.Scan(&conv.ID, &conv.PublicID, &m.IDSha, &m.IsAdmin, &m.IsBot); err != nil {
			return conv, internal("read chat", err)
		}
		conv.Members = append(conv.Members, m)
	}
	if err := rows.Err(); err != nil {
		return conv, internal("read chat", err)
	}
	if len(conv.Members) == 0 {
		return conv, sql.ErrNoRows
	}
	return conv, nil
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
			conv.ID, corporateID, i, m.IDSha, boolInt(m.IsBot), boolInt(m.IsAdmin)); err != nil {
			return conv, internal("add member", err)
		}
	}
	return conv, nil
}

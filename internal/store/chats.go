package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// CreateConversation creates a group, or returns the pair's 1:1 chat,
// creating it on first call from either side. Contacts must be users or bots
// of the same corporate (CodeNotFound otherwise); the caller has already
// refused a chat with oneself. It always writes: the read-only repeat of a
// 1:1 chat is KnownChat.
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

// KnownChat is the read-only repeat of a 1:1 /chat/create, in one read with
// the credential check: it authenticates like AuthenticateUser, and returns
// the chat of that user with contact when there is one (found true). A chat
// of this corporate with that pair key proves that the contact exists.
func (s *Store) KnownChat(ctx context.Context, auth, apikey, contact string) (c imbee.Corporate, u imbee.User, conv imbee.Conversation, found bool, err error) {
	if auth == "" {
		return c, u, conv, false, errNoAuth()
	}
	// The pair key is looked up in both orders (only the sorted one can
	// exist): sorting in SQL would depend on the database's collation.
	from, where, whereArgs, _, _, isAuth := s.authCorporate(auth)
	byKey, args, check := s.userByAPIKey("corporates.id", apikey)
	rows, err := s.reads.QueryContext(ctx, `
		SELECT `+corporateColumns+`, corporates.auth_nonce, u.id, u.unique_id, u.idsha, u.secret_nonce,
			coalesce(v1.id, v2.id), coalesce(v1.public_id, v2.public_id), m.position, m.idsha, m.is_admin, m.is_bot
		FROM `+from+`
		LEFT JOIN users u ON `+byKey+`
		LEFT JOIN conversations v1 ON v1.corporate_id = corporates.id AND v1.pair_key = u.idsha || ':' || ?
		LEFT JOIN conversations v2 ON v2.corporate_id = corporates.id AND v2.pair_key = ? || ':' || u.idsha
		LEFT JOIN conversation_members m ON m.corporate_id = corporates.id AND m.conversation_id = coalesce(v1.id, v2.id)
		WHERE `+where+` AND corporates.disabled_at IS NULL`, append(append(args, contact, contact), whereArgs...)...)
	if err != nil {
		return c, u, conv, false, internal("authenticate", err)
	}
	defer rows.Close()
	var r corporateRow
	var userID, convID, position sql.NullInt64
	var uniqueID, idsha, publicID, member sql.NullString
	var nonce, authNonce []byte
	var isAdmin, isBot sql.NullBool
	seen := false
	for rows.Next() {
		if err := rows.Scan(r.dest(&authNonce, &userID, &uniqueID, &idsha, &nonce,
			&convID, &publicID, &position, &member, &isAdmin, &isBot)...); err != nil {
			return imbee.Corporate{}, u, conv, false, internal("authenticate", err)
		}
		seen = true
		if member.Valid {
			// Sorted here rather than by SQL: sorting two rows in SQLite
			// sets up a sorter that costs more than the rest of the read.
			m := imbee.Member{IDSha: member.String, IsAdmin: isAdmin.Bool, IsBot: isBot.Bool}
			i := min(int(position.Int64), len(conv.Members))
			conv.Members = slices.Insert(conv.Members, i, m)
		}
	}
	if err := rows.Err(); err != nil {
		return imbee.Corporate{}, u, conv, false, internal("authenticate", err)
	}
	if !seen || !isAuth(authNonce) { // every row is of the one corporate
		return imbee.Corporate{}, u, conv, false, errBadAuth()
	}
	c = r.corporate()
	if err := checkAPIKey(apikey, userID.Valid && check(nonce)); err != nil {
		return c, u, conv, false, err
	}
	u = imbee.User{ID: userID.Int64, CorporateID: c.ID, UniqueID: uniqueID.String, IDSha: idsha.String}
	if !convID.Valid || len(conv.Members) == 0 {
		return c, u, imbee.Conversation{}, false, nil
	}
	conv.ID, conv.PublicID, conv.CorporateID = convID.Int64, publicID.String, c.ID
	conv.Type, conv.Existing = imbee.ConversationChat, true
	return c, u, conv, true, nil
}

// memberByIDSha finds a user or bot of the corporate.
func memberByIDSha(ctx context.Context, q querier, corporateID int64, idsha string) (imbee.Member, error) {
	m := imbee.Member{IDSha: idsha}
	err := q.QueryRowContext(ctx, `
		SELECT 0, '' FROM users WHERE corporate_id = ? AND idsha = ?
		UNION ALL
		SELECT 1, name FROM bots WHERE corporate_id = ? AND idsha = ? AND revoked_at IS NULL`,
		corporateID, idsha, corporateID, idsha).Scan(&m.IsBot, &m.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return m, &imbee.Error{Code: imbee.CodeNotFound, Field: imbee.SubjectContact, Message: "contact " + idsha + " does not exist"}
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
		FROM conversations c JOIN conversation_members m ON m.corporate_id = c.corporate_id AND m.conversation_id = c.id
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

// insertConversation inserts a conversation and its members: on
// PostgreSQL in one statement (a data-modifying WITH), on SQLite in two
// (the conversation, then its members in one multi-row INSERT). A 1:1
// chat whose pair exists already is errPairExists.
func (s *Store) insertConversation(ctx context.Context, q querier, corporateID int64, typ imbee.ConversationType, name string, pairKey *string, members []imbee.Member) (imbee.Conversation, error) {
	conv := imbee.Conversation{CorporateID: corporateID, PublicID: secret.NewID(), Type: typ, Name: name, Members: members}
	insert := `
		INSERT INTO conversations (corporate_id, public_id, type, name, pair_key, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (corporate_id, pair_key) DO NOTHING
		RETURNING id`
	args := []any{corporateID, conv.PublicID, string(typ), name, pairKey, unix(s.now())}
	if s.dialect.writableWith && len(members) > 0 {
		rows := make([]any, 0, 5*len(members))
		for i, m := range members {
			rows = append(rows, corporateID, i, m.IDSha, boolInt(m.IsBot), boolInt(m.IsAdmin))
		}
		err := q.QueryRowContext(ctx, `WITH c AS (`+insert+`)
			INSERT INTO conversation_members (conversation_id, corporate_id, position, idsha, is_bot, is_admin)
			SELECT c.id, m.corporate_id, m.position, m.idsha, m.is_bot, m.is_admin
			FROM c, (VALUES `+typedRows(len(members))+`) AS m (corporate_id, position, idsha, is_bot, is_admin)
			RETURNING conversation_id`, append(args, rows...)...).Scan(&conv.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return conv, errPairExists
		}
		if err != nil {
			return conv, internal("create conversation", err)
		}
		return conv, nil
	}
	err := q.QueryRowContext(ctx, insert, args...).Scan(&conv.ID)
	if errors.Is(err, sql.ErrNoRows) {
		return conv, errPairExists
	}
	if err != nil {
		return conv, internal("create conversation", err)
	}
	if len(members) == 0 {
		return conv, nil
	}
	rows := make([]any, 0, 6*len(members))
	for i, m := range members {
		rows = append(rows, conv.ID, corporateID, i, m.IDSha, boolInt(m.IsBot), boolInt(m.IsAdmin))
	}
	if _, err := q.ExecContext(ctx, `
		INSERT INTO conversation_members (conversation_id, corporate_id, position, idsha, is_bot, is_admin)
		VALUES `+placeholders(len(members), 6), rows...); err != nil {
		return conv, internal("add members", err)
	}
	return conv, nil
}

// typedRows is placeholders for the rows of conversation members in a
// PostgreSQL VALUES list, typed: a VALUES list's parameters have no type
// of their own.
func typedRows(n int) string {
	const row = "(?::bigint, ?::int, ?::text, ?::int, ?::int)"
	return strings.Repeat(row+", ", n-1) + row
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/imbee/imbee"
)

// SendMessage adds a message to a conversation the sender is a member of,
// and queues it for the webhooks of the conversation's other bots, in one
// transaction. A repeat of a ClientMsgID by the same sender returns the
// message already sent, with existed set. Anyone but a member gets
// CodeNotFound, as for a conversation that does not exist.
func (s *Store) SendMessage(ctx context.Context, req imbee.MessageRequest) (msg imbee.Message, existed bool, err error) {
	if s.dialect.writableWith {
		return s.sendMessageStatement(ctx, req)
	}
	err = s.inWrite(ctx, func(q querier) error {
		existed = false
		var convID, lastSeq, horizon int64
		// The conversation row is locked first (PostgreSQL), so that
		// concurrent sends take seqs one after the other and a repeated
		// ClientMsgID is seen by the second of two racing sends. The same
		// read says how much of the revocations log the send saw, for the
		// sockets (see imbee.Horizon), at no extra round trip.
		err := q.QueryRowContext(ctx, `
			SELECT c.id, c.last_seq, `+horizonSQL+` FROM conversations c
			WHERE c.public_id = ? AND c.corporate_id = ?
			AND EXISTS (SELECT 1 FROM conversation_members m WHERE m.corporate_id = c.corporate_id AND m.conversation_id = c.id AND m.idsha = ?)`+s.dialect.forUpdate(),
			req.ConversationID, req.CorporateID, req.Sender).Scan(&convID, &lastSeq, &horizon)
		if errors.Is(err, sql.ErrNoRows) {
			return imbee.ErrNoConversation()
		}
		if err != nil {
			return internal("find conversation", err)
		}
		if req.ClientMsgID != "" {
			msg, err = scanMessage(q.QueryRowContext(ctx, `
				SELECT id, corporate_id, seq, sender, sender_is_bot, client_msg_id, text, created_at
				FROM messages WHERE corporate_id = ? AND conversation_id = ? AND sender = ? AND client_msg_id = ?`,
				req.CorporateID, convID, req.Sender, req.ClientMsgID))
			if err == nil {
				msg.ConversationID, existed = req.ConversationID, true
				return nil
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return internal("find message", err)
			}
		}
		now := s.now()
		msg = imbee.Message{
			CorporateID: req.CorporateID, ConversationID: req.ConversationID, Seq: lastSeq + 1,
			Sender: req.Sender, SenderIsBot: req.SenderIsBot, ClientMsgID: req.ClientMsgID, Text: req.Text,
			CreatedAt: now.UTC().Truncate(time.Second), Horizon: imbee.Horizon(horizon),
		}
		if _, err := q.ExecContext(ctx, `UPDATE conversations SET last_seq = ? WHERE corporate_id = ? AND id = ?`, msg.Seq, req.CorporateID, convID); err != nil {
			return internal("number message", err)
		}
		var clientID sql.NullString
		if req.ClientMsgID != "" {
			clientID = sql.NullString{String: req.ClientMsgID, Valid: true}
		}
		err = q.QueryRowContext(ctx, `
			INSERT INTO messages (corporate_id, conversation_id, seq, sender, sender_is_bot, client_msg_id, text, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			RETURNING id`,
			req.CorporateID, convID, msg.Seq, req.Sender, boolInt(req.SenderIsBot), clientID, req.Text, unix(now)).Scan(&msg.ID)
		if err != nil {
			return internal("add message", err)
		}
		// The sender's own (bot) webhook is not told of its own messages.
		payload, err := imbee.WebhookPayload(msg)
		if err != nil {
			return internal("webhook payload", err)
		}
		if _, err := q.ExecContext(ctx, `
			INSERT INTO webhook_events (corporate_id, bot_id, event_id, payload, next_attempt_at, created_at, updated_at)
			SELECT b.corporate_id, b.id, ?, ?, ?, ?, ?
			FROM conversation_members m JOIN bots b ON b.idsha = m.idsha AND b.corporate_id = m.corporate_id
			WHERE m.corporate_id = ? AND m.conversation_id = ? AND m.is_bot = 1 AND m.idsha <> ? AND b.webhook_url <> ''`,
			imbee.WebhookEventID(msg), string(payload), unix(now), unix(now), unix(now), req.CorporateID, convID, req.Sender); err != nil {
			return internal("queue webhook", err)
		}
		if err := s.notify(ctx, q, imbee.Event{Type: "message", CorporateID: msg.CorporateID, ConversationID: msg.ConversationID, Seq: msg.Seq, Horizon: msg.Horizon}); err != nil {
			return internal("notify", err)
		}
		return nil
	})
	return msg, existed, err
}

// sendMessageStatement is SendMessage on PostgreSQL: the same steps as one
// statement of data-modifying WITHs, outside any transaction, so that a
// send costs one round trip instead of eight (BEGIN, the conversation, the
// repeat, its number, the message, the webhooks, the event, COMMIT). The
// seq is numbered in the statement, so the webhook payload is written
// around it (imbee.WebhookPayloadAround).
//
// A concurrent send of the same ClientMsgID waits on the conversation's row
// and then inserts what its snapshot did not show: the unique key refuses
// it, and the statement runs again, which then finds the message.
func (s *Store) sendMessageStatement(ctx context.Context, req imbee.MessageRequest) (msg imbee.Message, existed bool, err error) {
	now := s.now()
	msg = imbee.Message{
		CorporateID: req.CorporateID, ConversationID: req.ConversationID,
		Sender: req.Sender, SenderIsBot: req.SenderIsBot, ClientMsgID: req.ClientMsgID, Text: req.Text,
		CreatedAt: now.UTC().Truncate(time.Second),
	}
	before, after, idBefore, err := imbee.WebhookPayloadAround(msg)
	if err != nil {
		return msg, false, internal("webhook payload", err)
	}
	var clientID sql.NullString // NULL matches no earlier message
	if req.ClientMsgID != "" {
		clientID = sql.NullString{String: req.ClientMsgID, Valid: true}
	}
	q := rebinder{s.db}
	for attempt := 1; ; attempt++ {
		var horizon int64
		var isBot int64
		var created int64
		err = q.QueryRowContext(ctx, `
			WITH conv AS (
				SELECT c.id, c.last_seq + 1 AS seq, `+horizonSQL+` AS horizon FROM conversations c
				WHERE c.public_id = ? AND c.corporate_id = ?
				AND EXISTS (SELECT 1 FROM conversation_members m WHERE m.corporate_id = c.corporate_id AND m.conversation_id = c.id AND m.idsha = ?)
				FOR UPDATE),
			repeat AS (
				SELECT m.id, m.seq, m.sender_is_bot, m.text, m.created_at FROM messages m JOIN conv ON m.conversation_id = conv.id
				WHERE m.corporate_id = ? AND m.sender = ? AND m.client_msg_id = ?),
			numbered AS (
				UPDATE conversations c SET last_seq = conv.seq FROM conv
				WHERE c.corporate_id = ? AND c.id = conv.id AND NOT EXISTS (SELECT 1 FROM repeat)
				RETURNING c.id, c.last_seq AS seq),
			added AS (
				INSERT INTO messages (corporate_id, conversation_id, seq, sender, sender_is_bot, client_msg_id, text, created_at)
				SELECT ?::bigint, id, seq, ?::text, ?::integer, ?::text, ?::text, ?::bigint FROM numbered
				RETURNING id, conversation_id, seq),
			hooks AS (
				INSERT INTO webhook_events (corporate_id, bot_id, event_id, payload, next_attempt_at, created_at, updated_at)
				SELECT b.corporate_id, b.id, ?::text || a.seq, ?::text || a.seq || ?::text, ?::bigint, ?::bigint, ?::bigint
				FROM added a
				JOIN conversation_members m ON m.corporate_id = ? AND m.conversation_id = a.conversation_id
				JOIN bots b ON b.idsha = m.idsha AND b.corporate_id = m.corporate_id
				WHERE m.is_bot = 1 AND m.idsha <> ? AND b.webhook_url <> ''),
			event AS (
				INSERT INTO events (corporate_id, origin, type, conversation, seq, member, horizon, created_at)
				SELECT ?::bigint, ?::text, 'message', ?::text, a.seq, '', conv.horizon, ?::bigint FROM added a, conv)
			SELECT a.id, a.seq, conv.horizon, false, ?::integer, ?::text, ?::bigint FROM added a, conv
			UNION ALL
			SELECT r.id, r.seq, 0, true, r.sender_is_bot, r.text, r.created_at FROM repeat r`,
			req.ConversationID, req.CorporateID, req.Sender,
			req.CorporateID, req.Sender, clientID,
			req.CorporateID,
			req.CorporateID, req.Sender, boolInt(req.SenderIsBot), clientID, req.Text, unix(now),
			idBefore, before, after, unix(now), unix(now), unix(now),
			req.CorporateID, req.Sender,
			req.CorporateID, s.instance, req.ConversationID, unix(now),
			boolInt(req.SenderIsBot), req.Text, unix(now),
		).Scan(&msg.ID, &msg.Seq, &horizon, &existed, &isBot, &msg.Text, &created)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return msg, false, imbee.ErrNoConversation()
		case err != nil && attempt < 3 && (retryable(err) || uniqueViolation(err)):
			continue
		case err != nil:
			return msg, false, internal("send message", err)
		}
		msg.SenderIsBot, msg.CreatedAt = isBot != 0, time.Unix(created, 0).UTC()
		if !existed {
			msg.Horizon = imbee.Horizon(horizon)
			s.announcer.kick()
		}
		return msg, existed, nil
	}
}

// scanPlus scans a row's columns beyond those its reader scans.
type scanPlus struct {
	row  interface{ Scan(...any) error }
	rest any
}

func (s scanPlus) Scan(dest ...any) error { return s.row.Scan(append(dest, s.rest)...) }

func scanMessage(row interface{ Scan(...any) error }) (imbee.Message, error) {
	var m imbee.Message
	var isBot int64
	var clientID sql.NullString
	var created int64
	err := row.Scan(&m.ID, &m.CorporateID, &m.Seq, &m.Sender, &isBot, &clientID, &m.Text, &created)
	m.SenderIsBot, m.ClientMsgID, m.CreatedAt = isBot != 0, clientID.String, time.Unix(created, 0).UTC()
	return m, err
}

// Messages returns a page of a conversation's messages for one of its
// members (CodeNotFound for anyone else), with the conversation's last seq
// and how far member has read. more says whether there are more messages
// beyond the page, in its direction.
func (s *Store) Messages(ctx context.Context, corporateID int64, conversationID, member string, p imbee.MessagePage) (msgs []imbee.Message, more bool, lastSeq, readSeq int64, err error) {
	var convID int64
	err = s.reads.QueryRowContext(ctx, `
		SELECT c.id, c.last_seq, m.read_seq FROM conversations c
		JOIN conversation_members m ON m.corporate_id = c.corporate_id AND m.conversation_id = c.id AND m.idsha = ?
		WHERE c.public_id = ? AND c.corporate_id = ?`, member, conversationID, corporateID).Scan(&convID, &lastSeq, &readSeq)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, 0, 0, imbee.ErrNoConversation()
	}
	if err != nil {
		return nil, false, 0, 0, internal("find conversation", err)
	}
	cols := `SELECT id, corporate_id, seq, sender, sender_is_bot, client_msg_id, text, created_at FROM messages WHERE corporate_id = ? AND conversation_id = ?`
	var rows *sql.Rows
	switch {
	case p.After != nil:
		rows, err = s.reads.QueryContext(ctx, cols+` AND seq > ? ORDER BY seq LIMIT ?`, corporateID, convID, *p.After, p.Limit+1)
	case p.Before != nil:
		rows, err = s.reads.QueryContext(ctx, cols+` AND seq < ? ORDER BY seq DESC LIMIT ?`, corporateID, convID, *p.Before, p.Limit+1)
	default:
		// Seqs have no gaps: the latest Limit are those after last - Limit.
		from := max(0, lastSeq-int64(p.Limit))
		more = from > 0
		rows, err = s.reads.QueryContext(ctx, cols+` AND seq > ? ORDER BY seq LIMIT ?`, corporateID, convID, from, p.Limit+1)
	}
	if err != nil {
		return nil, false, 0, 0, internal("list messages", err)
	}
	defer rows.Close()
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, false, 0, 0, internal("list messages", err)
		}
		m.ConversationID = conversationID
		msgs = append(msgs, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, 0, 0, internal("list messages", err)
	}
	if len(msgs) > p.Limit {
		msgs, more = msgs[:p.Limit], true
	}
	return msgs, more, lastSeq, readSeq, nil
}

// MarkRead records that member has read conversationID up to seq (clamped
// to its last message; a read mark never moves back) and returns the mark.
func (s *Store) MarkRead(ctx context.Context, corporateID int64, conversationID, member string, seq int64) (int64, error) {
	var readSeq int64
	err := s.inWrite(ctx, func(q querier) error {
		var horizon int64
		err := q.QueryRowContext(ctx, `
			UPDATE conversation_members SET read_seq = max_seq
			FROM (SELECT c.id AS conv, CASE WHEN ? < c.last_seq THEN ? ELSE c.last_seq END AS max_seq
			      FROM conversations c WHERE c.public_id = ? AND c.corporate_id = ?) AS target
			WHERE corporate_id = ? AND conversation_id = target.conv AND idsha = ? AND read_seq < max_seq
			RETURNING read_seq, `+horizonSQL, seq, seq, conversationID, corporateID, corporateID, member).Scan(&readSeq, &horizon)
		if err == nil {
			if err := s.notify(ctx, q, imbee.Event{Type: "read", CorporateID: corporateID, ConversationID: conversationID, Member: member, Seq: readSeq, Horizon: imbee.Horizon(horizon)}); err != nil {
				return internal("notify", err)
			}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return internal("mark read", err)
		}
		// Nothing moved: report the mark as it is, or that there is no
		// such conversation of this member.
		err = q.QueryRowContext(ctx, `
			SELECT m.read_seq FROM conversation_members m JOIN conversations c ON c.corporate_id = m.corporate_id AND c.id = m.conversation_id
			WHERE c.public_id = ? AND c.corporate_id = ? AND m.idsha = ?`, conversationID, corporateID, member).Scan(&readSeq)
		if errors.Is(err, sql.ErrNoRows) {
			return imbee.ErrNoConversation()
		}
		if err != nil {
			return internal("mark read", err)
		}
		return nil
	})
	return readSeq, err
}

// Chats lists member's conversations, most recent activity first, each with
// its members, last message and read mark.
func (s *Store) Chats(ctx context.Context, corporateID int64, member string, limit int) ([]imbee.ChatSummary, error) {
	rows, err := s.reads.QueryContext(ctx, `
		SELECT c.id, c.public_id, c.type, c.name, c.last_seq, me.read_seq,
			lm.id, lm.corporate_id, lm.seq, lm.sender, lm.sender_is_bot, lm.client_msg_id, lm.text, lm.created_at
		FROM conversation_members me`+s.dialect.indexedBy("conversation_members_idsha")+`
		JOIN conversations c ON c.corporate_id = me.corporate_id AND c.id = me.conversation_id
		LEFT JOIN messages lm ON lm.corporate_id = c.corporate_id AND lm.conversation_id = c.id AND lm.seq = c.last_seq
		WHERE me.corporate_id = ? AND me.idsha = ?
		ORDER BY coalesce(lm.created_at, c.created_at) DESC, c.id DESC
		LIMIT ?`, corporateID, member, limit)
	if err != nil {
		return nil, internal("list chats", err)
	}
	var out []imbee.ChatSummary
	var ids []int64
	for rows.Next() {
		var cs imbee.ChatSummary
		var convID int64
		var lm struct {
			id, corp, seq, isBot, created sql.NullInt64
			sender, clientID, text        sql.NullString
		}
		if err := rows.Scan(&convID, &cs.Conversation.PublicID, &cs.Conversation.Type, &cs.Conversation.Name, &cs.LastSeq, &cs.ReadSeq,
			&lm.id, &lm.corp, &lm.seq, &lm.sender, &lm.isBot, &lm.clientID, &lm.text, &lm.created); err != nil {
			rows.Close()
			return nil, internal("list chats", err)
		}
		cs.Conversation.ID, cs.Conversation.CorporateID = convID, corporateID
		if lm.id.Valid {
			cs.LastMessage = &imbee.Message{ID: lm.id.Int64, CorporateID: lm.corp.Int64, ConversationID: cs.Conversation.PublicID,
				Seq: lm.seq.Int64, Sender: lm.sender.String, SenderIsBot: lm.isBot.Int64 != 0, ClientMsgID: lm.clientID.String,
				Text: lm.text.String, CreatedAt: time.Unix(lm.created.Int64, 0).UTC()}
		}
		out = append(out, cs)
		ids = append(ids, convID)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, internal("list chats", err)
	}
	for i, id := range ids {
		members, err := s.members(ctx, corporateID, id)
		if err != nil {
			return nil, err
		}
		out[i].Conversation.Members = members
	}
	return out, nil
}

// members lists a conversation's members in order, creator first.
func (s *Store) members(ctx context.Context, corporateID, convID int64) ([]imbee.Member, error) {
	rows, err := s.reads.QueryContext(ctx, `
		SELECT idsha, is_admin, is_bot FROM conversation_members
		WHERE corporate_id = ? AND conversation_id = ? ORDER BY position`, corporateID, convID)
	if err != nil {
		return nil, internal("list members", err)
	}
	defer rows.Close()
	var out []imbee.Member
	for rows.Next() {
		var m imbee.Member
		if err := rows.Scan(&m.IDSha, &m.IsAdmin, &m.IsBot); err != nil {
			return nil, internal("list members", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// MessagesAfter returns conversationID's messages after seq, oldest first,
// at most limit, without a membership check: for a caller that has checked
// it (a socket of a member catching up). Each message carries the horizon
// of the read (see imbee.Horizon).
func (s *Store) MessagesAfter(ctx context.Context, corporateID int64, conversationID string, seq int64, limit int) ([]imbee.Message, error) {
	rows, err := s.reads.QueryContext(ctx, `
		SELECT m.id, m.corporate_id, m.seq, m.sender, m.sender_is_bot, m.client_msg_id, m.text, m.created_at, `+horizonSQL+`
		FROM messages m JOIN conversations c ON c.corporate_id = m.corporate_id AND c.id = m.conversation_id
		WHERE c.public_id = ? AND c.corporate_id = ? AND m.seq > ?
		ORDER BY m.seq LIMIT ?`, conversationID, corporateID, seq, limit)
	if err != nil {
		return nil, internal("list messages", err)
	}
	defer rows.Close()
	var out []imbee.Message
	for rows.Next() {
		var h int64
		m, err := scanMessage(scanPlus{rows, &h})
		if err != nil {
			return nil, internal("list messages", err)
		}
		m.ConversationID, m.Horizon = conversationID, imbee.Horizon(h)
		out = append(out, m)
	}
	return out, rows.Err()
}

// IsMember says whether idsha is a member of the corporate's conversation.
func (s *Store) IsMember(ctx context.Context, corporateID int64, conversationID, idsha string) (bool, error) {
	var one int
	err := s.reads.QueryRowContext(ctx, `
		SELECT 1 FROM conversation_members m JOIN conversations c ON c.corporate_id = m.corporate_id AND c.id = m.conversation_id
		WHERE c.public_id = ? AND c.corporate_id = ? AND m.idsha = ?`, conversationID, corporateID, idsha).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, internal("check member", err)
	}
	return true, nil
}

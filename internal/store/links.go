package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// IssueLink returns the (user, bot) pair's active link, creating the user
// and the link when needed, and queues one delivery per recipient in the
// same transaction. A repeat while the link is active returns it with
// Existing set and its own limits; the deliveries are queued again. It
// returns CodeNotFound (subject bot) for a bot not of this corporate,
// and CodeRateLimited when a recipient has had req.SendsPerHour deliveries
// from this corporate in the last hour (then nothing is created).
func (s *Store) IssueLink(ctx context.Context, req imbee.LinkRequest) (link imbee.Link, err error) {
	err = s.inWrite(ctx, func(q querier) error {
		now := s.now()
		var botID int64
		err := q.QueryRowContext(ctx, `SELECT id FROM bots WHERE corporate_id = ? AND idsha = ? AND revoked_at IS NULL`,
			req.CorporateID, req.BotIDSha).Scan(&botID)
		if errors.Is(err, sql.ErrNoRows) {
			return imbee.NotFound(imbee.SubjectBot, "{%s} does not name a bot of this corporate", imbee.SubjectBot)
		}
		if err != nil {
			return internal("find bot", err)
		}
		if err := s.checkSendLimit(ctx, q, req, now); err != nil {
			return err
		}
		user, _, existed, err := s.ensureUser(ctx, q, req.CorporateID, req.UniqueID)
		if err != nil {
			return err
		}
		link, err = s.currentLink(ctx, q, user, existed, botID, req, now)
		if err != nil {
			return err
		}
		link.UserIDSha, link.BotIDSha = user.IDSha, req.BotIDSha
		if len(req.Recipients) == 0 {
			return nil
		}
		args := make([]any, 0, 8*len(req.Recipients))
		for _, r := range req.Recipients {
			args = append(args, req.CorporateID, link.ID, string(r.Channel), r.Address, r.LimitKey(), unix(now), unix(now), unix(now))
		}
		if _, err := q.ExecContext(ctx, `
			INSERT INTO deliveries (corporate_id, link_id, channel, recipient, recipient_key, next_attempt_at, created_at, updated_at)
			VALUES `+placeholders(len(req.Recipients), 8), args...); err != nil {
			return internal("queue delivery", err)
		}
		return nil
	})
	return link, err
}

// checkSendLimit refuses a request that would send a recipient (however
// its address is spelled: Recipient.LimitKey) more than req.SendsPerHour
// links of this corporate within an hour. Run inside the request's
// transaction, it is exact: on SQLite the one writer runs such
// transactions one at a time; on PostgreSQL each first takes a lock on
// its (corporate, recipient) until it commits, so concurrent requests to
// one recipient count one after the other, each seeing the others'
// deliveries.
func (s *Store) checkSendLimit(ctx context.Context, q querier, req imbee.LinkRequest, now time.Time) error {
	if req.SendsPerHour <= 0 {
		return nil
	}
	if err := s.lockRecipients(ctx, q, req); err != nil {
		return err
	}
	since := now.Add(-time.Hour)
	for _, r := range req.Recipients {
		var n int
		var oldest sql.NullInt64
		err := q.QueryRowContext(ctx, `
			SELECT count(*), min(created_at) FROM deliveries
			WHERE corporate_id = ? AND recipient_key = ? AND created_at > ?`,
			req.CorporateID, r.LimitKey(), unix(since)).Scan(&n, &oldest)
		if err != nil {
			return internal("count deliveries", err)
		}
		if n >= req.SendsPerHour {
			wait := time.Unix(oldest.Int64, 0).Add(time.Hour).Sub(now)
			subject := imbee.SubjectMail
			if r.Channel == imbee.ChannelSMS {
				subject = imbee.SubjectPhone
			}
			return &imbee.Error{Code: imbee.CodeRateLimited, Field: subject, RetryAfter: max(wait, time.Second),
				Message: fmt.Sprintf("%s has been sent %d links in the last hour, the most allowed: retry later", r.Address, n)}
		}
	}
	return nil
}

// lockRecipients takes, where transactions write concurrently, a
// transaction lock per recipient of req: an advisory lock on a hash of
// (corporate, recipient key), which a collision only makes wait for an
// unrelated one. Taken in the hashes' order, two requests to the same two
// recipients cannot deadlock.
func (s *Store) lockRecipients(ctx context.Context, q querier, req imbee.LinkRequest) error {
	if !s.dialect.concurrentWriters {
		return nil
	}
	keys := make([]int32, 0, len(req.Recipients))
	for _, r := range req.Recipients {
		h := fnv.New32a()
		binary.Write(h, binary.BigEndian, req.CorporateID)
		h.Write([]byte(r.LimitKey()))
		keys = append(keys, int32(h.Sum32()))
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, err := q.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?, ?)`, lockRecipient, k); err != nil {
			return internal("lock recipient", err)
		}
	}
	return nil
}

// currentLink returns the pair's link if it is still active, or retires it
// and inserts a new one. The partial unique index links_current keeps one
// current link per pair even if two servers race here. A user made in this
// transaction (existed false) has no link to look for.
func (s *Store) currentLink(ctx context.Context, q querier, user imbee.User, existed bool, botID int64, req imbee.LinkRequest, now time.Time) (imbee.Link, error) {
	for range 2 {
		var keyed bool
		var l imbee.Link
		var nonce []byte
		err := sql.ErrNoRows
		if existed {
			l, nonce, err = scanLink(q.QueryRowContext(ctx, `
				SELECT id, corporate_id, token_nonce, max_uses, uses, date_limit, expires_at, revoked_at, token_keyed
				FROM links WHERE corporate_id = ? AND user_id = ? AND bot_id = ? AND current = 1`, req.CorporateID, user.ID, botID), &keyed)
		}
		switch {
		case err == nil && l.State(now) == imbee.LinkActive:
			l.Existing = true
			l.Token = s.linkToken(l.CorporateID, l.ID, nonce, keyed)
			return l, nil
		case err == nil:
			if _, err := q.ExecContext(ctx, `UPDATE links SET current = 0 WHERE corporate_id = ? AND id = ?`, req.CorporateID, l.ID); err != nil {
				return l, internal("retire link", err)
			}
		case !errors.Is(err, sql.ErrNoRows):
			return l, internal("read link", err)
		}
		nonce = secret.NewNonce()
		l = imbee.Link{
			CorporateID: req.CorporateID,
			MaxUses:     req.MaxUses,
			DateLimit:   req.DateLimit,
			ExpiresAt:   req.ExpiresAt,
		}
		err = q.QueryRowContext(ctx, `
			INSERT INTO links (corporate_id, user_id, bot_id, token_nonce, token_keyed, max_uses, date_limit, expires_at, created_at)
			VALUES (?, ?, ?, ?, 1, ?, ?, ?, ?)
			ON CONFLICT (corporate_id, user_id, bot_id) WHERE current = 1 DO NOTHING
			RETURNING id`,
			req.CorporateID, user.ID, botID, nonce, l.MaxUses, l.DateLimit, unix(l.ExpiresAt), unix(now)).Scan(&l.ID)
		if err == nil {
			l.Token = s.linkToken(l.CorporateID, l.ID, nonce, true)
			return l, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return l, internal("create link", err)
		}
		// Another server created the pair's link between our read and
		// insert: go round once more and return that one.
		existed = true
	}
	return imbee.Link{}, internal("create link", errors.New("the current link kept changing"))
}

// scanLink reads a link's columns in their order here, then extra.
func scanLink(row *sql.Row, extra ...any) (imbee.Link, []byte, error) {
	var l imbee.Link
	var nonce []byte
	var expires int64
	var revoked sql.NullInt64
	err := row.Scan(append([]any{&l.ID, &l.CorporateID, &nonce, &l.MaxUses, &l.Uses, &l.DateLimit, &expires, &revoked}, extra...)...)
	l.ExpiresAt = time.Unix(expires, 0)
	l.Revoked = revoked.Valid
	return l, nonce, err
}

// LinkByToken finds a link by its token, spending nothing. It returns
// CodeNotFound for an unknown token. A disabled corporate's links read as
// revoked.
func (s *Store) LinkByToken(ctx context.Context, token string) (imbee.LinkPage, error) {
	var p imbee.LinkPage
	var expires int64
	var revoked sql.NullInt64
	var nonce []byte
	from, where, args, check := s.linkByToken(token)
	err := s.reads.QueryRowContext(ctx, `
		SELECT l.id, l.corporate_id, l.max_uses, l.uses, l.date_limit, l.expires_at, coalesce(l.revoked_at, c.disabled_at), b.name, c.name, c.language, l.token_nonce
		FROM `+from+`
		JOIN bots b ON b.corporate_id = l.corporate_id AND b.id = l.bot_id
		JOIN corporates c ON c.id = l.corporate_id
		WHERE `+where, args...,
	).Scan(&p.Link.ID, &p.Link.CorporateID, &p.Link.MaxUses, &p.Link.Uses, &p.Link.DateLimit, &expires, &revoked, &p.BotName, &p.CorporateName, &p.CorporateLanguage, &nonce)
	if err == nil && !check(nonce) {
		err = sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		return p, imbee.Errorf(imbee.CodeNotFound, "no such link")
	}
	if err != nil {
		return p, internal("read link", err)
	}
	p.Link.ExpiresAt = time.Unix(expires, 0)
	p.Link.Revoked = revoked.Valid
	return p, nil
}

// SpendLink spends one use of the link and opens a web session on the
// user's 1:1 chat with the bot (the chat /chat/create gives for that pair).
// The use is taken by one conditional UPDATE, so N concurrent calls on a
// link with M uses left succeed min(N, M) times. When the link cannot be
// spent, state says why (and err is nil); an unknown token is CodeNotFound.
// The attempt (its method, address and agent) joins the link's audit trail
// in the same transaction, with its result.
func (s *Store) SpendLink(ctx context.Context, token string, a imbee.LinkAttempt) (sess imbee.Session, state imbee.LinkState, err error) {
	err = s.inWrite(ctx, func(q querier) error {
		now := s.now()
		a.At = now
		// The link and its parties in one read; the token is checked
		// before a use is taken (a forged keyed token must not spend one).
		from, where, args, check := s.linkByToken(token)
		var linkID, userID, botID, expires int64
		var nonce []byte
		user := imbee.Member{IsAdmin: true}
		bot := imbee.Member{IsBot: true}
		err := q.QueryRowContext(ctx, `
			SELECT l.id, l.corporate_id, l.token_nonce, l.user_id, l.bot_id, u.idsha, b.idsha, b.name, c.name
			FROM `+from+`
			JOIN users u ON u.corporate_id = l.corporate_id AND u.id = l.user_id
			JOIN bots b ON b.corporate_id = l.corporate_id AND b.id = l.bot_id
			JOIN corporates c ON c.id = l.corporate_id
			WHERE `+where, args...,
		).Scan(&linkID, &sess.CorporateID, &nonce, &userID, &botID, &user.IDSha, &bot.IDSha, &bot.Name, &sess.CorporateName)
		if errors.Is(err, sql.ErrNoRows) || err == nil && !check(nonce) {
			return imbee.Errorf(imbee.CodeNotFound, "no such link")
		}
		if err != nil {
			return internal("read link", err)
		}
		// One conditional UPDATE takes the use, so concurrent spends of the
		// last one cannot both win.
		err = q.QueryRowContext(ctx, `
			UPDATE links SET uses = uses + 1
			WHERE corporate_id = ? AND id = ?
			AND revoked_at IS NULL AND expires_at > ? AND uses < max_uses
			AND NOT EXISTS (SELECT 1 FROM corporates c WHERE c.id = links.corporate_id AND c.disabled_at IS NOT NULL)
			RETURNING expires_at`,
			sess.CorporateID, linkID, unix(now),
		).Scan(&expires)
		if errors.Is(err, sql.ErrNoRows) {
			l, _, err := scanLink(q.QueryRowContext(ctx, `
				SELECT l.id, l.corporate_id, l.token_nonce, l.max_uses, l.uses, l.date_limit, l.expires_at, coalesce(l.revoked_at, c.disabled_at)
				FROM links l JOIN corporates c ON c.id = l.corporate_id
				WHERE l.corporate_id = ? AND l.id = ?`, sess.CorporateID, linkID))
			if err != nil {
				return internal("read link", err)
			}
			state = l.State(now)
			a.CorporateID, a.LinkID, a.Result = l.CorporateID, l.ID, state.String()
			return s.recordAttempts(ctx, q, a)
		}
		if err != nil {
			return internal("spend link", err)
		}
		a.CorporateID, a.LinkID, a.Result = sess.CorporateID, linkID, "spent"
		if err := s.recordAttempts(ctx, q, a); err != nil {
			return err
		}
		// A link's chat exists from its first spend on: read it first.
		conv, err := s.chatByPair(ctx, q, sess.CorporateID, pairKey(user.IDSha, bot.IDSha))
		if errors.Is(err, sql.ErrNoRows) {
			conv, err = s.ensureChat(ctx, q, sess.CorporateID, user, bot)
		}
		if err != nil {
			return err
		}
		random := secret.NewRandomPart()
		sess.UserIDSha, sess.ConversationID, sess.BotName = user.IDSha, conv.PublicID, bot.Name
		sess.ExpiresAt = time.Unix(expires, 0)
		sess.LinkID, sess.UserID, sess.BotID = linkID, userID, botID
		err = q.QueryRowContext(ctx, `
			INSERT INTO sessions (corporate_id, link_id, user_id, conversation_id, token_hash, expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			sess.CorporateID, linkID, userID, conv.ID, secret.Hash(string(random)), expires, unix(now)).Scan(&sess.ID)
		if err != nil {
			return internal("create session", err)
		}
		sess.Token = s.keys.Keyed(secret.SessionToken, secret.Row{Corporate: sess.CorporateID, ID: sess.ID}, random)
		return nil
	})
	if err != nil || state != imbee.LinkActive {
		return imbee.Session{}, state, err
	}
	return sess, imbee.LinkActive, nil
}

// SessionByToken returns the live web session whose cookie is token. A
// session ends with its link's date_limit, when the link is revoked, or
// while its corporate is disabled;
// an ended or unknown session is CodeNotFound.
func (s *Store) SessionByToken(ctx context.Context, token string) (imbee.Session, error) {
	var sess imbee.Session
	var expires int64
	var hash []byte
	from, where, args, check := s.sessionByToken(token)
	err := s.reads.QueryRowContext(ctx, `
		SELECT s.id, s.corporate_id, s.link_id, s.user_id, l.bot_id, u.idsha, cv.public_id, b.name, c.name, c.language, s.expires_at, s.token_hash
		FROM `+from+`
		JOIN links l ON l.corporate_id = s.corporate_id AND l.id = s.link_id
		JOIN users u ON u.corporate_id = s.corporate_id AND u.id = s.user_id
		JOIN bots b ON b.corporate_id = s.corporate_id AND b.id = l.bot_id
		JOIN corporates c ON c.id = s.corporate_id
		JOIN conversations cv ON cv.corporate_id = s.corporate_id AND cv.id = s.conversation_id
		WHERE `+where+` AND s.expires_at > ? AND l.revoked_at IS NULL AND c.disabled_at IS NULL`,
		append(args, unix(s.now()))...,
	).Scan(&sess.ID, &sess.CorporateID, &sess.LinkID, &sess.UserID, &sess.BotID, &sess.UserIDSha, &sess.ConversationID, &sess.BotName, &sess.CorporateName, &sess.CorporateLanguage, &expires, &hash)
	if err == nil && !check(hash) {
		err = sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		return sess, imbee.Errorf(imbee.CodeNotFound, "no such session")
	}
	if err != nil {
		return sess, internal("read session", err)
	}
	sess.ExpiresAt = time.Unix(expires, 0)
	return sess, nil
}

// RevokeLink ends the link whose URL ends in token, and the web sessions it
// opened. With corporateID set, only that corporate's link is found. It
// returns the link as it is then, with Existing set when it had been revoked
// before, and CodeNotFound for an unknown token.
func (s *Store) RevokeLink(ctx context.Context, corporateID int64, token string) (imbee.Link, error) {
	var l imbee.Link
	err := s.inWrite(ctx, func(q querier) error {
		var err error
		l, err = s.linkOf(ctx, q, corporateID, token)
		if err != nil {
			return err
		}
		l.Existing = l.Revoked
		if l.Revoked {
			return nil
		}
		if _, err := q.ExecContext(ctx, `UPDATE links SET revoked_at = ? WHERE corporate_id = ? AND id = ?`, unix(s.now()), l.CorporateID, l.ID); err != nil {
			return internal("revoke link", err)
		}
		l.Revoked = true
		return s.revoke(ctx, q, l.CorporateID, imbee.RevokedLink, l.ID)
	})
	return l, err
}

// LinkStatus returns a corporate's link by its token, with its deliveries,
// oldest first. It returns CodeNotFound for a token of no link of corporateID.
func (s *Store) LinkStatus(ctx context.Context, corporateID int64, token string) (imbee.Link, []imbee.Delivery, error) {
	l, err := s.linkOf(ctx, s.reads, corporateID, token)
	if err != nil {
		return l, nil, err
	}
	ds, err := s.listDeliveries(ctx, `WHERE corporate_id = ? AND link_id = ? ORDER BY id`, l.CorporateID, l.ID)
	return l, ds, err
}

// linkOf reads a link by token, with its user's and bot's idsha. With
// corporateID 0 (the operator's CLI) the link may be of any corporate.
func (s *Store) linkOf(ctx context.Context, q querier, corporateID int64, token string) (imbee.Link, error) {
	var l imbee.Link
	var expires int64
	var revoked sql.NullInt64
	var nonce []byte
	token = strings.TrimSpace(token)
	from, where, args, check := s.linkByToken(token)
	err := q.QueryRowContext(ctx, `
		SELECT l.id, l.corporate_id, u.idsha, b.idsha, l.max_uses, l.uses, l.date_limit, l.expires_at, l.revoked_at, l.token_nonce
		FROM `+from+`
		JOIN users u ON u.corporate_id = l.corporate_id AND u.id = l.user_id
		JOIN bots b ON b.corporate_id = l.corporate_id AND b.id = l.bot_id
		WHERE `+where+` AND (? = 0 OR l.corporate_id = ?)`,
		append(args, corporateID, corporateID)...,
	).Scan(&l.ID, &l.CorporateID, &l.UserIDSha, &l.BotIDSha, &l.MaxUses, &l.Uses, &l.DateLimit, &expires, &revoked, &nonce)
	if err == nil && !check(nonce) {
		err = sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		return l, imbee.NotFound(imbee.SubjectLink, "no such link")
	}
	if err != nil {
		return l, internal("read link", err)
	}
	l.Token = token
	l.ExpiresAt = time.Unix(expires, 0)
	l.Revoked = revoked.Valid
	return l, nil
}

// RevokeUserLinks ends every link of the corporate's user (and the web
// sessions they opened), and says how many were still unrevoked. An unknown
// user is CodeNotFound.
func (s *Store) RevokeUserLinks(ctx context.Context, corporateID int64, uniqueID string) (int64, error) {
	var n int64
	err := s.inWrite(ctx, func(q querier) error {
		var userID int64
		err := q.QueryRowContext(ctx, `SELECT id FROM users WHERE corporate_id = ? AND unique_id = ?`, corporateID, uniqueID).Scan(&userID)
		if errors.Is(err, sql.ErrNoRows) {
			return imbee.NotFound(imbee.SubjectUser, "no such user")
		}
		if err != nil {
			return internal("find user", err)
		}
		res, err := q.ExecContext(ctx, `UPDATE links SET revoked_at = ? WHERE corporate_id = ? AND user_id = ? AND revoked_at IS NULL`, unix(s.now()), corporateID, userID)
		if err != nil {
			return internal("revoke links", err)
		}
		if n, _ = res.RowsAffected(); n == 0 {
			return nil // the sessions of links revoked before have ended already
		}
		return s.revoke(ctx, q, corporateID, imbee.RevokedUserLinks, userID)
	})
	return n, err
}

// PurgeLinkSessions deletes the link sessions past their end (the routes
// of older ones first), a batch at a time. An ended session's cookie is
// refused the same with or without its row.
func (s *Store) PurgeLinkSessions(ctx context.Context) (int64, error) {
	return s.purgeSessions(ctx, "sessions", "session_routes")
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// errBadPass is every failed sign-in: an unknown virtualUser, a wrong pass
// and a disabled corporate are told apart to no one.
func errBadPass() error { return imbee.Errorf(imbee.CodeAuth, "virtualUser or pass is not valid") }

// SignIn checks a user's virtualUser and pass and opens a web app session
// for life. The pass is found by the row it carries (an older one by the
// virtualUser's route), then derived from the user's nonce and compared in
// constant time; when no user is found one is derived from a fresh nonce,
// so every failure costs the same. The session keeps the nonce it was
// opened under: rotating the user's credentials ends it.
func (s *Store) SignIn(ctx context.Context, virtualUser, pass string, life time.Duration) (imbee.AppSession, error) {
	var sess imbee.AppSession
	var nonce []byte
	from, where, args, check := s.userByPass(virtualUser, pass)
	err := s.reads.QueryRowContext(ctx, `
		SELECT u.corporate_id, u.id, u.secret_nonce, c.name
		FROM `+from+`
		JOIN corporates c ON c.id = u.corporate_id
		WHERE `+where+` AND c.disabled_at IS NULL`, args...,
	).Scan(&sess.CorporateID, &sess.UserID, &nonce, &sess.CorporateName)
	found := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return sess, internal("sign in", err)
	}
	if !found {
		nonce = secret.NewNonce()
	}
	if ok := check(nonce); !ok || !found {
		return imbee.AppSession{}, errBadPass()
	}
	now := s.now()
	sess.UserIDSha, sess.ExpiresAt = virtualUser, now.Add(life)
	random := secret.NewRandomPart()
	err = s.inWrite(ctx, func(q querier) error {
		err := q.QueryRowContext(ctx, `
			INSERT INTO app_sessions (corporate_id, user_id, secret_nonce, token_hash, expires_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			sess.CorporateID, sess.UserID, nonce, secret.Hash(string(random)), unix(sess.ExpiresAt), unix(now)).Scan(&sess.ID)
		if err != nil {
			return internal("open app session", err)
		}
		return nil
	})
	if err != nil {
		return imbee.AppSession{}, err
	}
	sess.Token = s.keys.Keyed(secret.AppSession, secret.Row{Corporate: sess.CorporateID, ID: sess.ID}, random)
	return sess, nil
}

// AppSessionByToken returns the live web app session whose cookie is
// token: not expired, not signed out, its user's credentials not rotated
// since, its corporate not disabled. Any other is CodeNotFound.
func (s *Store) AppSessionByToken(ctx context.Context, token string) (imbee.AppSession, error) {
	var sess imbee.AppSession
	var expires int64
	var hash []byte
	from, where, args, check := s.appSessionByToken(token)
	err := s.reads.QueryRowContext(ctx, `
		SELECT a.id, a.corporate_id, a.user_id, u.idsha, c.name, c.language, a.expires_at, a.token_hash
		FROM `+from+`
		JOIN users u ON u.corporate_id = a.corporate_id AND u.id = a.user_id AND u.secret_nonce = a.secret_nonce
		JOIN corporates c ON c.id = a.corporate_id
		WHERE `+where+` AND a.expires_at > ? AND c.disabled_at IS NULL`,
		append(args, unix(s.now()))...,
	).Scan(&sess.ID, &sess.CorporateID, &sess.UserID, &sess.UserIDSha, &sess.CorporateName, &sess.CorporateLanguage, &expires, &hash)
	if err == nil && !check(hash) {
		err = sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		return sess, imbee.Errorf(imbee.CodeNotFound, "no such session")
	}
	if err != nil {
		return sess, internal("read app session", err)
	}
	sess.ExpiresAt = time.Unix(expires, 0)
	return sess, nil
}

// SignOut ends the web app session whose cookie is token, on every server
// (its sockets close); an unknown or ended one is nothing to do.
func (s *Store) SignOut(ctx context.Context, token string) error {
	return s.inWrite(ctx, func(q querier) error {
		var corporateID, id int64
		var err error
		if row, random, ok := s.keys.Unkey(secret.AppSession, token); ok {
			var hash []byte
			corporateID, id = row.Corporate, row.ID
			err = q.QueryRowContext(ctx, `SELECT token_hash FROM app_sessions WHERE corporate_id = ? AND id = ?`, corporateID, id).Scan(&hash)
			if err == nil && (hash == nil || !secret.Equal(secret.Hash(string(random)), hash)) {
				err = sql.ErrNoRows
			}
		} else {
			err = q.QueryRowContext(ctx, `DELETE FROM app_session_routes WHERE token_hash = ? RETURNING corporate_id, session_id`,
				secret.Hash(token)).Scan(&corporateID, &id)
		}
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return internal("sign out", err)
		}
		if _, err := q.ExecContext(ctx, `DELETE FROM app_sessions WHERE corporate_id = ? AND id = ?`, corporateID, id); err != nil {
			return internal("sign out", err)
		}
		return s.revoke(ctx, q, corporateID, imbee.RevokedAppSession, id)
	})
}

// MemberChat returns the corporate's conversation publicID with its
// members, bots named, when member is one of them; otherwise CodeNotFound.
func (s *Store) MemberChat(ctx context.Context, corporateID int64, publicID, member string) (imbee.Conversation, error) {
	conv := imbee.Conversation{CorporateID: corporateID, PublicID: publicID}
	err := s.reads.QueryRowContext(ctx, `
		SELECT c.id, c.type, c.name FROM conversations c
		JOIN conversation_members m ON m.corporate_id = c.corporate_id AND m.conversation_id = c.id
		WHERE c.corporate_id = ? AND c.public_id = ? AND m.idsha = ?`, corporateID, publicID, member,
	).Scan(&conv.ID, &conv.Type, &conv.Name)
	if errors.Is(err, sql.ErrNoRows) {
		return conv, imbee.Errorf(imbee.CodeNotFound, "no such chat")
	}
	if err != nil {
		return conv, internal("read chat", err)
	}
	rows, err := s.reads.QueryContext(ctx, `
		SELECT m.idsha, m.is_admin, m.is_bot, coalesce(b.name, '')
		FROM conversation_members m
		LEFT JOIN bots b ON b.corporate_id = m.corporate_id AND b.idsha = m.idsha
		WHERE m.corporate_id = ? AND m.conversation_id = ? ORDER BY m.position`, corporateID, conv.ID)
	if err != nil {
		return conv, internal("read chat members", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m imbee.Member
		if err := rows.Scan(&m.IDSha, &m.IsAdmin, &m.IsBot, &m.Name); err != nil {
			return conv, internal("read chat members", err)
		}
		conv.Members = append(conv.Members, m)
	}
	return conv, rows.Err()
}

// PurgeAppSessions deletes the web app sessions past their life (their
// routes first), a batch at a time.
func (s *Store) PurgeAppSessions(ctx context.Context) (int64, error) {
	return s.purgeSessions(ctx, "app_sessions", "app_session_routes")
}

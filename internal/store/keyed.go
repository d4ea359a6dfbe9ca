package store

import (
	"github.com/imbee/imbee/internal/secret"
)

// Secrets that carry their row (#16): an apikey, a link's token, a web
// chat session's and a web app session's cookie name their row sealed
// (secret.Keyed), so they are found by primary key, and their random part
// is then checked in constant time against what the row keeps: the nonce
// it is derived from (apikeys, link tokens, which repeats give again) or
// its hash (session cookies). The secrets handed out before migration
// 00017 are found as they were: by their hash, through users.apikey_hash
// or a routing table.

// apikeyOf is the apikey of a user row; legacy is whether the row keeps
// an older apikey's hash.
func (s *Store) apikeyOf(corporateID, userID int64, nonce []byte, legacy bool) string {
	if legacy {
		return s.keys.Derive(secret.APIKey, nonce)
	}
	return s.keys.Keyed(secret.APIKey, secret.Row{Corporate: corporateID, ID: userID}, s.keys.DeriveRandom(secret.APIKey, nonce))
}

// userByAPIKey is the join condition finding apikey's user u among the
// users of the corporate the statement calls corp (a column), with its
// arguments: by primary key for a keyed apikey, by hash for an older one.
// The statement must also read u.secret_nonce, for check to tell whether
// the row found is apikey's.
func (s *Store) userByAPIKey(corp, apikey string) (cond string, args []any, check func(nonce []byte) bool) {
	if row, random, ok := s.keys.Unkey(secret.APIKey, apikey); ok {
		return "u.corporate_id = " + corp + " AND u.corporate_id = ? AND u.id = ?", []any{row.Corporate, row.ID},
			func(nonce []byte) bool { return secret.Equal(random, s.keys.DeriveRandom(secret.APIKey, nonce)) }
	}
	return "u.corporate_id = " + corp + " AND u.apikey_hash = ?", []any{secret.Hash(apikey)},
		func([]byte) bool { return true }
}

// linkToken is the token of a link row; keyed is the row's token_keyed.
func (s *Store) linkToken(corporateID, linkID int64, nonce []byte, keyed bool) string {
	if !keyed {
		return s.keys.Derive(secret.LinkToken, nonce)
	}
	return s.keys.Keyed(secret.LinkToken, secret.Row{Corporate: corporateID, ID: linkID}, s.keys.DeriveRandom(secret.LinkToken, nonce))
}

// linkByToken is where a statement finds token's link l: its FROM and
// WHERE, with the WHERE's arguments. A keyed token names its row; an older
// one is found through link_routes r. The statement must also read
// l.token_nonce, for check to tell whether the row found is token's.
func (s *Store) linkByToken(token string) (from, where string, args []any, check func(nonce []byte) bool) {
	if row, random, ok := s.keys.Unkey(secret.LinkToken, token); ok {
		return "links l", "l.corporate_id = ? AND l.id = ? AND l.token_keyed = 1", []any{row.Corporate, row.ID},
			func(nonce []byte) bool { return secret.Equal(random, s.keys.DeriveRandom(secret.LinkToken, nonce)) }
	}
	return "link_routes r JOIN links l ON l.corporate_id = r.corporate_id AND l.id = r.link_id", "r.token_hash = ?",
		[]any{secret.Hash(token)}, func([]byte) bool { return true }
}

// sessionByToken is linkByToken for a web chat session's cookie: the
// statement must read s.token_hash (NULL for an older session, found by
// its route).
func (s *Store) sessionByToken(token string) (from, where string, args []any, check func(hash []byte) bool) {
	return s.cookieByToken(secret.SessionToken, "sessions s", "s", "session_routes", token)
}

// appSessionByToken is sessionByToken for a web app session's cookie, on
// app_sessions a.
func (s *Store) appSessionByToken(token string) (from, where string, args []any, check func(hash []byte) bool) {
	return s.cookieByToken(secret.AppSession, "app_sessions a", "a", "app_session_routes", token)
}

func (s *Store) cookieByToken(p secret.Purpose, table, alias, routes, token string) (from, where string, args []any, check func(hash []byte) bool) {
	if row, random, ok := s.keys.Unkey(p, token); ok {
		return table, alias + ".corporate_id = ? AND " + alias + ".id = ?", []any{row.Corporate, row.ID},
			func(hash []byte) bool { return hash != nil && secret.Equal(secret.Hash(string(random)), hash) }
	}
	return routes + " r JOIN " + table + " ON " + alias + ".corporate_id = r.corporate_id AND " + alias + ".id = r.session_id", "r.token_hash = ?",
		[]any{secret.Hash(token)}, func([]byte) bool { return true }
}

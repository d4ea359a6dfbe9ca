package store

import (
	"github.com/imbee/imbee/internal/secret"
)

// Secrets that carry their row (#16): a corporate's Authorization, a
// user's pass and apikey, a link's token, a web chat session's and a web
// app session's cookie name their row sealed (secret.Keyed), so they are
// found by primary key, and their random part is then checked in constant
// time against what the row keeps: the nonce it is derived from (the
// credentials, link tokens, which repeats give again) or its hash (session
// cookies).
//
// The secrets handed out before (migration 00017; 00019 for
// Authorizations and passes) are found as they were: by their hash,
// through users.apikey_hash or a routing table. A routing table is keyed by
// a hash alone (user_routes: by the public virtualUser) and gives the
// corporate_id and the row's id, and the tenant's row is then read with
// corporate_id in its WHERE, in the same statement. No routing row is
// written any more; a rotation deletes the older one.

// authCorporate is where a statement finds the corporate whose
// Authorization is auth: its FROM and WHERE, with the WHERE's arguments.
// A keyed Authorization names its corporate; an older one is found through
// corporate_routes r. Other tables join on corporates.id; a subquery in
// the SELECT list names the corporate as corp (with corpArgs), which for a
// keyed Authorization is a parameter, so that the subquery is planned for
// that corporate alone. The statement must also read corporates.auth_nonce,
// for check to tell whether the row found is auth's.
func (s *Store) authCorporate(auth string) (from, where string, args []any, corp string, corpArgs []any, check func(nonce []byte) bool) {
	if row, random, ok := s.keys.Unkey(secret.Auth, auth); ok && row.ID == row.Corporate {
		return "corporates", "corporates.id = ?", []any{row.Corporate}, "?", []any{row.Corporate},
			func(nonce []byte) bool { return secret.Equal(random, s.keys.DeriveRandom(secret.Auth, nonce)) }
	}
	return "corporate_routes r JOIN corporates ON corporates.id = r.corporate_id", "r.auth_hash = ?",
		[]any{secret.Hash(auth)}, "r.corporate_id", nil, func([]byte) bool { return true }
}

// userKeys is what a user row keeps for its secrets: the nonce both are
// derived from, and which of them are in their older form.
type userKeys struct {
	nonce        []byte
	legacyAPIKey bool // made before 00017: found by users.apikey_hash
	keyedPass    bool // made since 00019 (users.pass_keyed): signs in without a route
}

// newUserKeys are a new user's: both secrets keyed.
func newUserKeys() userKeys { return userKeys{nonce: secret.NewNonce(), keyedPass: true} }

// credentials are the pass and apikey of a user row.
func (s *Store) credentials(corporateID, userID int64, k userKeys) (pass, apikey string) {
	row := secret.Row{Corporate: corporateID, ID: userID}
	if k.keyedPass {
		pass = s.keys.Keyed(secret.Pass, row, s.keys.DeriveRandom(secret.Pass, k.nonce))
	} else {
		pass = s.keys.Derive(secret.Pass, k.nonce)
	}
	if k.legacyAPIKey {
		apikey = s.keys.Derive(secret.APIKey, k.nonce)
	} else {
		apikey = s.keys.Keyed(secret.APIKey, row, s.keys.DeriveRandom(secret.APIKey, k.nonce))
	}
	return pass, apikey
}

// userByPass is where the web app's sign-in finds the user u whose
// virtualUser and pass were typed: its FROM and WHERE, with their
// arguments. A keyed pass names its row; an older one's user is found
// through user_routes r. The statement must also read u.secret_nonce, for
// check to tell whether the row found is pass's.
func (s *Store) userByPass(virtualUser, pass string) (from, where string, args []any, check func(nonce []byte) bool) {
	if row, random, ok := s.keys.Unkey(secret.Pass, pass); ok {
		return "users u", "u.corporate_id = ? AND u.id = ? AND u.idsha = ? AND u.pass_keyed = 1", []any{row.Corporate, row.ID, virtualUser},
			func(nonce []byte) bool { return secret.Equal(random, s.keys.DeriveRandom(secret.Pass, nonce)) }
	}
	return "user_routes r JOIN users u ON u.corporate_id = r.corporate_id AND u.id = r.user_id", "r.idsha = ? AND u.pass_keyed = 0", []any{virtualUser},
		func(nonce []byte) bool {
			return secret.Equal(secret.Hash(pass), secret.Hash(s.keys.Derive(secret.Pass, nonce)))
		}
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

package store

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/testkit"
)

func TestKeyedSecretsMigration(t *testing.T) { testkit.ForEachBackend(t, testKeyedSecretsMigration) }

// testKeyedSecretsMigration: the apikey, link token and web session cookie
// written before migration 00017 (found by their hashes) keep working after
// it and repeats give them again unchanged, while what is made after it
// is keyed; rotating moves a user to a keyed apikey.
func testKeyedSecretsMigration(t *testing.T) {
	ctx := context.Background()
	dsn, keys := testkit.DSN(t), newKeyring(t)
	clock := testkit.NewClock()
	s, err := openAt(t, dsn, keys, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	c, creds, err := s.CreateCorporate(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	bot := mustBot(t, s, c.ID, "Helper")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// What the code before 00017 wrote: a user, its link with the bot and
	// a web session the link opened, each found by its secret's hash.
	migrateDownTo(t, dsn, 16)
	old := legacyRows(t, dsn, keys, c.ID, bot, clock.Now())

	if s, err = openAt(t, dsn, keys, clock.Now); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if _, u, err := s.AuthenticateUser(ctx, creds.Auth, old.apikey); err != nil || u.ID != old.userID {
		t.Errorf("the older apikey: AuthenticateUser = %d, %v; want user %d", u.ID, err, old.userID)
	}
	if u, existed, err := s.RegisterUser(ctx, c.ID, "old", nil); err != nil || !existed || u.APIKey != old.apikey || u.Pass != old.pass || u.IDSha != old.idsha {
		t.Errorf("repeat of the older user: %+v existed %v, %v; want its apikey %q and pass %q again", u, existed, err, old.apikey, old.pass)
	}
	if sess, err := s.SignIn(ctx, old.idsha, old.pass, time.Hour); err != nil || sess.UserID != old.userID {
		t.Errorf("the older pass signs in: %+v, %v", sess, err)
	}
	if _, u, found, err := s.KnownUser(ctx, creds.Auth, creds.CorporateToken, "old", nil); err != nil || !found || u.APIKey != old.apikey {
		t.Errorf("read-only repeat of the older user: %+v found %v, %v", u, found, err)
	}
	if sess, err := s.SessionByToken(ctx, old.session); err != nil || sess.LinkID != old.linkID {
		t.Errorf("the older web session: %+v, %v", sess, err)
	}
	if a, err := s.AppSessionByToken(ctx, old.app); err != nil || a.UserID != old.userID {
		t.Errorf("the older web app session: %+v, %v", a, err)
	}
	if err := s.SignOut(ctx, old.app); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppSessionByToken(ctx, old.app); imbee.ErrorCode(err) != imbee.CodeNotFound {
		t.Errorf("the older web app session after signing out: %v, want not found", err)
	}
	if l := mustIssue(t, s, linkRequest(c, "old", bot, 5, old.expires)); l.Token != old.token || !l.Existing {
		t.Errorf("repeat of the older link gave %q (existing %v), want %q", l.Token, l.Existing, old.token)
	}
	if p, err := s.LinkByToken(ctx, old.token); err != nil || p.Link.ID != old.linkID {
		t.Errorf("the older link: %+v, %v", p.Link, err)
	}
	sess, state, err := s.SpendLink(ctx, old.token, testAttempt)
	if err != nil || state != imbee.LinkActive {
		t.Fatalf("spending the older link: %v, %v", state, err)
	}
	if _, _, ok := keys.Unkey(secret.SessionToken, sess.Token); !ok {
		t.Errorf("a session opened after the upgrade has cookie %q, want a keyed one", sess.Token)
	}
	if got, err := s.SessionByToken(ctx, sess.Token); err != nil || got.ID != sess.ID {
		t.Errorf("the new session: %+v, %v", got, err)
	}

	// New secrets are keyed; rotating leaves the older apikey behind.
	ana := mustUser(t, s, c.ID, "ana")
	if row, _, ok := keys.Unkey(secret.APIKey, ana.APIKey); !ok || row != (secret.Row{Corporate: c.ID, ID: ana.ID}) {
		t.Errorf("a new user's apikey %q names %v, want keyed with its row", ana.APIKey, row)
	}
	if row, _, ok := keys.Unkey(secret.LinkToken, mustIssue(t, s, linkRequest(c, "ana", bot, 1, old.expires)).Token); !ok || row.Corporate != c.ID {
		t.Errorf("a new link's token names %v, want keyed", row)
	}
	rotated, err := s.RotateUser(ctx, c.ID, "old")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := keys.Unkey(secret.APIKey, rotated.APIKey); !ok {
		t.Errorf("a rotated apikey %q is not keyed", rotated.APIKey)
	}
	if _, _, err := s.AuthenticateUser(ctx, creds.Auth, old.apikey); imbee.ErrorCode(err) != imbee.CodeCorporateKey {
		t.Errorf("the older apikey after rotation: %v, want code %d", err, imbee.CodeCorporateKey)
	}
	if _, u, err := s.AuthenticateUser(ctx, creds.Auth, rotated.APIKey); err != nil || u.ID != old.userID {
		t.Errorf("the rotated apikey: %d, %v", u.ID, err)
	}
	if _, err := s.SignIn(ctx, old.idsha, old.pass, time.Hour); imbee.ErrorCode(err) != imbee.CodeAuth {
		t.Errorf("the older pass after rotation: %v, want code %d", err, imbee.CodeAuth)
	}
	if row, _, ok := keys.Unkey(secret.Pass, rotated.Pass); !ok || row.ID != old.userID {
		t.Errorf("a rotated pass %q is not keyed", rotated.Pass)
	}
	if sess, err := s.SignIn(ctx, old.idsha, rotated.Pass, time.Hour); err != nil || sess.UserID != old.userID {
		t.Errorf("the rotated pass signs in: %+v, %v", sess, err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM user_routes`); n != 0 {
		t.Errorf("%d user routes left after the only older user rotated", n)
	}
	if n := countRows(t, s, `SELECT count(*) FROM users WHERE apikey_hash IS NOT NULL`); n != 0 {
		t.Errorf("%d users keep an apikey hash after the only older one rotated", n)
	}

	// Past its end the older session is purged with its route.
	clock.Advance(old.expires.Sub(clock.Now()))
	if n, err := s.PurgeLinkSessions(ctx); err != nil || n != 2 {
		t.Errorf("purged %d link sessions (%v), want the older one and the one its link opened later", n, err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM session_routes`); n != 0 {
		t.Errorf("%d session routes left after the purge", n)
	}
}

type legacy struct {
	userID, linkID                           int64
	idsha, apikey, pass, token, session, app string
	expires                                  time.Time
}

// legacyRows writes, in the schema before 00017, what the code before it
// did for a user "old", its link with bot and a web session of that link.
func legacyRows(t *testing.T, dsn string, keys *secret.Keyring, corporateID int64, bot imbee.Bot, now time.Time) legacy {
	t.Helper()
	ctx := context.Background()
	backend, loc, _ := ParseDSN(dsn)
	driver, conn, bind := SQLiteDriver, SQLiteDSN(loc, "busy_timeout=10000", "foreign_keys=1"), func(q string) string { return q }
	if backend == "postgres" {
		driver, conn, bind = "pgx", loc, rebind
	}
	db, err := sql.Open(driver, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := func(query string, args ...any) int64 {
		t.Helper()
		var id int64
		if err := db.QueryRowContext(ctx, bind(query), args...).Scan(&id); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return id
	}
	exec := func(query string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, bind(query), args...); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
	var botID int64
	if err := db.QueryRowContext(ctx, bind(`SELECT id FROM bots WHERE corporate_id = ? AND idsha = ?`), corporateID, bot.IDSha).Scan(&botID); err != nil {
		t.Fatal(err)
	}
	at := now.Unix()
	l := legacy{idsha: secret.NewID(), expires: now.Add(48 * time.Hour)}
	nonce := secret.NewNonce()
	l.apikey, l.pass = keys.Derive(secret.APIKey, nonce), keys.Derive(secret.Pass, nonce)
	l.userID = id(`INSERT INTO users (corporate_id, unique_id, idsha, secret_nonce, apikey_hash, created_at) VALUES (?, 'old', ?, ?, ?, ?) RETURNING id`,
		corporateID, l.idsha, nonce, secret.Hash(l.apikey), at)
	exec(`INSERT INTO user_routes (idsha, corporate_id, user_id) VALUES (?, ?, ?)`, l.idsha, corporateID, l.userID)

	linkNonce := secret.NewNonce()
	l.token = keys.Derive(secret.LinkToken, linkNonce)
	l.linkID = id(`INSERT INTO links (corporate_id, user_id, bot_id, token_nonce, max_uses, uses, date_limit, expires_at, created_at)
		VALUES (?, ?, ?, ?, 5, 1, ?, ?, ?) RETURNING id`,
		corporateID, l.userID, botID, linkNonce, l.expires.Add(-time.Second).Format(time.DateOnly), l.expires.Unix(), at)
	exec(`INSERT INTO link_routes (token_hash, corporate_id, link_id) VALUES (?, ?, ?)`, secret.Hash(l.token), corporateID, l.linkID)

	pair := min(l.idsha, bot.IDSha) + ":" + max(l.idsha, bot.IDSha)
	convID := id(`INSERT INTO conversations (corporate_id, public_id, type, pair_key, created_at) VALUES (?, ?, 'chat', ?, ?) RETURNING id`,
		corporateID, secret.NewID(), pair, at)
	exec(`INSERT INTO conversation_members (corporate_id, conversation_id, position, idsha, is_bot, is_admin) VALUES (?, ?, 0, ?, 0, 1), (?, ?, 1, ?, 1, 0)`,
		corporateID, convID, l.idsha, corporateID, convID, bot.IDSha)
	l.session = secret.NewRandom(secret.SessionToken)
	sessID := id(`INSERT INTO sessions (corporate_id, link_id, user_id, conversation_id, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
		corporateID, l.linkID, l.userID, convID, l.expires.Unix(), at)
	exec(`INSERT INTO session_routes (token_hash, corporate_id, session_id) VALUES (?, ?, ?)`, secret.Hash(l.session), corporateID, sessID)

	l.app = secret.NewRandom(secret.AppSession)
	appID := id(`INSERT INTO app_sessions (corporate_id, user_id, secret_nonce, expires_at, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		corporateID, l.userID, nonce, l.expires.Unix(), at)
	exec(`INSERT INTO app_session_routes (token_hash, corporate_id, session_id) VALUES (?, ?, ?)`, secret.Hash(l.app), corporateID, appID)
	return l
}

func TestForgedKeyedSecrets(t *testing.T) { testkit.ForEachBackend(t, testForgedKeyedSecrets) }

// testForgedKeyedSecrets is a hostile tenant with real secrets of its own:
// a keyed secret whose random part is altered, or which is presented to
// another corporate, finds nothing, and a forged link token spends no use.
func testForgedKeyedSecrets(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c, creds, err := s.CreateCorporate(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	_, otherCreds, err := s.CreateCorporate(ctx, "Globex", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	bot := mustBot(t, s, c.ID, "Helper")
	ana := mustUser(t, s, c.ID, "ana")
	link := mustIssue(t, s, linkRequest(c, "ana", bot, 3, clock.Now().Add(24*time.Hour)))
	sess, _, err := s.SpendLink(ctx, link.Token, testAttempt)
	if err != nil {
		t.Fatal(err)
	}

	if _, _, err := s.AuthenticateUser(ctx, creds.Auth, forgeSecret(ana.APIKey)); imbee.ErrorCode(err) != imbee.CodeCorporateKey {
		t.Errorf("altered apikey: %v, want code %d", err, imbee.CodeCorporateKey)
	}
	if _, _, _, _, err := s.KnownChat(ctx, creds.Auth, forgeSecret(ana.APIKey), bot.IDSha); imbee.ErrorCode(err) != imbee.CodeCorporateKey {
		t.Errorf("altered apikey (chat read): %v, want code %d", err, imbee.CodeCorporateKey)
	}
	if _, _, err := s.AuthenticateUser(ctx, otherCreds.Auth, ana.APIKey); imbee.ErrorCode(err) != imbee.CodeCorporateKey {
		t.Errorf("apikey of Acme with Globex's Authorization: %v, want code %d", err, imbee.CodeCorporateKey)
	}
	if _, err := s.LinkByToken(ctx, forgeSecret(link.Token)); imbee.ErrorCode(err) != imbee.CodeNotFound {
		t.Errorf("altered link token: %v, want not found", err)
	}
	for range 3 {
		if _, _, err := s.SpendLink(ctx, forgeSecret(link.Token), testAttempt); imbee.ErrorCode(err) != imbee.CodeNotFound {
			t.Errorf("spending an altered link token: %v, want not found", err)
		}
	}
	if _, _, err := s.LinkStatus(ctx, c.ID, forgeSecret(link.Token)); imbee.ErrorCode(err) != imbee.CodeNotFound {
		t.Errorf("status of an altered link token: %v, want not found", err)
	}
	if p, err := s.LinkByToken(ctx, link.Token); err != nil || p.Link.Uses != 1 {
		t.Errorf("the real link after forged spends: %+v, %v; want 1 use taken", p.Link, err)
	}
	if _, err := s.SessionByToken(ctx, forgeSecret(sess.Token)); imbee.ErrorCode(err) != imbee.CodeNotFound {
		t.Errorf("altered session cookie: %v, want not found", err)
	}
	// A secret of one kind is not one of another, though both name rows.
	if _, err := s.SessionByToken(ctx, "imbs_"+link.Token[len("imbl_"):]); imbee.ErrorCode(err) != imbee.CodeNotFound {
		t.Errorf("a link token as a session cookie: %v, want not found", err)
	}
	if _, err := s.SessionByToken(ctx, sess.Token); err != nil {
		t.Errorf("the real session: %v", err)
	}
	app, err := s.SignIn(ctx, ana.IDSha, ana.Pass, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppSessionByToken(ctx, forgeSecret(app.Token)); imbee.ErrorCode(err) != imbee.CodeNotFound {
		t.Errorf("altered app cookie: %v, want not found", err)
	}
	if err := s.SignOut(ctx, forgeSecret(app.Token)); err != nil {
		t.Errorf("signing out with an altered app cookie: %v, want nothing done", err)
	}
	if _, err := s.AppSessionByToken(ctx, app.Token); err != nil {
		t.Errorf("the real app session after a forged sign-out: %v", err)
	}
	if err := s.SignOut(ctx, app.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppSessionByToken(ctx, app.Token); imbee.ErrorCode(err) != imbee.CodeNotFound {
		t.Errorf("the app session after signing out: %v, want not found", err)
	}
	if _, u, err := s.AuthenticateUser(ctx, creds.Auth, ana.APIKey); err != nil || u.ID != ana.ID {
		t.Errorf("the real apikey: %d, %v", u.ID, err)
	}
}

func TestKeyedAuthorization(t *testing.T) { testkit.ForEachBackend(t, testKeyedAuthorization) }

// testKeyedAuthorization: a corporate's Authorization carries its id and
// needs no routing row; one made before (found by its hash through
// corporate_routes) keeps working in every read that checks credentials,
// until a rotation moves the corporate to a keyed one; an altered or
// another installation's Authorization finds nothing. Below migration
// 00019 keyed corporates get placeholder routes, gone again on the way up,
// and keyed passes are kept aside: they sign in and repeat unchanged after.
func testKeyedAuthorization(t *testing.T) {
	ctx := context.Background()
	dsn, keys := testkit.DSN(t), newKeyring(t)
	s, err := openAt(t, dsn, keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	acme, creds, err := s.CreateCorporate(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	if row, _, ok := keys.Unkey(secret.Auth, creds.Auth); !ok || row != (secret.Row{Corporate: acme.ID, ID: acme.ID}) {
		t.Errorf("Authorization %q names %v, want keyed with corporate %d", creds.Auth, row, acme.ID)
	}
	if n := countRows(t, s, `SELECT count(*) FROM corporate_routes`); n != 0 {
		t.Errorf("%d routing rows for a keyed corporate", n)
	}

	// An older corporate: its Authorization derived from its nonce, and
	// found by the hash in its routing row.
	old, oldCreds, err := s.CreateCorporate(ctx, "Old", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	nonce := secret.NewNonce()
	oldAuth := keys.Derive(secret.Auth, nonce)
	if err := s.inWrite(ctx, func(q querier) error {
		if _, err := q.ExecContext(ctx, `UPDATE corporates SET auth_nonce = ? WHERE id = ?`, nonce, old.ID); err != nil {
			return err
		}
		_, err := q.ExecContext(ctx, `INSERT INTO corporate_routes (auth_hash, corporate_id) VALUES (?, ?)`, secret.Hash(oldAuth), old.ID)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ana := mustUser(t, s, old.ID, "ana")
	bot := mustBot(t, s, old.ID, "Helper")
	for _, tc := range []struct {
		name     string
		auth     string
		corp     imbee.Corporate
		token    string
		wantCode imbee.Code
	}{
		{"keyed", creds.Auth, acme, creds.CorporateToken, 0},
		{"older", oldAuth, old, oldCreds.CorporateToken, 0},
		{"keyed, altered", forgeSecret(creds.Auth), acme, creds.CorporateToken, imbee.CodeAuth},
		{"older corporate's keyed form from before it was made older", oldCreds.Auth, old, oldCreds.CorporateToken, imbee.CodeAuth},
		{"another installation's", newKeyring(t).Keyed(secret.Auth, secret.Row{Corporate: acme.ID, ID: acme.ID}, keys.DeriveRandom(secret.Auth, secret.NewNonce())), acme, creds.CorporateToken, imbee.CodeAuth},
	} {
		c, err := s.Authenticate(ctx, tc.auth, tc.token)
		if imbee.ErrorCode(err) != tc.wantCode || tc.wantCode == 0 && c.ID != tc.corp.ID {
			t.Errorf("%s: Authenticate = corporate %d, %v; want code %d", tc.name, c.ID, err, tc.wantCode)
		}
		if tc.corp.ID != old.ID {
			continue
		}
		_, u, err := s.AuthenticateUser(ctx, tc.auth, ana.APIKey)
		if imbee.ErrorCode(err) != tc.wantCode || tc.wantCode == 0 && u.ID != ana.ID {
			t.Errorf("%s: AuthenticateUser = user %d, %v; want code %d", tc.name, u.ID, err, tc.wantCode)
		}
		_, u, found, err := s.KnownUser(ctx, tc.auth, tc.token, "ana", nil)
		if imbee.ErrorCode(err) != tc.wantCode || tc.wantCode == 0 && (!found || u.ID != ana.ID) {
			t.Errorf("%s: KnownUser = user %d found %v, %v; want code %d", tc.name, u.ID, found, err, tc.wantCode)
		}
		_, _, _, _, err = s.KnownChat(ctx, tc.auth, ana.APIKey, bot.IDSha)
		if imbee.ErrorCode(err) != tc.wantCode {
			t.Errorf("%s: KnownChat: %v; want code %d", tc.name, err, tc.wantCode)
		}
	}

	rotated, err := s.RotateCorporate(ctx, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, oldAuth, rotated.CorporateToken); imbee.ErrorCode(err) != imbee.CodeAuth {
		t.Errorf("the older Authorization after a rotation: %v, want code %d", err, imbee.CodeAuth)
	}
	if c, err := s.Authenticate(ctx, rotated.Auth, rotated.CorporateToken); err != nil || c.ID != old.ID {
		t.Errorf("the rotated Authorization: corporate %d, %v", c.ID, err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM corporate_routes`); n != 0 {
		t.Errorf("%d routing rows left after the older corporate rotated", n)
	}

	// Below 00019 and up again.
	bea := mustUser(t, s, acme.ID, "bea")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	migrateDownTo(t, dsn, 18)
	s2, err := openAt(t, dsn, keys, nil)
	if err != nil {
		t.Fatalf("up again: %v", err)
	}
	if n := countRows(t, s2, `SELECT count(*) FROM corporate_routes`); n != 0 {
		t.Errorf("%d placeholder routes left after coming up again", n)
	}
	if c, err := s2.Authenticate(ctx, creds.Auth, creds.CorporateToken); err != nil || c.ID != acme.ID {
		t.Errorf("a keyed Authorization after going down and up: corporate %d, %v", c.ID, err)
	}
	if sess, err := s2.SignIn(ctx, bea.IDSha, bea.Pass, time.Hour); err != nil || sess.UserID != bea.ID {
		t.Errorf("a keyed pass after going down and up: %+v, %v", sess, err)
	}
	if u, _, err := s2.RegisterUser(ctx, acme.ID, "bea", nil); err != nil || u.Pass != bea.Pass {
		t.Errorf("a repeat after going down and up gives pass %q, want %q", u.Pass, bea.Pass)
	}
}

// forgeSecret alters a secret's last meaningful character.
func forgeSecret(s string) string {
	last := s[len(s)-2] // not the last character: its low bits are padding
	return s[:len(s)-2] + string(map[bool]byte{true: 'B', false: 'A'}[last == 'A']) + s[len(s)-1:]
}

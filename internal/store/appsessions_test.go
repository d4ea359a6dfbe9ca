package store

import (
	"context"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

// TestSignIn: every way a user is made (one by one, in bulk, by a link)
// routes its virtualUser, so its pass signs in; a session lives for its
// life and no longer; users of two corporates never sign in as each
// other; a session's token is stored only as a hash.
func TestSignIn(t *testing.T) { testkit.ForEachBackend(t, testSignIn) }

func testSignIn(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "Acme")
	other := mustCorporate(t, s, "Globex")
	bot, err := s.CreateBot(ctx, c.ID, "Helper")
	if err != nil {
		t.Fatal(err)
	}

	one, _, err := s.RegisterUser(ctx, c.ID, "ana", nil)
	if err != nil {
		t.Fatal(err)
	}
	regs, err := s.RegisterUsers(ctx, c.ID, specs("bea", "cal", "ana"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.IssueLink(ctx, imbee.LinkRequest{CorporateID: c.ID, UniqueID: "dan", BotIDSha: bot.IDSha, MaxUses: 1,
		DateLimit: clock.Now().Format(time.DateOnly), ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	dan, _, err := s.RegisterUser(ctx, c.ID, "dan", nil) // the link made dan; this is the repeat
	if err != nil {
		t.Fatal(err)
	}
	globex := mustUser(t, s, other.ID, "ana")
	users := []imbee.User{one, regs[0].User, regs[1].User, dan, globex}
	for _, u := range users {
		sess, err := s.SignIn(ctx, u.IDSha, u.Pass, time.Hour)
		if err != nil {
			t.Fatalf("%s signs in: %v", u.UniqueID, err)
		}
		got, err := s.AppSessionByToken(ctx, sess.Token)
		if err != nil || got.UserID != u.ID || got.CorporateID != u.CorporateID || got.UserIDSha != u.IDSha {
			t.Fatalf("%s's session reads as %+v (%v)", u.UniqueID, got, err)
		}
	}
	if n := countRows(t, s, `SELECT count(*) FROM user_routes`); n != 0 {
		t.Errorf("%d user routes, want none: every pass carries its row", n)
	}
	if _, err := s.SignIn(ctx, dan.IDSha, one.Pass, time.Hour); imbee.ErrorCode(err) != imbee.CodeAuth {
		t.Errorf("dan's virtualUser with ana's pass: %v, want code %d", err, imbee.CodeAuth)
	}
	if _, err := s.SignIn(ctx, one.IDSha, forgeSecret(one.Pass), time.Hour); imbee.ErrorCode(err) != imbee.CodeAuth {
		t.Errorf("an altered pass: %v, want code %d", err, imbee.CodeAuth)
	}
	_, err = s.SignIn(ctx, one.IDSha, globex.Pass, time.Hour)
	wantCode(t, err, imbee.CodeAuth, "ana of Acme with the pass of ana of Globex")

	sess, err := s.SignIn(ctx, one.IDSha, one.Pass, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM app_sessions WHERE token_hash = ?`, []byte(sess.Token)); n != 0 {
		t.Error("a session token is stored in plaintext")
	}
	clock.Advance(time.Hour)
	_, err = s.AppSessionByToken(ctx, sess.Token)
	wantCode(t, err, imbee.CodeNotFound, "a session past its life")
	live, err := s.SignIn(ctx, one.IDSha, one.Pass, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	before := countRows(t, s, `SELECT count(*) FROM app_sessions`)
	if n, err := s.PurgeAppSessions(ctx); err != nil || n == 0 {
		t.Errorf("purge of ended app sessions: %d (%v), want the expired ones", n, err)
	}
	if got := countRows(t, s, `SELECT count(*) FROM app_sessions`); got >= before {
		t.Errorf("app sessions: %d before the purge, %d after", before, got)
	}
	if n := countRows(t, s, `SELECT count(*) FROM app_sessions WHERE expires_at <= ?`, clock.Now().Unix()); n != 0 {
		t.Errorf("%d expired app sessions left after the purge", n)
	}
	if _, err := s.AppSessionByToken(ctx, live.Token); err != nil {
		t.Errorf("the purge ended a live session: %v", err)
	}
	if err := s.SignOut(ctx, sess.Token); err != nil {
		t.Errorf("signing out of an expired session: %v", err)
	}
	if err := s.SignOut(ctx, "imbw_unknown"); err != nil {
		t.Errorf("signing out of an unknown session: %v", err)
	}
}

// TestUserRoutesMigration: migration 00014 routes the users made before
// it, so their passes sign in after the upgrade.
func TestUserRoutesMigration(t *testing.T) { testkit.ForEachBackend(t, testUserRoutesMigration) }

func testUserRoutesMigration(t *testing.T) {
	ctx := context.Background()
	dsn, keys := testkit.DSN(t), newKeyring(t)
	s, err := Open(ctx, dsn, keys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := mustCorporate(t, s, "Acme")
	ana := mustUser(t, s, c.ID, "ana")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Back to the schema before 00014, then up again as an upgrade would.
	migrateDownTo(t, dsn, 13)
	s, err = openAt(t, dsn, keys, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignIn(ctx, ana.IDSha, ana.Pass, time.Hour); err != nil {
		t.Errorf("a user made before the upgrade signs in: %v", err)
	}
}

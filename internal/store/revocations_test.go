package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

// TestRevocationsLog: every way of ending access logs what it ended in its
// own transaction, in order; messages and their reads carry the horizon
// they saw; a disabled corporate's credentials, links and sessions stop.
func TestRevocationsLog(t *testing.T) { testkit.ForEachBackend(t, testRevocationsLog) }

func testRevocationsLog(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, nil)
	c, creds, err := s.CreateCorporate(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	bot := mustBot(t, s, c.ID, "Bot")
	start, err := s.RevocationsHorizon(ctx)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(who string) imbee.Link {
		t.Helper()
		l, err := s.IssueLink(ctx, imbee.LinkRequest{CorporateID: c.ID, UniqueID: who, BotIDSha: bot.IDSha, MaxUses: 5,
			DateLimit: "2099-01-01", ExpiresAt: time.Now().AddDate(1, 0, 0)})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l1 := issue("ana")
	sess, _, err := s.SpendLink(ctx, l1.Token, imbee.LinkAttempt{})
	if err != nil {
		t.Fatal(err)
	}
	if sess.LinkID != l1.ID || sess.BotID != bot.ID || sess.UserID == 0 || sess.ID == 0 {
		t.Errorf("session %+v lacks what grants its socket (link %d, bot %d)", sess, l1.ID, bot.ID)
	}
	m, _, err := s.SendMessage(ctx, imbee.MessageRequest{CorporateID: c.ID, ConversationID: sess.ConversationID, Sender: sess.UserIDSha, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Horizon != start {
		t.Errorf("a message's horizon %d, want the log's %d", m.Horizon, start)
	}

	if _, err := s.RevokeLink(ctx, c.ID, l1.Token); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeLink(ctx, c.ID, l1.Token); err != nil { // revoked already: nothing more ends
		t.Fatal(err)
	}
	issue("bea")
	if _, err := s.RevokeUserLinks(ctx, c.ID, "bea"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeUserLinks(ctx, c.ID, "bea"); err != nil { // none left
		t.Fatal(err)
	}
	u, err := s.RotateUser(ctx, c.ID, "ana")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateCorporate(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeBot(ctx, c.ID, bot.IDSha); err != nil {
		t.Fatal(err)
	}
	if co, err := s.SetCorporateDisabled(ctx, c.ID, true); err != nil || !co.Disabled {
		t.Fatal(co, err)
	}
	beaID := lookupUserID(t, s, c.ID, "bea")
	want := []imbee.Revocation{
		{CorporateID: c.ID, Kind: imbee.RevokedLink, Subject: l1.ID},
		{CorporateID: c.ID, Kind: imbee.RevokedUserLinks, Subject: beaID},
		{CorporateID: c.ID, Kind: imbee.RevokedUserKeys, Subject: u.ID},
		{CorporateID: c.ID, Kind: imbee.RevokedCorporateKeys},
		{CorporateID: c.ID, Kind: imbee.RevokedBot, Subject: bot.ID},
		{CorporateID: c.ID, Kind: imbee.RevokedCorporate},
	}
	var got []imbee.Revocation
	for h := start; ; {
		rs, next, err := s.Revocations(ctx, h, 2) // in pages, as a server reads it
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rs...)
		if len(rs) == 0 {
			if now, _ := s.RevocationsHorizon(ctx); next != now {
				t.Errorf("read up to horizon %d, the log's is %d", next, now)
			}
			break
		}
		h = next
	}
	if len(got) != len(want) {
		t.Fatalf("logged %+v, want %+v", got, want)
	}
	for i := range want {
		want[i].ID = got[i].ID
		if got[i] != want[i] || i > 0 && got[i].ID <= got[i-1].ID {
			t.Errorf("revocation %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// A read of the conversation shows the horizon past all of them.
	ms, err := s.MessagesAfter(ctx, c.ID, sess.ConversationID, 0, 10)
	if err != nil || len(ms) != 1 || ms[0].Horizon != imbee.Horizon(got[len(got)-1].ID+1) {
		t.Errorf("MessagesAfter: %+v, %v", ms, err)
	}

	// Disabled: no credential, link or session works; enabled, they do.
	creds, _ = s.RotateCorporate(ctx, c.ID)
	l2 := issue2(t, s, c.ID, "carla")
	var e *imbee.Error
	if _, err := s.Authenticate(ctx, creds.Auth, creds.CorporateToken); !errors.As(err, &e) || e.Code != imbee.CodeAuth {
		t.Errorf("a disabled corporate's credentials: %v, want code 2", err)
	}
	if p, err := s.LinkByToken(ctx, l2.Token); err != nil || !p.Link.Revoked {
		t.Errorf("a disabled corporate's link: %+v %v, want revoked", p.Link, err)
	}
	if _, st, err := s.SpendLink(ctx, l2.Token, imbee.LinkAttempt{}); err != nil || st != imbee.LinkRevoked {
		t.Errorf("spending a disabled corporate's link: %v %v", st, err)
	}
	if _, err := s.SetCorporateDisabled(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, creds.Auth, creds.CorporateToken); err != nil {
		t.Errorf("enabled again: %v", err)
	}
	if _, st, err := s.SpendLink(ctx, l2.Token, imbee.LinkAttempt{}); err != nil || st != imbee.LinkActive {
		t.Errorf("enabled again, the link: %v %v", st, err)
	}
	if _, err := s.SetCorporateDisabled(ctx, 999, true); !errors.As(err, &e) || e.Code != imbee.CodeNotFound {
		t.Errorf("an unknown corporate: %v", err)
	}

	if n, err := s.PurgeRevocations(ctx, time.Now().Add(time.Hour)); err != nil || n < int64(len(want)) {
		t.Errorf("purge: %d, %v", n, err)
	}
	// Purged ids are never handed out again: a server that read up to them
	// must not skip the next revocation.
	if _, err := s.RotateCorporate(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	last := got[len(got)-1].ID
	if rs, _, err := s.Revocations(ctx, imbee.Horizon(last+1), 10); err != nil || len(rs) == 0 || rs[0].ID <= last {
		t.Errorf("after a purge, the next revocation: %+v %v (the last was %d)", rs, err, last)
	}
}

// issue2 issues a link while the corporate is disabled: /token/new is
// refused by the credential check before the store, so the store allows it.
func issue2(t *testing.T, s *Store, corporateID int64, who string) imbee.Link {
	t.Helper()
	bot := mustBot(t, s, corporateID, "Other bot")
	l, err := s.IssueLink(context.Background(), imbee.LinkRequest{CorporateID: corporateID, UniqueID: who, BotIDSha: bot.IDSha, MaxUses: 5,
		DateLimit: "2099-01-01", ExpiresAt: time.Now().AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func lookupUserID(t *testing.T, s *Store, corporateID int64, uniqueID string) int64 {
	t.Helper()
	var id int64
	if err := s.reads.QueryRowContext(context.Background(), `SELECT id FROM users WHERE corporate_id = ? AND unique_id = ?`, corporateID, uniqueID).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

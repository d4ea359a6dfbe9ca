package store

import (
	"context"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

func TestTenantKeysMigration(t *testing.T) { testkit.ForEachBackend(t, testTenantKeysMigration) }

// testTenantKeysMigration: migration 00013 re-keys a populated database,
// down and up again, and keeps every row and every credential, token and
// id handed out before it working: a corporate's Authorization, a user's
// apikey, a link's token, a web session's cookie, a link's audit trail
// (which takes its link's corporate), a chat's messages.
func testTenantKeysMigration(t *testing.T) {
	ctx := context.Background()
	dsn, keys := testkit.DSN(t), newKeyring(t)
	clock := testkit.NewClock()
	s, err := openAt(t, dsn, keys, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	type tenant struct {
		c     imbee.Corporate
		creds imbee.CorporateCredentials
		user  imbee.User
		link  imbee.Link
		sess  imbee.Session
		msg   imbee.Message
	}
	var tenants []tenant
	for _, name := range []string{"Acme", "Globex"} {
		var tn tenant
		if tn.c, tn.creds, err = s.CreateCorporate(ctx, name, "UTC"); err != nil {
			t.Fatal(err)
		}
		bot := mustBot(t, s, tn.c.ID, "Helper")
		if tn.user, _, err = s.RegisterUser(ctx, tn.c.ID, "ana", &imbee.Device{Platform: "ios", DeviceName: "phone"}); err != nil {
			t.Fatal(err)
		}
		tn.link = mustIssue(t, s, linkRequest(tn.c, "ana", bot, 5, clock.Now().Add(24*time.Hour),
			imbee.Recipient{Channel: imbee.ChannelMail, Address: "ana@example.com"}))
		if tn.sess, _, err = s.SpendLink(ctx, tn.link.Token, testAttempt); err != nil {
			t.Fatal(err)
		}
		if tn.msg, _, err = s.SendMessage(ctx, imbee.MessageRequest{CorporateID: tn.c.ID, ConversationID: tn.sess.ConversationID,
			Sender: tn.user.IDSha, Text: "hello from " + name}); err != nil {
			t.Fatal(err)
		}
		tenants = append(tenants, tn)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	migrateDownTo(t, dsn, 12)
	if s, err = openAt(t, dsn, keys, clock.Now); err != nil {
		t.Fatalf("up again: %v", err)
	}
	for _, tn := range tenants {
		if c, err := s.Authenticate(ctx, tn.creds.Auth, tn.creds.CorporateToken); err != nil || c.ID != tn.c.ID {
			t.Errorf("%s: Authenticate = %d, %v", tn.c.Name, c.ID, err)
		}
		if _, u, err := s.AuthenticateUser(ctx, tn.creds.Auth, tn.user.APIKey); err != nil || u.ID != tn.user.ID {
			t.Errorf("%s: AuthenticateUser = %d, %v; want user %d", tn.c.Name, u.ID, err, tn.user.ID)
		}
		if p, err := s.LinkByToken(ctx, tn.link.Token); err != nil || p.Link.ID != tn.link.ID || p.Link.CorporateID != tn.c.ID || p.Link.Uses != 1 {
			t.Errorf("%s: LinkByToken = %+v, %v", tn.c.Name, p.Link, err)
		}
		if sess, err := s.SessionByToken(ctx, tn.sess.Token); err != nil || sess.ID != tn.sess.ID || sess.CorporateID != tn.c.ID {
			t.Errorf("%s: SessionByToken = %+v, %v", tn.c.Name, sess, err)
		}
		if as, err := s.LinkAttempts(ctx, tn.c.ID, tn.link.ID); err != nil || len(as) != 1 || as[0].Result != "spent" {
			t.Errorf("%s: link attempts = %+v, %v; want the spend", tn.c.Name, as, err)
		}
		msgs, _, _, _, err := s.Messages(ctx, tn.c.ID, tn.sess.ConversationID, tn.user.IDSha, imbee.MessagePage{Limit: 10})
		if err != nil || len(msgs) != 1 || msgs[0].ID != tn.msg.ID || msgs[0].Text != tn.msg.Text {
			t.Errorf("%s: messages = %+v, %v", tn.c.Name, msgs, err)
		}
		// New rows take new ids after the ones kept.
		l2 := mustIssue(t, s, linkRequest(tn.c, "bob", mustBot(t, s, tn.c.ID, "Other"), 1, clock.Now().Add(time.Hour)))
		if l2.ID <= tenants[len(tenants)-1].link.ID {
			t.Errorf("%s: a new link's id %d, want one after the kept ones", tn.c.Name, l2.ID)
		}
	}
}

func TestTenantKeysRefuseCrossTenantRows(t *testing.T) {
	testkit.ForEachBackend(t, testTenantKeysRefuseCrossTenantRows)
}

// testTenantKeysRefuseCrossTenantRows: a row of one corporate cannot name
// another corporate's row, whatever a statement gets wrong: the foreign
// keys lead with corporate_id. (The routing tables have none on
// PostgreSQL: a distributed engine spreads them by hash, apart from the
// rows they name.)
func testTenantKeysRefuseCrossTenantRows(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	a, b := mustCorporate(t, s, "A"), mustCorporate(t, s, "B")
	link := mustIssue(t, s, linkRequest(a, "ana", mustBot(t, s, a.ID, "bot"), 1, clock.Now().Add(time.Hour)))
	for what, query := range map[string]string{
		"a delivery of B for A's link": `INSERT INTO deliveries (corporate_id, link_id, channel, recipient, next_attempt_at, created_at, updated_at) VALUES (?, ?, 'mail', 'x@example.com', 0, 0, 0)`,
		"an attempt of B on A's link":  `INSERT INTO link_attempts (corporate_id, link_id, at_us, method, result, client_hash, agent) VALUES (?, ?, 0, 'GET', 'viewed', '', '')`,
	} {
		err := s.inWrite(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, query, b.ID, link.ID)
			return err
		})
		if err == nil {
			t.Errorf("%s: inserted", what)
		}
	}
}

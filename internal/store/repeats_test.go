package store

import (
	"context"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

func TestKnownUser(t *testing.T) { testkit.ForEachBackend(t, testKnownUser) }

// testKnownUser checks the read-only repeat of user/new: the same
// credential verdicts as Authenticate, the stored secrets, and a miss
// whenever a write is due.
func testKnownUser(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	s := mustOpen(t, func() time.Time { return now })
	c, creds, err := s.CreateCorporate(ctx, "Acme", "")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := s.CreateCorporate(ctx, "Globex", "")
	if err != nil {
		t.Fatal(err)
	}
	dev := &imbee.Device{Platform: "ios", DeviceName: "phone"}
	u, _, err := s.RegisterUser(ctx, c.ID, "ana", dev)
	if err != nil {
		t.Fatal(err)
	}

	gotCorp, got, found, err := s.KnownUser(ctx, creds.Auth, creds.CorporateToken, "ana", dev)
	if err != nil || !found {
		t.Fatalf("repeat: found %v, err %v", found, err)
	}
	if gotCorp.ID != c.ID || gotCorp.Name != "Acme" {
		t.Errorf("corporate = %+v, want Acme (%d)", gotCorp, c.ID)
	}
	if got.ID != u.ID || got.IDSha != u.IDSha || got.Pass != u.Pass || got.APIKey != u.APIKey || got.UniqueID != "ana" {
		t.Errorf("repeat = %+v, want %+v", got, u)
	}

	// Misses that need the write path, with the credentials checked.
	misses := map[string]*imbee.Device{
		"unknown user": nil,
		"new device":   {Platform: "android"},
	}
	for what, d := range misses {
		id := "ana"
		if d == nil {
			id = "bea"
		}
		gotCorp, _, found, err := s.KnownUser(ctx, creds.Auth, creds.CorporateToken, id, d)
		if err != nil || found || gotCorp.ID != c.ID {
			t.Errorf("%s: corporate %d, found %v, err %v; want corporate %d, not found", what, gotCorp.ID, found, err, c.ID)
		}
	}
	// A device seen over an hour ago needs its last_seen written.
	now = now.Add(deviceSeenEvery)
	if _, _, found, err := s.KnownUser(ctx, creds.Auth, creds.CorporateToken, "ana", dev); err != nil || found {
		t.Errorf("stale device: found %v, err %v; want a miss", found, err)
	}
	// Without device fields the user alone is enough.
	if _, _, found, err := s.KnownUser(ctx, creds.Auth, creds.CorporateToken, "ana", nil); err != nil || !found {
		t.Errorf("no device: found %v, err %v", found, err)
	}

	_, _, _, err = s.KnownUser(ctx, "", creds.CorporateToken, "ana", nil)
	wantCode(t, err, imbee.CodeAuth, "missing Authorization")
	_, _, _, err = s.KnownUser(ctx, "imba_nope", creds.CorporateToken, "ana", nil)
	wantCode(t, err, imbee.CodeAuth, "unknown Authorization")
	_, _, _, err = s.KnownUser(ctx, creds.Auth, "", "ana", nil)
	wantCode(t, err, imbee.CodeCorporateKey, "missing token")
	gotCorp, got, _, err = s.KnownUser(ctx, creds.Auth, other.CorporateToken, "ana", nil)
	wantCode(t, err, imbee.CodeCorporateKey, "another corporate's token")
	if gotCorp.ID != 0 || got.APIKey != "" {
		t.Errorf("refused call leaked %+v, %+v", gotCorp, got)
	}
	// Another corporate's credentials never find this corporate's user.
	if _, _, found, err := s.KnownUser(ctx, other.Auth, other.CorporateToken, "ana", nil); err != nil || found {
		t.Errorf("other corporate: found %v, err %v; want a miss", found, err)
	}
}

func TestKnownChat(t *testing.T) { testkit.ForEachBackend(t, testKnownChat) }

// testKnownChat checks the read-only repeat of a 1:1 chat/create from
// either side, and AuthenticateUser's verdicts.
func testKnownChat(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, nil)
	c, creds, err := s.CreateCorporate(ctx, "Acme", "")
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := s.CreateCorporate(ctx, "Globex", "")
	if err != nil {
		t.Fatal(err)
	}
	a := mustUser(t, s, c.ID, "ana")
	b := mustUser(t, s, c.ID, "bea")
	bot := mustBot(t, s, c.ID, "Helper")

	// No chat yet: the credentials are checked, nothing is found.
	gotCorp, gotUser, _, found, err := s.KnownChat(ctx, creds.Auth, a.APIKey, b.IDSha)
	if err != nil || found || gotCorp.ID != c.ID || gotUser.IDSha != a.IDSha {
		t.Fatalf("before: corporate %d, user %q, found %v, err %v", gotCorp.ID, gotUser.IDSha, found, err)
	}

	chat, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: a.IDSha, Type: imbee.ConversationChat, Contacts: []string{b.IDSha}})
	if err != nil {
		t.Fatal(err)
	}
	withBot, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: b.IDSha, Type: imbee.ConversationChat, Contacts: []string{bot.IDSha}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		apikey  string
		contact string
		want    imbee.Conversation
	}{
		{"creator", a.APIKey, b.IDSha, chat},
		{"other side", b.APIKey, a.IDSha, chat},
		{"with a bot", b.APIKey, bot.IDSha, withBot},
	}
	for _, tc := range cases {
		_, _, got, found, err := s.KnownChat(ctx, creds.Auth, tc.apikey, tc.contact)
		if err != nil || !found {
			t.Errorf("%s: found %v, err %v", tc.name, found, err)
			continue
		}
		if got.ID != tc.want.ID || got.PublicID != tc.want.PublicID || !got.Existing || got.Type != imbee.ConversationChat {
			t.Errorf("%s: got %+v, want %s", tc.name, got, tc.want.PublicID)
		}
		if len(got.Members) != 2 || got.Members[0].IDSha != tc.want.Members[0].IDSha || !got.Members[0].IsAdmin || got.Members[1].IsAdmin {
			t.Errorf("%s: members %+v, want creator %s first and sole admin", tc.name, got.Members, tc.want.Members[0].IDSha)
		}
	}
	if _, _, got, _, _ := s.KnownChat(ctx, creds.Auth, b.APIKey, bot.IDSha); len(got.Members) == 2 && !got.Members[1].IsBot {
		t.Errorf("bot member not marked as a bot: %+v", got.Members)
	}

	// Pairs without a chat, and oneself, are misses.
	for what, contact := range map[string]string{"no chat": bot.IDSha, "oneself": a.IDSha, "unknown": "nobody"} {
		if _, _, _, found, err := s.KnownChat(ctx, creds.Auth, a.APIKey, contact); err != nil || found {
			t.Errorf("%s: found %v, err %v; want a miss", what, found, err)
		}
	}

	_, _, _, _, err = s.KnownChat(ctx, "", a.APIKey, b.IDSha)
	wantCode(t, err, imbee.CodeAuth, "missing Authorization")
	_, _, _, _, err = s.KnownChat(ctx, "imba_nope", a.APIKey, b.IDSha)
	wantCode(t, err, imbee.CodeAuth, "unknown Authorization")
	_, _, _, _, err = s.KnownChat(ctx, creds.Auth, "", b.IDSha)
	wantCode(t, err, imbee.CodeCorporateKey, "missing apikey")
	_, _, _, _, err = s.KnownChat(ctx, creds.Auth, a.Pass, b.IDSha)
	wantCode(t, err, imbee.CodeCorporateKey, "pass used as apikey")
	_, _, got, found, err := s.KnownChat(ctx, other.Auth, a.APIKey, b.IDSha)
	wantCode(t, err, imbee.CodeCorporateKey, "apikey under another corporate's Authorization")
	if found || got.PublicID != "" {
		t.Errorf("refused call found %+v", got)
	}
}

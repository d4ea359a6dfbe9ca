package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

func TestSendLimit(t *testing.T) { testkit.ForEachBackend(t, testSendLimit) }

// testSendLimit: a corporate sends at most SendsPerHour links an hour to one
// address; the refusal creates nothing and says when to come back.
func testSendLimit(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "Acme")
	other := mustCorporate(t, s, "Globex")
	bot := mustBot(t, s, c.ID, "Helper")
	otherBot := mustBot(t, s, other.ID, "Helper")
	mail := imbee.Recipient{Channel: imbee.ChannelMail, Address: "busy@example.com"}
	req := func(corp imbee.Corporate, b imbee.Bot, user string, to ...imbee.Recipient) imbee.LinkRequest {
		r := linkRequest(corp, user, b, 3, clock.Now().Add(24*time.Hour), to...)
		r.SendsPerHour = 2
		return r
	}
	mustIssue(t, s, req(c, bot, "u1", mail))
	clock.Advance(10 * time.Minute)
	mustIssue(t, s, req(c, bot, "u2", mail))
	clock.Advance(time.Minute)

	_, err := s.IssueLink(ctx, req(c, bot, "u3", imbee.Recipient{Channel: imbee.ChannelSMS, Address: "+34600111222"}, mail))
	wantCode(t, err, imbee.CodeRateLimited, "third link to one address within an hour")
	var e *imbee.Error
	errors.As(err, &e)
	if e == nil || e.Field != imbee.SubjectMail || e.RetryAfter != 49*time.Minute {
		t.Errorf("refusal = %+v, want field mail and Retry-After 49m (the first send leaves the hour then)", e)
	}
	if _, existed, err := s.RegisterUser(ctx, c.ID, "u3", nil); err != nil || existed {
		t.Errorf("the refused request created its user: existed %v, err %v", existed, err)
	}
	ds, err := s.Deliveries(ctx, "", 100)
	if err != nil || len(ds) != 2 {
		t.Errorf("deliveries after the refusal = %d, %v; want 2", len(ds), err)
	}

	// Another corporate, another address, and the same address an hour
	// after the first send all go through.
	mustIssue(t, s, req(other, otherBot, "u1", mail))
	mustIssue(t, s, req(c, bot, "u4", imbee.Recipient{Channel: imbee.ChannelMail, Address: "calm@example.com"}))
	clock.Advance(49 * time.Minute)
	mustIssue(t, s, req(c, bot, "u5", mail))
	// No limit: no refusal.
	r := req(c, bot, "u6", mail)
	r.SendsPerHour = 0
	mustIssue(t, s, r)
}

func TestLinkStatus(t *testing.T) { testkit.ForEachBackend(t, testLinkStatus) }

// testLinkStatus: a link's status and ledger are its corporate's only;
// revoking is scoped the same way and says whether it was revoked before.
func testLinkStatus(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "Acme")
	other := mustCorporate(t, s, "Globex")
	bot := mustBot(t, s, c.ID, "Helper")
	l := mustIssue(t, s, linkRequest(c, "ana", bot, 3, clock.Now().Add(24*time.Hour),
		imbee.Recipient{Channel: imbee.ChannelMail, Address: "ana@example.com"},
		imbee.Recipient{Channel: imbee.ChannelSMS, Address: "+34600111222"}))
	clock.Advance(time.Minute)
	ds, err := s.ClaimDeliveries(ctx, 10, 10, time.Minute)
	if err != nil || len(ds) != 2 {
		t.Fatalf("claim: %d, %v", len(ds), err)
	}
	if ds[0].Language != "en" || ds[0].SenderName != "" {
		t.Errorf("claimed delivery language %q sender %q, want the corporate's defaults", ds[0].Language, ds[0].SenderName)
	}
	if err := s.MarkSent(ctx, []imbee.SentJob{{CorporateID: ds[0].CorporateID, ID: ds[0].ID, ProviderID: "prov-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkFailed(ctx, ds[1].CorporateID, ds[1].ID, "503", "refused by the provider: HTTP 503", clock.Now().Add(time.Minute), false); err != nil {
		t.Fatal(err)
	}

	got, ledger, err := s.LinkStatus(ctx, c.ID, l.Token)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != l.ID || got.UserIDSha != l.UserIDSha || got.BotIDSha != bot.IDSha || got.MaxUses != 3 || got.Token != l.Token || got.Revoked {
		t.Errorf("status link = %+v, want %+v", got, l)
	}
	if len(ledger) != 2 {
		t.Fatalf("ledger has %d rows, want 2", len(ledger))
	}
	byChannel := map[imbee.Channel]imbee.Delivery{}
	for _, d := range ledger {
		byChannel[d.Recipient.Channel] = d
	}
	if d := byChannel[imbee.ChannelMail]; d.Status != imbee.DeliverySent || d.ProviderID != "prov-1" || d.Attempts != 1 {
		t.Errorf("mail row = %+v", d)
	}
	if d := byChannel[imbee.ChannelSMS]; d.Status != imbee.DeliveryFailed || d.LastError != "503" || d.LastReason != "refused by the provider: HTTP 503" || !d.NextAttemptAt.Equal(clock.Now().Add(time.Minute)) {
		t.Errorf("sms row = %+v", d)
	}

	_, _, err = s.LinkStatus(ctx, other.ID, l.Token)
	wantCode(t, err, imbee.CodeNotFound, "another corporate's link status")
	_, err = s.RevokeLink(ctx, other.ID, l.Token)
	wantCode(t, err, imbee.CodeNotFound, "another corporate revoking")
	if got, _, _ := s.LinkStatus(ctx, c.ID, l.Token); got.Revoked {
		t.Fatal("a refused revoke revoked the link")
	}
	r, err := s.RevokeLink(ctx, c.ID, l.Token)
	if err != nil || !r.Revoked || r.Existing {
		t.Errorf("revoke = %+v, %v", r, err)
	}
	if got, _, _ := s.LinkStatus(ctx, c.ID, l.Token); !got.Revoked || got.State(clock.Now()) != imbee.LinkRevoked {
		t.Errorf("after revoke: %+v", got)
	}
}

func TestRetryDeliveries(t *testing.T) { testkit.ForEachBackend(t, testRetryDeliveries) }

// testRetryDeliveries: dead deliveries are queued again with a fresh set of
// attempts; others are left alone.
func testRetryDeliveries(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "Acme")
	bot := mustBot(t, s, c.ID, "Helper")
	for _, u := range []string{"a", "b", "c"} {
		mustIssue(t, s, linkRequest(c, u, bot, 3, clock.Now().Add(24*time.Hour), imbee.Recipient{Channel: imbee.ChannelMail, Address: u + "@example.com"}))
	}
	ds, err := s.ClaimDeliveries(ctx, 10, 10, time.Minute)
	if err != nil || len(ds) != 3 {
		t.Fatalf("claim: %d, %v", len(ds), err)
	}
	for _, d := range ds[:2] {
		if err := s.MarkFailed(ctx, d.CorporateID, d.ID, "550 no such user", "address refused by the mail server: 550", clock.Now(), true); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.MarkSent(ctx, []imbee.SentJob{{CorporateID: ds[2].CorporateID, ID: ds[2].ID, ProviderID: "ok"}}); err != nil {
		t.Fatal(err)
	}

	n, err := s.RetryDeliveries(ctx, []int64{ds[0].ID, ds[2].ID, 999})
	if err != nil || n != 1 {
		t.Errorf("retry by id = %d, %v; want 1 (only the dead one)", n, err)
	}
	queued, err := s.Deliveries(ctx, imbee.DeliveryQueued, 10)
	if err != nil || len(queued) != 1 || queued[0].ID != ds[0].ID || queued[0].Attempts != 0 {
		t.Errorf("queued = %+v, %v; want delivery %d with 0 attempts", queued, err, ds[0].ID)
	}
	if n, err := s.RetryDeliveries(ctx, nil); err != nil || n != 1 {
		t.Errorf("retry all = %d, %v; want the other dead one", n, err)
	}
	if dead, _ := s.Deliveries(ctx, imbee.DeliveryDead, 10); len(dead) != 0 {
		t.Errorf("%d still dead", len(dead))
	}
	if again, err := s.ClaimDeliveries(ctx, 10, 10, time.Minute); err != nil || len(again) != 2 {
		t.Errorf("claim after retry = %d, %v; want both", len(again), err)
	}
}

func TestUpdateCorporate(t *testing.T) { testkit.ForEachBackend(t, testUpdateCorporate) }

func testUpdateCorporate(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, nil)
	c := mustCorporate(t, s, "Acme")
	es, sender := "es", "Acme Support"
	got, err := s.UpdateCorporate(ctx, c.ID, imbee.CorporateSettings{Language: &es, SenderName: &sender})
	if err != nil || got.Language != "es" || got.SenderName != sender || got.Name != "Acme" || got.TimeZone != "Europe/Madrid" {
		t.Errorf("update = %+v, %v", got, err)
	}
	name := "Acme Corp"
	if got, err = s.UpdateCorporate(ctx, c.ID, imbee.CorporateSettings{Name: &name}); err != nil || got.Name != name || got.Language != "es" {
		t.Errorf("name only = %+v, %v; other settings must stay", got, err)
	}
	list, err := s.ListCorporates(ctx)
	if err != nil || len(list) != 1 || list[0].Language != "es" || list[0].SenderName != sender {
		t.Errorf("list = %+v, %v", list, err)
	}
	// The settings' rule is the domain's (CorporateSettings.Check): the
	// store stores what it is given.
	_, err = s.UpdateCorporate(ctx, 999, imbee.CorporateSettings{Name: &name})
	wantCode(t, err, imbee.CodeNotFound, "unknown corporate")
}

// TestMarkSentBatch: one call records the sends of several corporates'
// deliveries, each with its own provider id, and leaves the rest alone; one
// call records several corporates' webhook events, and a batch larger than
// one statement takes is recorded whole.
func TestMarkSentBatch(t *testing.T) { testkit.ForEachBackend(t, testMarkSentBatch) }

func testMarkSentBatch(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	for _, name := range []string{"Acme", "Other"} {
		c := mustCorporate(t, s, name)
		bot := mustBot(t, s, c.ID, "Helper")
		if _, err := s.SetBotWebhook(ctx, c.ID, bot.IDSha, "https://example.com/hook"); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"a", "b", "c"} {
			l := mustIssue(t, s, linkRequest(c, u, bot, 3, clock.Now().Add(24*time.Hour), imbee.Recipient{Channel: imbee.ChannelMail, Address: u + "@example.com"}))
			conv, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: l.UserIDSha, Type: imbee.ConversationChat, Contacts: []string{bot.IDSha}})
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.SendMessage(ctx, imbee.MessageRequest{CorporateID: c.ID, ConversationID: conv.PublicID, Sender: l.UserIDSha, Text: "hi"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	ds, err := s.ClaimDeliveries(ctx, 10, 10, time.Minute)
	if err != nil || len(ds) != 6 {
		t.Fatalf("claim deliveries: %d, %v", len(ds), err)
	}
	var want []imbee.SentJob
	for _, d := range ds[:5] {
		want = append(want, imbee.SentJob{CorporateID: d.CorporateID, ID: d.ID, ProviderID: fmt.Sprintf("<%d@provider>", d.ID)})
	}
	if err := s.MarkSent(ctx, want); err != nil {
		t.Fatal(err)
	}
	sent, err := s.Deliveries(ctx, imbee.DeliverySent, 10)
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for _, d := range sent {
		got[d.ID] = d.ProviderID
	}
	for _, j := range want {
		if got[j.ID] != j.ProviderID {
			t.Errorf("delivery %d of corporate %d: provider id %q, want %q", j.ID, j.CorporateID, got[j.ID], j.ProviderID)
		}
	}
	if len(sent) != len(want) {
		t.Errorf("%d deliveries sent, want %d (delivery %d was not in the batch)", len(sent), len(want), ds[5].ID)
	}

	// Webhook events: more than one statement's worth, of two corporates.
	defer func(n int) { markSentBatch = n }(markSentBatch)
	markSentBatch = 2
	es, err := s.ClaimWebhookEvents(ctx, 10, 10, time.Minute)
	if err != nil || len(es) != 6 {
		t.Fatalf("claim webhook events: %d, %v", len(es), err)
	}
	var events []imbee.SentJob
	for _, e := range es[:5] {
		events = append(events, imbee.SentJob{CorporateID: e.CorporateID, ID: e.ID})
	}
	if err := s.MarkWebhooksSent(ctx, events); err != nil {
		t.Fatal(err)
	}
	done, err := s.WebhookEvents(ctx, imbee.DeliverySent, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 5 {
		t.Errorf("%d webhook events sent, want the 5 of the batch", len(done))
	}
	for _, e := range done {
		if e.ID == es[5].ID {
			t.Errorf("webhook event %d, not in the batch, was marked sent", e.ID)
		}
	}
}

package demobot

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/testkit"
	"github.com/imbee/imbee/internal/writes"
)

// TestReceive: a person's message gets one answer in its conversation,
// sent as the bot, however often its event is retried; a bot's message
// (its own answer included) gets none.
func TestReceive(t *testing.T) {
	ctx := context.Background()
	key := make([]byte, secret.KeySize)
	rand.Read(key)
	keys, _ := secret.NewKeyring(key)
	s, err := store.Open(ctx, testkit.DSN(t), keys, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	corp, _, err := s.CreateCorporate(ctx, "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	bot, err := s.CreateBot(ctx, corp.ID, "Demo")
	if err != nil {
		t.Fatal(err)
	}
	ana, _, err := s.RegisterUser(ctx, corp.ID, "ana", nil)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: corp.ID, Creator: ana.IDSha, Type: imbee.ConversationChat, Contacts: []string{bot.IDSha}})
	if err != nil {
		t.Fatal(err)
	}
	w := writes.New(s, writes.Effects{}, nil)
	b := New(w)
	event := func(m imbee.Message) imbee.WebhookEvent {
		payload, err := imbee.WebhookPayload(m)
		if err != nil {
			t.Fatal(err)
		}
		return imbee.WebhookEvent{CorporateID: corp.ID, BotIDSha: bot.IDSha, EventID: imbee.WebhookEventID(m), Payload: payload}
	}
	sent, _, err := w.SendMessage(ctx, imbee.MessageRequest{CorporateID: corp.ID, ConversationID: conv.PublicID, Sender: ana.IDSha, Text: "héllo"})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a retried event
		if err := b.Receive(ctx, event(sent)); err != nil {
			t.Fatal(err)
		}
	}
	ms, _, _, _, err := s.Messages(ctx, corp.ID, conv.PublicID, ana.IDSha, imbee.MessagePage{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[1].Sender != bot.IDSha || !ms[1].SenderIsBot || ms[1].Text != Reply("héllo") {
		t.Fatalf("after one message and its event twice: %+v, want the message and one answer from the bot", ms)
	}
	if err := b.Receive(ctx, event(ms[1])); err != nil {
		t.Fatal(err)
	}
	if ms, _, _, _, _ = s.Messages(ctx, corp.ID, conv.PublicID, ana.IDSha, imbee.MessagePage{Limit: 10}); len(ms) != 2 {
		t.Errorf("the bot answered a bot's message: %d messages", len(ms))
	}
	if err := b.Receive(ctx, imbee.WebhookEvent{Payload: []byte("not json")}); err == nil {
		t.Error("an unreadable event was taken as answered")
	}
}

// TestReply quotes at most maxEcho characters of the message, cut between
// characters, never inside one.
func TestReply(t *testing.T) {
	long := strings.Repeat("é", 3*maxEcho)
	r := Reply("  " + long + "  ")
	quoted := strings.TrimPrefix(strings.SplitN(r, "\n", 2)[0], "You said: ")
	if !utf8.ValidString(r) || utf8.RuneCountInString(quoted) != maxEcho+1 || !strings.HasSuffix(quoted, "…") {
		t.Errorf("the reply to a long message quotes %d characters: %q", utf8.RuneCountInString(quoted), quoted)
	}
	if utf8.RuneCountInString(r) > imbee.MaxMessageLength {
		t.Errorf("the reply is %d characters, over a message's %d", utf8.RuneCountInString(r), imbee.MaxMessageLength)
	}
}

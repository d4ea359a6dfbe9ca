package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

func TestSendMessage(t *testing.T) { testkit.ForEachBackend(t, testSendMessage) }

// testSendMessage: seqs are 1..N without gaps or repeats under concurrent
// senders; a repeated clientMsgId, even sent concurrently, is one message;
// only members send; bots with a webhook get one event per message but not
// of their own messages.
func testSendMessage(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, nil)
	c := mustCorporate(t, s, "Acme")
	ana := mustUser(t, s, c.ID, "ana")
	bea := mustUser(t, s, c.ID, "bea")
	bot := mustBot(t, s, c.ID, "Helper")
	quiet := mustBot(t, s, c.ID, "Quiet") // no webhook
	g, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: ana.IDSha, Type: imbee.ConversationGroup,
		Contacts: []string{bea.IDSha, bot.IDSha, quiet.IDSha}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetBotWebhook(ctx, c.ID, bot.IDSha, "https://bot.example.com/hook"); err != nil {
		t.Fatal(err)
	}
	send := func(sender string, isBot bool, key, text string) (imbee.Message, bool, error) {
		return s.SendMessage(ctx, imbee.MessageRequest{CorporateID: c.ID, ConversationID: g.PublicID, Sender: sender, SenderIsBot: isBot, ClientMsgID: key, Text: text})
	}

	const n = 40
	var wg sync.WaitGroup
	seqs := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		sender := ana.IDSha
		if i%2 == 1 {
			sender = bea.IDSha
		}
		wg.Go(func() {
			m, _, err := send(sender, false, fmt.Sprint("k", i), fmt.Sprint("m", i))
			seqs[i], errs[i] = m.Seq, err
		})
	}
	// The same key from the same sender, ten times at once: one message.
	dups := make([]imbee.Message, 10)
	for i := range dups {
		wg.Go(func() {
			m, _, err := send(ana.IDSha, false, "same-key", "once")
			if err != nil {
				t.Error(err)
			}
			dups[i] = m
		})
	}
	wg.Wait()
	seen := map[int64]bool{}
	textOf := map[int64]string{dups[0].Seq: "once"}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("send %d: %v", i, errs[i])
		}
		textOf[seqs[i]] = fmt.Sprint("m", i)
		if seen[seqs[i]] {
			t.Errorf("seq %d given twice", seqs[i])
		}
		seen[seqs[i]] = true
	}
	for _, d := range dups {
		if d.Seq != dups[0].Seq || d.ID != dups[0].ID {
			t.Errorf("a repeated clientMsgId made two messages: seq %d and %d", d.Seq, dups[0].Seq)
		}
	}
	seen[dups[0].Seq] = true
	for seq := int64(1); seq <= n+1; seq++ {
		if !seen[seq] {
			t.Errorf("seq %d missing: seqs must be 1..%d without gaps", seq, n+1)
		}
	}

	// A bot's own message is not sent to its webhook.
	if _, _, err := send(bot.IDSha, true, "b1", "from the bot"); err != nil {
		t.Fatal(err)
	}
	_, _, err = send("stranger", false, "", "x")
	wantCode(t, err, imbee.CodeNotFound, "a non-member sending")
	_, _, err = s.SendMessage(ctx, imbee.MessageRequest{CorporateID: c.ID + 1, ConversationID: g.PublicID, Sender: ana.IDSha, Text: "x"})
	wantCode(t, err, imbee.CodeNotFound, "another corporate's conversation")

	events, err := s.WebhookEvents(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != n+1 {
		t.Errorf("%d webhook events, want %d (one per user message, none for the bot's own, none for the bot without a webhook)", len(events), n+1)
	}
	ids := map[string]bool{}
	for _, e := range events {
		if e.BotIDSha != bot.IDSha || ids[e.EventID] {
			t.Errorf("event %+v", e)
		}
		ids[e.EventID] = true
		var p imbee.WebhookMessage
		if err := json.Unmarshal(e.Payload, &p); err != nil || p.Type != "message.created" || p.Data.ConversationID != g.PublicID || p.Data.SenderIsBot {
			t.Errorf("payload %s: %v", e.Payload, err)
		}
		// The payload and the id name the same message, whichever way the
		// store numbered it (PostgreSQL numbers it inside the statement).
		if e.EventID != imbee.WebhookEventID(imbee.Message{ConversationID: g.PublicID, Seq: p.Data.Seq}) {
			t.Errorf("event %s carries seq %d", e.EventID, p.Data.Seq)
		}
		if want := textOf[p.Data.Seq]; p.Data.Text != want {
			t.Errorf("event for seq %d says %q, the message was %q", p.Data.Seq, p.Data.Text, want)
		}
	}
	claimed, err := s.ClaimWebhookEvents(ctx, 5, 5, time.Minute)
	if err != nil || len(claimed) != 5 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	if claimed[0].URL != "https://bot.example.com/hook" || claimed[0].Secret == "" || claimed[0].Attempts != 1 {
		t.Errorf("claimed event = %+v", claimed[0])
	}
}

func TestMessagePages(t *testing.T) { testkit.ForEachBackend(t, testMessagePages) }

// testMessagePages: history pages in both directions, the chat list with
// unread counts, and read marks that never move back.
func testMessagePages(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, nil)
	c := mustCorporate(t, s, "Acme")
	ana := mustUser(t, s, c.ID, "ana")
	bea := mustUser(t, s, c.ID, "bea")
	chat, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: ana.IDSha, Type: imbee.ConversationChat, Contacts: []string{bea.IDSha}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 7; i++ {
		if _, _, err := s.SendMessage(ctx, imbee.MessageRequest{CorporateID: c.ID, ConversationID: chat.PublicID, Sender: ana.IDSha, Text: fmt.Sprint("m", i)}); err != nil {
			t.Fatal(err)
		}
	}
	seqsOf := func(ms []imbee.Message) []int64 {
		var out []int64
		for _, m := range ms {
			out = append(out, m.Seq)
		}
		return out
	}
	i64 := func(n int64) *int64 { return &n }
	cases := []struct {
		name string
		p    imbee.MessagePage
		want string
		more bool
	}{
		{"latest", imbee.MessagePage{Limit: 3}, "[5 6 7]", true},
		{"all", imbee.MessagePage{Limit: 10}, "[1 2 3 4 5 6 7]", false},
		{"after", imbee.MessagePage{After: i64(2), Limit: 3}, "[3 4 5]", true},
		{"after the end", imbee.MessagePage{After: i64(7), Limit: 3}, "[]", false},
		{"before", imbee.MessagePage{Before: i64(5), Limit: 3}, "[4 3 2]", true},
		{"before, last page", imbee.MessagePage{Before: i64(3), Limit: 3}, "[2 1]", false},
	}
	for _, tc := range cases {
		ms, more, last, read, err := s.Messages(ctx, c.ID, chat.PublicID, bea.IDSha, tc.p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(seqsOf(ms)); got != tc.want || more != tc.more || last != 7 || read != 0 {
			t.Errorf("%s: seqs %s more %v last %d read %d; want %s more %v last 7", tc.name, got, more, last, read, tc.want, tc.more)
		}
	}
	_, _, _, _, err = s.Messages(ctx, c.ID, chat.PublicID, "stranger", imbee.MessagePage{Limit: 3})
	wantCode(t, err, imbee.CodeNotFound, "a stranger's history")

	if r, err := s.MarkRead(ctx, c.ID, chat.PublicID, bea.IDSha, 5); err != nil || r != 5 {
		t.Errorf("read 5 = %d, %v", r, err)
	}
	if r, err := s.MarkRead(ctx, c.ID, chat.PublicID, bea.IDSha, 2); err != nil || r != 5 {
		t.Errorf("read 2 after 5 = %d, %v; a mark never moves back", r, err)
	}
	if r, err := s.MarkRead(ctx, c.ID, chat.PublicID, bea.IDSha, 100); err != nil || r != 7 {
		t.Errorf("read 100 = %d, %v; want clamped to 7", r, err)
	}
	_, err = s.MarkRead(ctx, c.ID, chat.PublicID, "stranger", 1)
	wantCode(t, err, imbee.CodeNotFound, "a stranger's read mark")

	chats, err := s.Chats(ctx, c.ID, ana.IDSha, 10)
	if err != nil || len(chats) != 1 {
		t.Fatalf("chats = %+v, %v", chats, err)
	}
	cs := chats[0]
	if cs.Conversation.PublicID != chat.PublicID || cs.LastSeq != 7 || cs.ReadSeq != 0 || cs.LastMessage == nil || cs.LastMessage.Text != "m7" || len(cs.Conversation.Members) != 2 {
		t.Errorf("chat summary = %+v", cs)
	}
	if others, err := s.Chats(ctx, c.ID, "stranger", 10); err != nil || len(others) != 0 {
		t.Errorf("a stranger's chats = %+v, %v", others, err)
	}
}

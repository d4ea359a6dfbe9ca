// Package demobot is the bot that the first run's demo corporate comes
// with, so that the quick start's link opens a conversation that answers:
// it replies to each message with what it received and how to connect a
// real bot. It is a webhook receiver that runs in-process (its webhook URL
// is imbee.DemoBotURL), fed by the same durable queue and retries as any
// bot's webhook, and it answers as a bot answers: a message sent as the bot,
// with the webhook-id as its clientMsgId, so a retried event is answered
// once.
package demobot

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/imbee/imbee"
)

// Sender sends the bot's answers (internal/writes).
type Sender interface {
	SendMessage(ctx context.Context, req imbee.MessageRequest) (imbee.Message, bool, error)
}

// Bot answers the demo bot's webhook events.
type Bot struct{ send Sender }

// New returns the demo bot, answering through send.
func New(send Sender) *Bot { return &Bot{send: send} }

// maxEcho is how much of a message the answer quotes.
const maxEcho = 200

// Receive answers one webhook event: a person's message gets a reply in
// the same conversation; messages from bots (itself included) get none.
func (b *Bot) Receive(ctx context.Context, e imbee.WebhookEvent) error {
	var m imbee.WebhookMessage
	if err := json.Unmarshal(e.Payload, &m); err != nil {
		return fmt.Errorf("demo bot: read event %s: %w", e.EventID, err)
	}
	if m.Type != "message.created" || m.Data.SenderIsBot {
		return nil
	}
	_, _, err := b.send.SendMessage(ctx, imbee.MessageRequest{
		CorporateID: e.CorporateID, ConversationID: m.Data.ConversationID,
		Sender: e.BotIDSha, SenderIsBot: true, ClientMsgID: e.EventID, Text: Reply(m.Data.Text),
	})
	return err
}

// Reply is the demo bot's answer to text.
func Reply(text string) string {
	quoted := strings.TrimSpace(text)
	if utf8.RuneCountInString(quoted) > maxEcho {
		quoted = string([]rune(quoted)[:maxEcho]) + "…"
	}
	return "You said: " + quoted + "\n\n" +
		"I am imbee's demo bot: I only repeat what I get. A real bot receives each message at its webhook " +
		"(imbee bot webhook --corporate ID --bot BOT_IDSHA --url https://…) and answers with POST /bot/message/send."
}

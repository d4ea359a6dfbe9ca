package imbee

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
)

// DemoBotURL is the webhook URL of the demo bot that the first run's
// bootstrap makes: not a network address, but imbee's built-in bot, which
// answers in-process (internal/demobot). No tenant can set it: a webhook
// URL set through the API or the CLI must be http or https.
const DemoBotURL = "imbee:demo-bot"

// WebhookMessage is the body POSTed to a bot's webhook for a new message.
type WebhookMessage struct {
	Type      string           `json:"type"` // "message.created"
	Timestamp string           `json:"timestamp"`
	Data      WebhookEventData `json:"data"`
}

// WebhookEventData is the message a webhook is told of.
type WebhookEventData struct {
	ConversationID string `json:"conversationId"`
	Seq            int64  `json:"seq"`
	Sender         string `json:"sender"`
	SenderIsBot    bool   `json:"sender_is_bot"`
	Text           string `json:"text"`
	CreatedAt      string `json:"created_at"`
}

// WebhookPayload is the body of the webhook event telling of m, as it is
// queued (and sent, on every retry, unchanged).
func WebhookPayload(m Message) ([]byte, error) {
	return json.Marshal(WebhookMessage{
		Type:      "message.created",
		Timestamp: m.CreatedAt.Format(time.RFC3339),
		Data: WebhookEventData{
			ConversationID: m.ConversationID, Seq: m.Seq, Sender: m.Sender, SenderIsBot: m.SenderIsBot,
			Text: m.Text, CreatedAt: m.CreatedAt.Format(time.RFC3339),
		},
	})
}

// WebhookEventID is the webhook-id of the event telling of m: stable, so
// that retries carry the same one.
func WebhookEventID(m Message) string {
	return "msg_" + m.ConversationID + "_" + strconv.FormatInt(m.Seq, 10)
}

// WebhookPayloadAround is the body and the webhook-id of the event telling
// of m, each cut where m's seq goes: for a store that numbers a message in
// the statement that queues its events (payload = before + seq + after,
// id = idBefore + seq).
func WebhookPayloadAround(m Message) (before, after, idBefore string, err error) {
	m.Seq = -1 // written "-1"; any other "seq" in the body is inside an escaped string
	b, err := WebhookPayload(m)
	if err != nil {
		return "", "", "", err
	}
	before, after, ok := strings.Cut(string(b), `"seq":-1`)
	if !ok {
		return "", "", "", errors.New("webhook payload without its seq")
	}
	return before + `"seq":`, after, strings.TrimSuffix(WebhookEventID(m), "-1"), nil
}

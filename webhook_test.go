package imbee_test

import (
	"testing"
	"time"

	"github.com/imbee/imbee"
)

// TestWebhookPayload: the body and id a bot's webhook is told a message
// with, byte for byte.
func TestWebhookPayload(t *testing.T) {
	m := imbee.Message{ConversationID: "c1", Seq: 12, Sender: "u1", Text: "hola \"ana\"", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b, err := imbee.WebhookPayload(m)
	want := `{"type":"message.created","timestamp":"2026-01-02T03:04:05Z","data":{"conversationId":"c1","seq":12,"sender":"u1","sender_is_bot":false,"text":"hola \"ana\"","created_at":"2026-01-02T03:04:05Z"}}`
	if err != nil || string(b) != want {
		t.Errorf("payload %s, %v\nwant %s", b, err, want)
	}
	if id := imbee.WebhookEventID(m); id != "msg_c1_12" {
		t.Errorf("id %q", id)
	}
}

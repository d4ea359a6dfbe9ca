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

// TestWebhookPayloadAround: cut around the seq, the body and id are those
// of WebhookPayload and WebhookEventID once the seq is put back, whatever
// the text holds (here a "seq" of its own).
func TestWebhookPayloadAround(t *testing.T) {
	for _, text := range []string{"hola", `"seq":-1`, `{"seq":-1,"x":1}`, "-1"} {
		m := imbee.Message{ConversationID: "c1", Seq: 12, Sender: "u1", Text: text, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		before, after, idBefore, err := imbee.WebhookPayloadAround(m)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := imbee.WebhookPayload(m)
		if got := before + "12" + after; got != string(want) {
			t.Errorf("text %q: payload %s, want %s", text, got, want)
		}
		if got := idBefore + "12"; got != imbee.WebhookEventID(m) {
			t.Errorf("text %q: id %q, want %q", text, got, imbee.WebhookEventID(m))
		}
	}
}

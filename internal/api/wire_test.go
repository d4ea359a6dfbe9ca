package api

import (
	"encoding/json"
	"testing"
)

// TestAnswerKeyOrder pins the key order of the answers that were maps
// until #13: encoding/json wrote their keys sorted, so their types declare
// them so. No other test compares these bodies byte for byte.
func TestAnswerKeyOrder(t *testing.T) {
	b, err := json.Marshal([]any{fieldError{}, health{}, userRotateResponse{}, userLinksRevokeResponse{},
		chatListResponse{Chats: []chatSummaryView{}}, chatReadResponse{}, botWebhookResponse{}})
	want := `[{"field":""},{"status":""},{"apikey":"","pass":"","virtualUser":""},{"revoked_links":0,"virtual_user":""},` +
		`{"chats":[]},{"read_seq":0},{"bot_idsha":"","secret":"","url":""}]`
	if err != nil || string(b) != want {
		t.Errorf("answers = %s (%v)\nwant      %s", b, err, want)
	}
}

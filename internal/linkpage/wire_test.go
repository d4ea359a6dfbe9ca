package linkpage

import (
	"encoding/json"
	"testing"
)

// TestAnswerKeyOrder pins the key order of the chat's JSON answers, maps
// until #13: encoding/json wrote their keys sorted, so their types declare
// them so.
func TestAnswerKeyOrder(t *testing.T) {
	b, err := json.Marshal([]any{errorResponse{}, historyResponse{}, sendResponse{}, readResponse{}})
	want := `[{"error":""},{"has_more":false,"last_seq":0,"messages":null},{"message":null,"previously_sent":false},{"read_seq":0}]`
	if err != nil || string(b) != want {
		t.Errorf("answers = %s (%v)\nwant      %s", b, err, want)
	}
}

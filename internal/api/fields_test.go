package api

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/imbee/imbee"
)

// TestFieldNames: the domain's errors reach the wire in the document's
// words, field and message, including the names a request used
// (virutal_user, cellular) and the user endpoints' uniqueIdSha.
func TestFieldNames(t *testing.T) {
	s := &Server{cfg: Config{Now: func() time.Time { return time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC) }}}
	token := func(body string) error {
		var req tokenNewRequest
		if err := json.Unmarshal([]byte(body), &req); err != nil {
			t.Fatal(err)
		}
		_, err := s.linkRequest(imbee.Corporate{TimeZone: "America/Los_Angeles"}, &req)
		return withFieldNames(err, nil) // as writeError sends it
	}
	_, userErr := NewUserSpec(" ", imbee.Device{})
	_, devErr := NewUserSpec("a", imbee.Device{HardwareID: "\x00"})
	_, msgErr := messageRequest(&messageSendRequest{ConversationID: "c", Text: "x", ClientMsgID: "\x00"})
	_, hookErr := imbee.CheckWebhookURL("ftp://x", false)
	for _, tc := range []struct {
		err            error
		field, message string
	}{
		{token(`{"bot_idsha":"b","mail":"a@example.com"}`), "virtual_user", "virtual_user can not be null or empty"},
		{token(`{"virutal_user":" ","bot_idsha":"b","mail":"a@example.com"}`), "virutal_user", "virutal_user can not be null or empty"},
		{token(`{"virtual_user":"a","mail":"a@example.com"}`), "bot_idsha", "bot_idsha can not be null or empty"},
		{token(`{"virtual_user":"a","bot_idsha":"b"}`), "mail", "mail or celullar is required: where should the link be sent?"},
		{token(`{"virtual_user":"a","bot_idsha":"b","cellular":" "}`), "mail", "mail or celullar is required: where should the link be sent?"},
		{token(`{"virtual_user":"a","bot_idsha":"b","mail":"a"}`), "mail", "mail must be an e-mail address such as ana@example.com"},
		{token(`{"virtual_user":"a","bot_idsha":"b","celullar":"6"}`), "celullar", "celullar must be an international phone number such as +34600111222"},
		{token(`{"virtual_user":"a","bot_idsha":"b","cellular":"6"}`), "cellular", "cellular must be an international phone number such as +34600111222"},
		{token(`{"virtual_user":"a","bot_idsha":"b","mail":"a@example.com","max_retries":"x"}`), "max_retries", "max_retries must be an integer"},
		{token(`{"virtual_user":"a","bot_idsha":"b","mail":"a@example.com","max_retries":0}`), "max_retries", "max_retries must be at least 1"},
		{token(`{"virtual_user":"a","bot_idsha":"b","mail":"a@example.com","date_limit":"2026-01-14"}`), "date_limit",
			"date_limit 2026-01-14 is in the past (today is 2026-01-15 in America/Los_Angeles)"},
		{userErr, "uniqueIdSha", "uniqueIdSha can not be null or empty"},
		{devErr, "hardwareId", "hardwareId must not contain NUL characters"},
		{withFieldNames(msgErr, nil), "clientMsgId", "clientMsgId must not contain NUL characters"},
		{withFieldNames(hookErr, nil), "url", "the webhook URL must be an http or https URL of at most 2000 bytes"},
		{withFieldNames(imbee.NotFound(imbee.SubjectBot, "{%s} does not name a bot of this corporate", imbee.SubjectBot), nil), "bot_idsha", "bot_idsha does not name a bot of this corporate"},
		{withFieldNames(imbee.NotFound(imbee.SubjectUser, "no such user"), userNames), "uniqueIdSha", "no such user"},
		{withFieldNames(imbee.NotFound(imbee.SubjectConversation, "no such conversation of yours"), nil), "conversationId", "no such conversation of yours"},
		// Already in the document's terms: as it is.
		{withFieldNames(imbee.ParamError("users", "users can not be null or empty"), nil), "users", "users can not be null or empty"},
	} {
		var e *imbee.Error
		if !errors.As(tc.err, &e) || e.Field != tc.field || e.Message != tc.message {
			t.Errorf("%v, want field %q: %q", tc.err, tc.field, tc.message)
		}
	}
}

package imbee_test

import (
	"strings"
	"testing"

	"github.com/imbee/imbee"
)

// TestNewMessageRequest: the one rule for a message, API and web chat:
// the text kept as sent, 1 to 4000 characters blanks included, not blank,
// valid UTF-8 without NUL; the clientMsgId at most 64 characters as sent,
// kept trimmed, without NUL.
func TestNewMessageRequest(t *testing.T) {
	for _, tc := range []struct {
		name, conv, text, client string
		subject, message         string
		wantText, wantClient     string
	}{
		{name: "plain", conv: "c1", text: "hola", client: "k1", wantText: "hola", wantClient: "k1"},
		{name: "blanks kept", conv: "c1", text: "  hola\n", client: " k1 ", wantText: "  hola\n", wantClient: "k1"},
		{name: "4000 characters", conv: "c1", text: strings.Repeat("ñ", 4000), wantText: strings.Repeat("ñ", 4000)},
		{name: "64 characters", conv: "c1", text: "x", client: strings.Repeat("ñ", 64), wantText: "x", wantClient: strings.Repeat("ñ", 64)},
		{name: "no conversation", conv: " ", text: "x", subject: imbee.SubjectConversation, message: "conversation can not be null or empty"},
		{name: "conversation before text", conv: "", text: "", subject: imbee.SubjectConversation, message: "conversation can not be null or empty"},
		{name: "empty", conv: "c1", text: "", subject: imbee.SubjectText, message: "text can not be null or empty"},
		{name: "blank", conv: "c1", text: " \n\t", subject: imbee.SubjectText, message: "text can not be null or empty"},
		{name: "4001 characters", conv: "c1", text: strings.Repeat("ñ", 4001), subject: imbee.SubjectText, message: "text is longer than 4000 characters"},
		{name: "4000 with a blank", conv: "c1", text: strings.Repeat("a", 4000) + " ", subject: imbee.SubjectText, message: "text is longer than 4000 characters"},
		{name: "NUL", conv: "c1", text: "a\x00b", subject: imbee.SubjectText, message: "text must be valid UTF-8 without NUL characters"},
		{name: "not UTF-8", conv: "c1", text: "a\xffb", subject: imbee.SubjectText, message: "text must be valid UTF-8 without NUL characters"},
		{name: "65 characters", conv: "c1", text: "x", client: strings.Repeat("ñ", 65), subject: imbee.SubjectClientMsgID, message: "client message id is longer than 64 characters"},
		{name: "64 with blanks", conv: "c1", text: "x", client: " " + strings.Repeat("a", 64), subject: imbee.SubjectClientMsgID, message: "client message id is longer than 64 characters"},
		{name: "id with NUL", conv: "c1", text: "x", client: "k\x00", subject: imbee.SubjectClientMsgID, message: "client message id must not contain NUL characters"},
		{name: "id not UTF-8", conv: "c1", text: "x", client: "k\xff", subject: imbee.SubjectClientMsgID, message: "client message id is not valid UTF-8"},
	} {
		mr, err := imbee.NewMessageRequest(tc.conv, tc.text, tc.client)
		if tc.subject != "" {
			wantErr(t, err, imbee.CodeParam, tc.subject, tc.message)
			continue
		}
		if err != nil || mr.ConversationID != tc.conv || mr.Text != tc.wantText || mr.ClientMsgID != tc.wantClient {
			t.Errorf("%s: %+v, %v", tc.name, mr, err)
		}
	}
}

func TestParseSeq(t *testing.T) {
	for in, want := range map[string]bool{"0": true, "42": true, "9223372036854775807": true,
		"-1": false, "": false, "1.5": false, " 1": false, "9223372036854775808": false, "x": false} {
		if _, ok := imbee.ParseSeq(in); ok != want {
			t.Errorf("ParseSeq(%q) ok = %v, want %v", in, ok, want)
		}
	}
	if n, _ := imbee.ParseSeq("17"); n != 17 {
		t.Errorf("ParseSeq(17) = %d", n)
	}
}

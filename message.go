package imbee

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Message limits, documented in docs/api.md.
const (
	MaxMessageLength = 4000 // characters
	MaxClientMsgID   = 64   // characters, as sent
)

// NewMessageRequest is the rule for a message sent to a conversation, by
// the API or the web chat: the conversation's id as CheckID takes it; the
// text kept as sent, 1 to MaxMessageLength characters (blanks included),
// not blank, valid UTF-8 without NUL; the clientMsgId, optional, at most
// MaxClientMsgID characters as sent and kept trimmed, as CheckText bounds
// it. The caller fills in the corporate and the sender.
func NewMessageRequest(conversationID, text, clientMsgID string) (MessageRequest, error) {
	mr := MessageRequest{ClientMsgID: strings.TrimSpace(clientMsgID), Text: text}
	var err error
	if mr.ConversationID, err = CheckID(SubjectConversation, conversationID); err != nil {
		return mr, err
	}
	switch n := utf8.RuneCountInString(text); {
	case strings.TrimSpace(text) == "":
		return mr, ParamError(SubjectText, "{%s} can not be null or empty", SubjectText)
	case n > MaxMessageLength:
		return mr, ParamError(SubjectText, "{%s} is longer than %d characters", SubjectText, MaxMessageLength)
	case !utf8.ValidString(text) || strings.ContainsRune(text, 0):
		return mr, ParamError(SubjectText, "{%s} must be valid UTF-8 without NUL characters", SubjectText)
	}
	if utf8.RuneCountInString(clientMsgID) > MaxClientMsgID {
		return mr, ParamError(SubjectClientMsgID, "{%s} is longer than %d characters", SubjectClientMsgID, MaxClientMsgID)
	}
	return mr, CheckText(SubjectClientMsgID, mr.ClientMsgID)
}

// ParseSeq reads a position in a conversation (afterSeq, beforeSeq, a read
// mark): an integer of at least 0.
func ParseSeq(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// ErrNoConversation is the answer for a conversation that does not exist in
// the corporate or that the caller is no member of: the two are answered
// alike, so a caller learns nothing of others' conversations.
func ErrNoConversation() error {
	return NotFound(SubjectConversation, "no such conversation of yours")
}

package imbee

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Code is the API's error code, sent as "code" in every response. The
// catalogue is append-only: a code never changes meaning. See docs/api.md.
type Code int

const (
	CodeOK           Code = 0 // success
	CodeGeneric      Code = 1 // anything not below; the message says what
	CodeAuth         Code = 2 // Authorization missing, unknown or revoked
	CodeCorporateKey Code = 3 // X-WOOS-KEY missing, unknown, revoked or of another corporate
	CodeContentType  Code = 4 // Content-Type is not application/json
	CodeBody         Code = 5 // body is not a JSON object, or too large
	CodeParam        Code = 6 // a parameter is missing or invalid; Field names it
	CodeNotFound     Code = 7 // a referenced bot or contact does not exist in this corporate
	CodeRateLimited  Code = 8 // too many requests; Retry-After says when to come back
	// CodeIdempotencyMismatch: an Idempotency-Key already used, within its
	// lifetime, for a different request (another endpoint or another body).
	CodeIdempotencyMismatch Code = 9
	// CodeIdempotencyInProgress: the first request with this Idempotency-Key
	// is still being processed; retry after Retry-After.
	CodeIdempotencyInProgress Code = 10
)

// The subjects of the domain's errors: what each rule is about, in the
// domain's words.
const (
	SubjectUser         = "user"              // the integrator's id of a person: User.UniqueID
	SubjectBot          = "bot"               // a bot, by its idsha
	SubjectMail         = "mail"              // a link's e-mail recipient
	SubjectPhone        = "phone"             // a link's SMS recipient
	SubjectMaxUses      = "max uses"          // how many times a link can be opened
	SubjectDateLimit    = "date limit"        // the last day a link works
	SubjectLink         = "link"              // a link, by its URL or token
	SubjectConversation = "conversation"      // a conversation, by its public id
	SubjectChatName     = "conversation name" // a group's name
	SubjectContact      = "contact"           // a member of a conversation being created
	SubjectText         = "text"              // a message's text
	SubjectClientMsgID  = "client message id" // the sender's retry key of a message
	SubjectPlatform     = "platform"          // the device fields of a user
	SubjectDeviceName   = "device name"
	SubjectHardwareID   = "hardware id"
	SubjectOSVersion    = "OS version"
	// A corporate's settings.
	SubjectName      = "name"
	SubjectTimeZone  = "time zone"
	SubjectLanguage  = "language"
	SubjectRateLimit = "rate limit"
)

// Error is the one error type that crosses package boundaries. Message is
// safe to show a client; Err is the cause, for logs only. An Error without a
// Message is an internal failure: clients see "internal error" and HTTP 500.
//
// The domain's errors name what they are about by a subject (Field: one of
// the Subject constants), in the domain's words; each entry point calls
// the subject its own way (Named): the API by the document's field names,
// the CLI by its flags.
type Error struct {
	Code    Code
	Message string
	Field   string // the offending parameter: a subject, or an entry point's name for it
	Err     error
	// RetryAfter, for CodeRateLimited, is how long until a retry can succeed.
	RetryAfter time.Duration
	// template is Message with the subjects it names in braces ("{text}
	// can not be null or empty"), so that Named can name them; empty when
	// it names none.
	template string
}

func (e *Error) Error() string {
	text := e.Message
	if text == "" {
		text = "internal error"
	}
	msg := fmt.Sprintf("code %d: %s", e.Code, text)
	if e.Field != "" {
		msg += " (field " + e.Field + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected failure (storage, I/O) for the logs only.
func Internal(op string, err error) *Error {
	return &Error{Code: CodeGeneric, Err: fmt.Errorf("%s: %w", op, err)}
}

// ParamError reports an invalid or missing parameter, subject. The format
// may name subjects in braces, "{text} can not be null or empty": Message
// names them in the domain's words, and Named as an entry point does.
func ParamError(subject, format string, args ...any) *Error {
	return subjectError(CodeParam, subject, format, args)
}

// NotFound reports that the subject a request names does not exist (the
// format as ParamError's).
func NotFound(subject, format string, args ...any) *Error {
	return subjectError(CodeNotFound, subject, format, args)
}

func subjectError(code Code, subject, format string, args []any) *Error {
	e := &Error{Code: code, Field: subject, Message: fmt.Sprintf(format, args...)}
	if strings.Contains(format, "{") {
		e.template = e.Message
		e.Message = nameSubjects(e.template, func(s string) string { return s })
	}
	return e
}

// Named returns e with its subjects called by name(subject): its Field and
// those its message names. A subject for which name gives "" keeps its
// domain name, for a later call to name. Named is how an entry point
// speaks of the domain's errors in its own terms.
func (e *Error) Named(name func(subject string) string) *Error {
	c := *e
	if n := name(e.Field); n != "" {
		c.Field = n
	}
	if e.template != "" {
		c.template = nameSubjects(e.template, name)
		c.Message = nameSubjects(c.template, func(s string) string { return s })
	}
	return &c
}

// nameSubjects writes the braced subjects of a message's template by
// name(subject); those it gives "" for stay in braces.
func nameSubjects(t string, name func(subject string) string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(t, '{')
		j := strings.IndexByte(t[i+1:], '}')
		if i < 0 || j < 0 {
			break
		}
		subject := t[i+1 : i+1+j]
		n := name(subject)
		if n == "" {
			n = "{" + subject + "}"
		}
		b.WriteString(t[:i])
		b.WriteString(n)
		t = t[i+1+j+1:]
	}
	b.WriteString(t)
	return b.String()
}

// ErrorCode returns the code of err: CodeOK for nil, the *Error's code when
// there is one, CodeGeneric otherwise.
func ErrorCode(err error) Code {
	if err == nil {
		return CodeOK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeGeneric
}

package imbee

import (
	"errors"
	"fmt"
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

// Error is the one error type that crosses package boundaries. Message is
// safe to show a client; Err is the cause, for logs only. An Error without a
// Message is an internal failure: clients see "internal error" and HTTP 500.
type Error struct {
	Code    Code
	Message string
	Field   string // the offending parameter, for CodeParam
	Err     error
	// RetryAfter, for CodeRateLimited, is how long until a retry can succeed.
	RetryAfter time.Duration
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

// ParamError reports an invalid or missing parameter.
func ParamError(field, format string, args ...any) *Error {
	return &Error{Code: CodeParam, Field: field, Message: fmt.Sprintf(format, args...)}
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

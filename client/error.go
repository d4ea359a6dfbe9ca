package client

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// The API's codes, the envelope's "code" (docs/api.md, "Codes"). The
// catalogue is append-only: a code never changes meaning.
const (
	CodeOK           = 0 // success
	CodeGeneric      = 1 // unknown path, wrong method, internal error, or an answer that is not imbee's
	CodeAuth         = 2 // Authorization missing, unknown or revoked
	CodeCorporateKey = 3 // X-WOOS-KEY missing, unknown, revoked, or of another corporate
	CodeContentType  = 4 // Content-Type is not application/json
	CodeBody         = 5 // the body is not a JSON object, or is larger than 1 MiB
	CodeParam        = 6 // a parameter is missing or invalid; Error.Field names it
	CodeNotFound     = 7 // a referenced bot, contact, link or conversation does not exist; Error.Field names it
	CodeRateLimited  = 8 // rate limited; Error.RetryAfter says when to retry
	// CodeIdempotencyMismatch: the Idempotency-Key was already used for
	// another endpoint or another body.
	CodeIdempotencyMismatch = 9
	// CodeIdempotencyInProgress: the first request with this Idempotency-Key
	// is still running; Error.RetryAfter says when to retry.
	CodeIdempotencyInProgress = 10
)

// Error is an answer with a non-zero code, or one that is not imbee's
// envelope at all (a proxy's 502 page), which is reported as CodeGeneric
// with the HTTP status it came with.
type Error struct {
	Code       int    // the envelope's code, one of the Code constants
	Message    string // for humans
	Field      string // the parameter at fault (codes 6 and 7, and 8 for a recipient limit), if any
	HTTPStatus int    // 0 for an item of BulkUsersResponse
	// RetryAfter is the server's Retry-After (codes 8 and 10), 0 if none.
	RetryAfter time.Duration
	RequestID  string // X-Request-Id: quote it when asking about the request

	safe bool // the request can be repeated without running twice
}

func (e *Error) Error() string {
	s := fmt.Sprintf("imbee: code %d", e.Code)
	if e.HTTPStatus != 0 {
		s += fmt.Sprintf(" (HTTP %d %s)", e.HTTPStatus, http.StatusText(e.HTTPStatus))
	}
	s += ": " + e.Message
	if e.Field != "" {
		s += " [field " + e.Field + "]"
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	return s
}

// Retryable reports whether the same request may succeed later: rate
// limits (8) and a key in progress (10) after RetryAfter, and server
// errors (HTTP 5xx) when the request was safe to repeat (it only read, or
// carried an Idempotency-Key). Every other code answers the same until the
// request changes.
func (e *Error) Retryable() bool {
	switch {
	case e.Code == CodeRateLimited, e.Code == CodeIdempotencyInProgress:
		return true
	case e.Code == CodeGeneric && e.HTTPStatus >= 500:
		return e.safe
	}
	return false
}

// IsCode reports whether err is, or wraps, an *Error with the given code.
func IsCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

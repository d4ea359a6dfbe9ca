package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/imbee/imbee"
)

// writeEnvelope writes the document's response format, keys in its order:
// time, code, message, body. body must marshal to a JSON object.
func writeEnvelope(w http.ResponseWriter, status int, start time.Time, code imbee.Code, message string, body any) {
	out, err := envelope(start, code, message, body)
	if err != nil {
		status = http.StatusInternalServerError
		out, _ = envelope(start, imbee.CodeGeneric, "internal error", nil)
	}
	writeJSON(w, status, out)
}

// envelope encodes a response; the error is body's marshalling failure.
func envelope(start time.Time, code imbee.Code, message string, body any) ([]byte, error) {
	b := []byte("{}")
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	msg, _ := json.Marshal(message)
	out := make([]byte, 0, 64+len(msg)+len(b))
	out = append(out, `{"time":`...)
	out = strconv.AppendFloat(out, time.Since(start).Seconds(), 'f', 6, 64)
	out = append(out, `,"code":`...)
	out = strconv.AppendInt(out, int64(code), 10)
	out = append(out, `,"message":`...)
	out = append(out, msg...)
	out = append(out, `,"body":`...)
	out = append(out, b...)
	out = append(out, "}\n"...)
	return out, nil
}

// writeJSON writes an encoded envelope.
func writeJSON(w http.ResponseWriter, status int, out []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(status)
	w.Write(out)
}

// errorStatus is the HTTP status that goes with an error's code.
func errorStatus(e *imbee.Error) int {
	switch e.Code {
	case imbee.CodeAuth, imbee.CodeCorporateKey:
		return http.StatusUnauthorized
	case imbee.CodeContentType:
		return http.StatusUnsupportedMediaType
	case imbee.CodeBody:
		var tooLarge *http.MaxBytesError
		if errors.As(e.Err, &tooLarge) {
			return http.StatusRequestEntityTooLarge
		}
		return http.StatusBadRequest
	case imbee.CodeParam:
		return http.StatusBadRequest
	case imbee.CodeNotFound:
		return http.StatusNotFound
	case imbee.CodeRateLimited:
		return http.StatusTooManyRequests
	case imbee.CodeIdempotencyMismatch:
		return http.StatusUnprocessableEntity
	case imbee.CodeIdempotencyInProgress:
		return http.StatusConflict
	}
	if e.Message == "" {
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

// asError turns any error into an *imbee.Error; unknown errors are internal.
func asError(err error) *imbee.Error {
	var e *imbee.Error
	if errors.As(err, &e) {
		return e
	}
	return imbee.Internal("unclassified", err)
}

// fieldError is an error's body when a parameter is at fault.
type fieldError struct {
	Field string `json:"field"`
}

// writeError writes err in the envelope: its code, a safe message, and
// {"field": …} when a parameter is at fault, in the document's terms
// (withFieldNames). The cause is kept for the log.
func writeError(w http.ResponseWriter, r *http.Request, start time.Time, err error) {
	e := asError(withFieldNames(err, nil))
	info(r).err = e
	msg := e.Message
	if msg == "" {
		msg = "internal error"
	}
	var body any
	if e.Field != "" {
		body = fieldError{Field: e.Field}
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	info(r).code, info(r).envelope = e.Code, true
	writeEnvelope(w, errorStatus(e), start, e.Code, msg, body)
}

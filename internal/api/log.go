package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/clientaddr"
)

// reqInfo is filled in while a request is handled, for its access-log line.
type reqInfo struct {
	route       string
	corporateID int64
	code        imbee.Code
	envelope    bool // the answer is the envelope, code its code
	err         *imbee.Error
}

type infoKey struct{}

func info(r *http.Request) *reqInfo {
	if ri, ok := r.Context().Value(infoKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{} // outside accessLog (tests of single handlers): discard
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog writes one line per request: request id, client address,
// route (the pattern, never the path: link paths carry tokens), status,
// code, duration and corporate. 4xx log at Warn, 5xx at Error with the
// cause. observe, when set, is told the same.
func accessLog(log *slog.Logger, clients *clientaddr.Resolver, observe func(route string, status int, code imbee.Code, envelope bool, took time.Duration), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			b := make([]byte, 8)
			rand.Read(b)
			id = hex.EncodeToString(b)
		}
		w.Header().Set("X-Request-Id", id)
		ri := &reqInfo{route: "unknown"}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), infoKey{}, ri)))
		took := time.Since(start)
		if observe != nil {
			observe(ri.route, sw.status, ri.code, ri.envelope, took)
		}

		level := slog.LevelInfo
		switch {
		case sw.status >= 500:
			level = slog.LevelError
		case sw.status >= 400:
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{
			slog.String("request_id", id),
			slog.String("client", clients.Addr(r).String()),
			slog.String("method", r.Method),
			slog.String("route", ri.route),
			slog.Int("status", sw.status),
			slog.Int("code", int(ri.code)),
			slog.Float64("duration_ms", float64(took.Microseconds())/1000),
		}
		if ri.corporateID != 0 {
			attrs = append(attrs, slog.Int64("corporate_id", ri.corporateID))
		}
		if ri.err != nil {
			attrs = append(attrs, slog.String("err", ri.err.Error()))
		}
		log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

package api

import (
	"context"
	"net/http"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/clientaddr"
)

// readyTimeout bounds a readiness check: an orchestrator's probe gives up
// soon after, and a database that slow is not ready anyway.
const readyTimeout = 2 * time.Second

// health is the body of /healthz and /readyz's success.
type health struct {
	Status string `json:"status"`
}

// mountOps routes the operational endpoints, behind the access log like
// the rest: /healthz (the process answers), /readyz (it can serve) and,
// when configured, /metrics.
func (s *Server) mountOps() {
	s.handle("/healthz", "GET", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeEnvelope(w, http.StatusOK, time.Now(), imbee.CodeOK, "Ok", health{Status: "ok"})
	}))
	s.handle("/readyz", "GET", http.HandlerFunc(s.readyz))
	if m := s.cfg.Metrics; m != nil {
		s.mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !s.metricsAllowed(r) {
				s.notFound(w, r)
				return
			}
			s.serveMethod("/metrics", "GET", w, r, func(w http.ResponseWriter, r *http.Request) {
				info(r).envelope = false // the Prometheus text format
				m.ServeHTTP(w, r)
			})
		}))
	}
}

// metricsAllowed says whether r may read /metrics on the main address: its
// client is in the allowed networks (loopback by default), and no proxy
// that is not trusted forwarded it, since a proxy on this host would make
// every visitor look local. Others get the unknown path's answer, so that
// the endpoint's existence is not told either.
func (s *Server) metricsAllowed(r *http.Request) bool {
	return !s.cfg.Clients.UntrustedForward(r) && clientaddr.In(s.cfg.Clients.Addr(r), s.cfg.MetricsAllow)
}

// readyz answers 200 when the server can serve requests, 503 with the
// reason otherwise (the cause goes to the log).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.cfg.Ready != nil {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		defer cancel()
		if err := s.cfg.Ready(ctx); err != nil {
			e := asError(err)
			msg := e.Message
			if msg == "" {
				msg = "not ready"
			}
			info(r).code, info(r).err = imbee.CodeGeneric, e
			writeEnvelope(w, http.StatusServiceUnavailable, start, imbee.CodeGeneric, msg, nil)
			return
		}
	}
	writeEnvelope(w, http.StatusOK, start, imbee.CodeOK, "Ok", health{Status: "ready"})
}

package api

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/realtime"
)

// socketRetryAfter is the Retry-After, in seconds, of an upgrade refused
// for too many open sockets: a guess, since sockets close when their
// clients go.
const socketRetryAfter = 5

// socket is GET /chat/socket?conversationId=…&afterSeq=…: a member's
// WebSocket, authenticated like the API (Authorization and the apikey).
// It closes (1008) when the user's or the corporate's credentials are
// rotated or the corporate is disabled; at most Config.MaxSockets are open
// per apikey, on this server (code 8 beyond).
func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info(r).route, info(r).envelope = "/chat/socket", true
	if r.Method != http.MethodGet {
		info(r).code = imbee.CodeGeneric
		w.Header().Set("Allow", "GET")
		writeEnvelope(w, http.StatusMethodNotAllowed, start, imbee.CodeGeneric, "method not allowed: use GET", nil)
		return
	}
	client, ok := s.authAllowed(w, r, start)
	if !ok {
		return
	}
	// Read before the credentials are: a revocation after it is applied
	// to this socket, even one applied before it subscribes.
	since := s.cfg.Events.Since(r.Context())
	corp, user, err := s.store.AuthenticateUser(r.Context(), bearer(r.Header.Get("Authorization")), strings.TrimSpace(r.Header.Get("X-WOOS-KEY")))
	if err != nil {
		s.authFailed(r.Context(), client, err)
		writeError(w, r, start, err)
		return
	}
	info(r).corporateID = corp.ID
	if err := s.allow(r.Context(), w, corp); err != nil {
		writeError(w, r, start, err)
		return
	}
	conv, err := imbee.CheckID(imbee.SubjectConversation, r.URL.Query().Get("conversationId"))
	if err != nil {
		writeError(w, r, start, err)
		return
	}
	var after int64
	if v := r.URL.Query().Get("afterSeq"); v != "" {
		var ok bool
		if after, ok = imbee.ParseSeq(v); !ok {
			writeError(w, r, start, imbee.ParamError("afterSeq", "afterSeq must be an integer of at least 0"))
			return
		}
	}
	member, err := s.store.IsMember(r.Context(), corp.ID, conv, user.IDSha)
	if err != nil {
		writeError(w, r, start, err)
		return
	}
	if !member {
		writeError(w, r, start, imbee.ErrNoConversation())
		return
	}
	sub, err := s.cfg.Events.Subscribe(realtime.Grant{CorporateID: corp.ID, ConversationID: conv,
		Key: "apikey:" + strconv.FormatInt(user.ID, 10), UserID: user.ID, Since: since})
	if errors.Is(err, realtime.ErrTooManySockets) {
		w.Header().Set("Retry-After", strconv.Itoa(socketRetryAfter))
		writeError(w, r, start, imbee.Errorf(imbee.CodeRateLimited, "too many open sockets for this apikey: close one, then retry"))
		return
	}
	info(r).code = imbee.CodeOK
	realtime.Serve(w, r, s.cfg.Events, sub, s.store, s.cfg.Log, after)
}

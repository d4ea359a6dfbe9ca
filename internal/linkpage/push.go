package linkpage

import (
	"crypto/ecdh"
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/http"
	"strings"

	"github.com/imbee/imbee"
)

// Web Push: a signed-in person turns notifications on in a browser; the
// page registers /app/sw.js, subscribes with the server's VAPID key and
// posts the subscription here. internal/push sends to it.

// pushRequest is a browser's PushSubscription as JSON.stringify writes it.
type pushRequest struct {
	Endpoint string `json:"endpoint"`
	Keys     struct {
		P256dh string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

// pushSubscribe is POST /app/push: the signed-in user's browser will get
// pushes at the subscription's endpoint. The endpoint is a URL the browser
// chose, so it passes the webhooks' rule (no loopback, private or
// reserved address unless --allow-private-webhooks), and is dialled
// through their guard.
func (h *Handler) pushSubscribe(w http.ResponseWriter, r *http.Request) {
	sess, req, ok := h.pushCall(w, r)
	if !ok {
		return
	}
	endpoint, err := imbee.CheckWebhookURL(req.Endpoint, h.cfg.AllowPrivatePush)
	if err != nil || endpoint == "" || (!h.cfg.AllowPrivatePush && !strings.HasPrefix(endpoint, "https://")) {
		writeError(w, http.StatusBadRequest, "endpoint must be the https URL of a push service")
		return
	}
	p256dh, err1 := base64.RawURLEncoding.DecodeString(strings.TrimRight(req.Keys.P256dh, "="))
	auth, err2 := base64.RawURLEncoding.DecodeString(strings.TrimRight(req.Keys.Auth, "="))
	if err1 != nil || err2 != nil || len(auth) != 16 {
		writeError(w, http.StatusBadRequest, "keys must be the subscription's p256dh and 16-byte auth, base64url")
		return
	}
	if _, err := ecdh.P256().NewPublicKey(p256dh); err != nil {
		writeError(w, http.StatusBadRequest, "keys.p256dh must be a P-256 public key")
		return
	}
	if err := h.writes.SavePushSubscription(r.Context(), imbee.PushSubscription{CorporateID: sess.CorporateID, UserID: sess.UserID,
		Endpoint: endpoint, P256dh: p256dh, Auth: auth}); err != nil {
		h.log.Error("save push subscription", "err", err)
		writeError(w, http.StatusInternalServerError, "something went wrong")
		return
	}
	writeJSON(w, http.StatusOK, pushResponse{Subscribed: true})
}

// pushUnsubscribe is POST /app/push/off {"endpoint"}: no more pushes to
// that browser.
func (h *Handler) pushUnsubscribe(w http.ResponseWriter, r *http.Request) {
	sess, req, ok := h.pushCall(w, r)
	if !ok {
		return
	}
	if err := h.writes.DeletePushSubscription(r.Context(), sess.CorporateID, sess.UserID, strings.TrimSpace(req.Endpoint)); err != nil {
		h.log.Error("delete push subscription", "err", err)
		writeError(w, http.StatusInternalServerError, "something went wrong")
		return
	}
	writeJSON(w, http.StatusOK, pushResponse{Subscribed: false})
}

// pushCall checks a push call: a live app session, JSON (so a form on
// another site cannot post it), a body that reads.
func (h *Handler) pushCall(w http.ResponseWriter, r *http.Request) (imbee.AppSession, pushRequest, bool) {
	var req pushRequest
	sess, ok, err := h.appSession(r)
	switch {
	case err != nil:
		h.log.Error("app session", "err", err)
		writeError(w, http.StatusInternalServerError, "something went wrong")
		return sess, req, false
	case !ok:
		writeError(w, http.StatusUnauthorized, "sign in first")
		return sess, req, false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send JSON")
		return sess, req, false
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "send the PushSubscription as JSON")
		return sess, req, false
	}
	return sess, req, true
}

// serviceWorker is GET /app/sw.js: the service worker that shows pushes.
// It is served under /app/ so that its scope covers the app.
func (h *Handler) serviceWorker(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/sw.js")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	w.Header().Set("Service-Worker-Allowed", "/app/")
	w.Write(b)
}

package linkpage

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestChatEndpoints: the web chat's JSON calls work with the session cookie
// only, for its own conversation; sending is JSON only and idempotent by
// clientMsgId; the page itself loads its script from this server.
func TestChatEndpoints(t *testing.T) {
	e := setup(t)
	l := e.issue(t, "ana", 3)
	conv, cookie := e.spend(t, l.Token)
	post := func(body, contentType string, cookies ...*http.Cookie) response {
		t.Helper()
		return e.send(t, http.MethodPost, "/w/"+conv+"/messages", contentType, body, nil, cookies...)
	}

	r := post(`{"text":"hello","clientMsgId":"c1"}`, "application/json", cookie)
	wantStatus(t, r, http.StatusOK, "send")
	var sent struct {
		Message struct {
			Seq  int64  `json:"seq"`
			Text string `json:"text"`
		} `json:"message"`
		PreviouslySent bool `json:"previously_sent"`
	}
	if err := json.Unmarshal([]byte(r.body), &sent); err != nil || sent.Message.Seq != 1 || sent.Message.Text != "hello" || sent.PreviouslySent {
		t.Fatalf("send = %s (%v)", r.body, err)
	}
	r = post(`{"text":"hello","clientMsgId":"c1"}`, "application/json", cookie)
	if !strings.Contains(r.body, `"previously_sent":true`) {
		t.Errorf("a retry with the same clientMsgId: %s", r.body)
	}
	wantStatus(t, post(`text=hello`, "application/x-www-form-urlencoded", cookie), http.StatusUnsupportedMediaType, "a form post")
	wantStatus(t, post(`{"text":"   "}`, "application/json", cookie), http.StatusBadRequest, "an empty message")
	wantStatus(t, post(`{"text":"x"}`, "application/json"), http.StatusUnauthorized, "no cookie")

	h := e.do(t, http.MethodGet, "/w/"+conv+"/messages", cookie)
	wantStatus(t, h, http.StatusOK, "history")
	if !strings.Contains(h.body, `"text":"hello"`) || !strings.Contains(h.body, `"last_seq":1`) {
		t.Errorf("history = %s", h.body)
	}
	wantStatus(t, e.do(t, http.MethodGet, "/w/"+conv+"/messages"), http.StatusUnauthorized, "history without a cookie")
	// The cookie of one conversation opens no other.
	other := e.issue(t, "bea", 3)
	otherConv, _ := e.spend(t, other.Token)
	wantStatus(t, e.do(t, http.MethodGet, "/w/"+otherConv+"/messages", cookie), http.StatusGone, "another conversation's history")

	page := e.do(t, http.MethodGet, "/w/"+conv, cookie)
	wantStatus(t, page, http.StatusOK, "chat page")
	if !strings.Contains(page.body, `src="/assets/chat.js"`) || strings.Contains(page.body, "<script>") {
		t.Errorf("the page should load its script from /assets, with no inline script:\n%s", page.body)
	}
	csp := page.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "script-src 'unsafe-inline'") {
		t.Errorf("CSP = %q", csp)
	}
	js := e.do(t, http.MethodGet, "/assets/chat.js")
	wantStatus(t, js, http.StatusOK, "chat.js")
	if !strings.Contains(js.body, "WebSocket") {
		t.Error("chat.js is not the chat script")
	}

	// Revoking the link ends the session for every call.
	if _, err := e.store.RevokeLink(t.Context(), 0, l.Token); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, post(`{"text":"x"}`, "application/json", cookie), http.StatusGone, "send after revoke")
	wantStatus(t, e.do(t, http.MethodGet, "/w/"+conv+"/messages", cookie), http.StatusGone, "history after revoke")
	wantStatus(t, e.do(t, http.MethodGet, "/w/"+conv+"/socket", cookie), http.StatusGone, "socket after revoke")
}

// Package linkpage serves the pages people see behind a web access link:
// the landing page (GET spends nothing, so mail scanners that fetch every
// link cannot use it up), the POST that spends one use and opens a session,
// and the web chat that session opens. These are pages for people: HTML,
// not the API's JSON envelope.
package linkpage

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/clientaddr"
	"github.com/imbee/imbee/internal/ratelimit"
	"github.com/imbee/imbee/internal/realtime"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed assets
var assets embed.FS

var pages = template.Must(template.ParseFS(templates, "templates/*.html"))

// Store is what the pages read.
type Store interface {
	LinkByToken(ctx context.Context, token string) (imbee.LinkPage, error)
	SessionByToken(ctx context.Context, token string) (imbee.Session, error)
	Messages(ctx context.Context, corporateID int64, conversationID, member string, p imbee.MessagePage) ([]imbee.Message, bool, int64, int64, error)
	realtime.History // a socket's catch-up
	// The web app's.
	AppSessionByToken(ctx context.Context, token string) (imbee.AppSession, error)
	MemberChat(ctx context.Context, corporateID int64, publicID, member string) (imbee.Conversation, error)
	Chats(ctx context.Context, corporateID int64, member string, limit int) ([]imbee.ChatSummary, error)
	ListBots(ctx context.Context, corporateID int64) ([]imbee.Bot, error)
	IsMember(ctx context.Context, corporateID int64, conversationID, idsha string) (bool, error)
}

// Writes are the pages' changes, each with what follows its commit
// (internal/writes).
type Writes interface {
	SpendLink(ctx context.Context, token string, a imbee.LinkAttempt) (imbee.Session, imbee.LinkState, error)
	RecordLinkAttempts(ctx context.Context, as []imbee.LinkAttempt) error
	SendMessage(ctx context.Context, req imbee.MessageRequest) (imbee.Message, bool, error)
	MarkRead(ctx context.Context, corporateID int64, conversationID, member string, seq int64) (int64, error)
	CreateConversation(ctx context.Context, req imbee.ChatRequest) (imbee.Conversation, error)
	SignIn(ctx context.Context, virtualUser, pass string, life time.Duration) (imbee.AppSession, error)
	SignOut(ctx context.Context, token string) error
	SavePushSubscription(ctx context.Context, sub imbee.PushSubscription) error
	DeletePushSubscription(ctx context.Context, corporateID, userID int64, endpoint string) error
}

// Config is what the pages are told at start.
type Config struct {
	// PublicURL decides whether cookies are marked Secure, and is the one
	// origin a link may be spent from.
	PublicURL string
	Now       func() time.Time
	Events    *realtime.Hub // the chat's sockets: the hub the writes tell
	// ProbeLimit and ProbeBurst limit the unknown link tokens one client
	// address may try, per second and at once (0: no limit).
	ProbeLimit float64
	ProbeBurst int
	// SendLimit and SendBurst limit the messages one web session may send,
	// per second and at once (0: no limit).
	SendLimit float64
	SendBurst int
	// SignInLimit and SignInBurst limit the failed sign-ins to the web app,
	// per user and per client address, per second and at once (0: no
	// limit).
	SignInLimit float64
	SignInBurst int
	// Clients finds a request's client address (nil: its peer).
	Clients *clientaddr.Resolver
	// VAPIDPublic is the server's Web Push public key (base64url), which
	// browsers subscribe with; AllowPrivatePush lets a subscription's
	// endpoint be a private or loopback address (--allow-private-webhooks).
	VAPIDPublic      string
	AllowPrivatePush bool
	// SharedFailures keeps the limits on unknown tokens and failed
	// sign-ins in the installation's buckets (nil: this server's memory).
	SharedFailures ratelimit.Giver
}

// Handler serves /l/{token}, /w/{conversation} and the chat's assets.
type Handler struct {
	store  Store
	writes Writes
	cfg    Config
	probes *ratelimit.Failures[netip.Prefix] // unknown tokens tried, per client address
	sends  *ratelimit.Keyed[string]          // messages sent, per session cookie
	// signInFailures limits failed sign-ins to the web app.
	signInFailures struct {
		byUser *ratelimit.Failures[string]
		byAddr *ratelimit.Failures[netip.Prefix]
	}
	origin string // the public URL's origin, as browsers send it
	secure bool   // set the cookie's Secure flag (public URL is https)
	log    *slog.Logger
	mux    *http.ServeMux
	// views queues landing-page views for Run to record.
	views   chan imbee.LinkAttempt
	dropped atomic.Int64
}

// New returns the pages' handler.
func New(s Store, writes Writes, cfg Config, log *slog.Logger) *Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Events == nil {
		cfg.Events = realtime.NewHub()
	}
	h := &Handler{store: s, writes: writes, cfg: cfg,
		sends:  ratelimit.New[string](cfg.SendLimit, cfg.SendBurst, 0),
		origin: origin(cfg.PublicURL), secure: strings.HasPrefix(cfg.PublicURL, "https://"),
		log: log, mux: http.NewServeMux(), views: make(chan imbee.LinkAttempt, viewQueue)}
	if g := cfg.SharedFailures; g != nil {
		h.probes = ratelimit.NewSharedFailures(g, ratelimit.SpaceUnknownLinks, ratelimit.PrefixID, cfg.ProbeLimit, cfg.ProbeBurst, cfg.Now)
		h.signInFailures.byUser = ratelimit.NewSharedFailures(g, ratelimit.SpaceSignInsByUser, ratelimit.StringID, cfg.SignInLimit, cfg.SignInBurst, cfg.Now)
		h.signInFailures.byAddr = ratelimit.NewSharedFailures(g, ratelimit.SpaceSignInsByAddr, ratelimit.PrefixID, cfg.SignInLimit, cfg.SignInBurst, cfg.Now)
	} else {
		h.probes = ratelimit.NewFailures[netip.Prefix](cfg.ProbeLimit, cfg.ProbeBurst, 0)
		h.signInFailures.byUser = ratelimit.NewFailures[string](cfg.SignInLimit, cfg.SignInBurst, 0)
		h.signInFailures.byAddr = ratelimit.NewFailures[netip.Prefix](cfg.SignInLimit, cfg.SignInBurst, 0)
	}
	h.mux.HandleFunc("GET /l/{token}", h.landing) // GET also answers HEAD
	h.mux.HandleFunc("POST /l/{token}", h.spend)
	h.mux.HandleFunc("GET /w/{conversation}", h.chat)
	h.mux.HandleFunc("GET /w/{conversation}/messages", h.history)
	h.mux.HandleFunc("POST /w/{conversation}/messages", h.send)
	h.mux.HandleFunc("GET /w/{conversation}/socket", h.socket)
	h.mux.HandleFunc("POST /w/{conversation}/read", h.read)
	h.mux.HandleFunc("GET /app", h.appHome)
	h.mux.HandleFunc("POST /app", h.signIn)
	h.mux.HandleFunc("POST /app/signout", h.signOut)
	h.mux.HandleFunc("POST /app/chats", h.startChat)
	h.mux.HandleFunc("POST /app/push", h.pushSubscribe)
	h.mux.HandleFunc("POST /app/push/off", h.pushUnsubscribe)
	h.mux.HandleFunc("GET /app/sw.js", h.serviceWorker)
	h.mux.HandleFunc("GET /app/c/{conversation}", h.chat)
	h.mux.HandleFunc("GET /app/c/{conversation}/messages", h.history)
	h.mux.HandleFunc("POST /app/c/{conversation}/messages", h.send)
	h.mux.HandleFunc("GET /app/c/{conversation}/socket", h.socket)
	h.mux.HandleFunc("POST /app/c/{conversation}/read", h.read)
	h.mux.Handle("GET /assets/", http.FileServerFS(assets))
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.ended(w, r, http.StatusNotFound, "notfound")
	})
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// The URL holds a secret: keep it out of caches, other sites' referrers
	// and indexes. same-origin rather than no-referrer: under no-referrer a
	// browser sends "Origin: null" with the page's own form, and a null
	// Origin must stay refused (it is what a sandboxed frame elsewhere
	// sends); this server already knows its own URLs.
	hd.Set("Cache-Control", "no-store")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Robots-Tag", "noindex, nofollow")
	hd.Set("X-Content-Type-Options", "nosniff")
	// Scripts only from here (no inline code, no CDN); the chat's socket
	// only to this host.
	hd.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws://"+r.Host+" wss://"+r.Host+
		"; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.mux.ServeHTTP(w, r)
}

const cookieName = "imbee_session"

func (h *Handler) landing(w http.ResponseWriter, r *http.Request) {
	token, ok := h.linkToken(w, r)
	if !ok {
		return
	}
	p, err := h.store.LinkByToken(r.Context(), token)
	if err != nil {
		h.failLink(w, r, err)
		return
	}
	a := h.attempt(r)
	a.CorporateID, a.LinkID, a.At, a.Result = p.Link.CorporateID, p.Link.ID, h.cfg.Now(), "viewed"
	if st := p.Link.State(a.At); st != imbee.LinkActive {
		a.Result = st.String()
		h.recordView(a)
		h.linkEnded(w, r, st)
		return
	}
	h.recordView(a)
	h.render(w, http.StatusOK, "landing", newLandingPage(r, p))
}

// newLandingPage writes the landing's texts in Go: the most viewed page
// is rendered from a few plain actions (each printf and index in a
// template is a call through reflection, which cost more than the page's
// database read).
func newLandingPage(r *http.Request, p imbee.LinkPage) landingPage {
	pg := newPage(r, p.CorporateLanguage, func(t texts) string { return fmt.Sprintf(t["landing.title%"], p.BotName) })
	t := pg.T
	uses := fmt.Sprintf(t["landing.uses%"], p.Link.MaxUses-p.Link.Uses)
	if p.Link.MaxUses-p.Link.Uses == 1 {
		uses = t["landing.once"]
	}
	return landingPage{
		page:   pg,
		Invite: fmt.Sprintf(t["landing.invite%"], p.CorporateName, p.BotName),
		Open:   t["landing.open"],
		Uses:   uses + " " + fmt.Sprintf(t["landing.until%"], p.Link.DateLimit),
	}
}

// linkToken is the token in the request's path when it can name a link
// (imbee.CheckLinkToken); for one that cannot, it answers as for a link
// that does not exist, without looking it up.
func (h *Handler) linkToken(w http.ResponseWriter, r *http.Request) (string, bool) {
	token := r.PathValue("token")
	if err := imbee.CheckLinkToken(token); err != nil {
		h.failLink(w, r, err)
		return "", false
	}
	return token, true
}

func (h *Handler) spend(w http.ResponseWriter, r *http.Request) {
	if h.crossSite(r) {
		h.ended(w, r, http.StatusForbidden, "crosslink")
		return
	}
	token, ok := h.linkToken(w, r)
	if !ok {
		return
	}
	sess, st, err := h.writes.SpendLink(r.Context(), token, h.attempt(r))
	if err != nil {
		h.failLink(w, r, err)
		return
	}
	if st != imbee.LinkActive {
		h.linkEnded(w, r, st)
		return
	}
	// One cookie per conversation, scoped to its chat page, so that links
	// to several bots can be open side by side.
	http.SetCookie(w, &http.Cookie{
		Name:     cookieName,
		Value:    sess.Token,
		Path:     "/w/" + sess.ConversationID,
		Expires:  sess.ExpiresAt,
		HttpOnly: true,
		Secure:   h.secure,
		SameSite: http.SameSiteLaxMode,
	})
	http.Redirect(w, r, "/w/"+sess.ConversationID, http.StatusSeeOther)
}

// viewer is whom a chat is shown to: the web session a link opened (its
// one conversation), or a person signed in to the app (any conversation of
// their user). Both chats run the handlers below.
type viewer struct {
	corporateID    int64
	me             string // the user's idsha
	conversationID string
	cookie         string // the session cookie's value: the send limit's key
	page           chatPage
	grant          realtime.Grant // what the chat's socket is opened with
}

// Why a request has no viewer.
const (
	endedNone    = "none"    // no session cookie
	endedSession = "ended"   // its session ended (or is of another conversation)
	endedUnknown = "unknown" // the app's user is no member of the conversation
)

// viewer finds the viewer of the request's chat: an app chat's under
// /app/, a link's otherwise; withPage fills its page too (the chat page,
// not its calls). ended says why there is none.
func (h *Handler) viewer(r *http.Request, withPage bool) (viewer, string, error) {
	if strings.HasPrefix(r.URL.Path, "/app/") {
		return h.appViewer(r, withPage)
	}
	return h.linkViewer(r)
}

// linkViewer is the web session of the request's cookie for the
// conversation in its path.
func (h *Handler) linkViewer(r *http.Request) (v viewer, ended string, err error) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return v, endedNone, nil
	}
	sess, err := h.store.SessionByToken(r.Context(), c.Value)
	if isNotFound(err) || err == nil && sess.ConversationID != r.PathValue("conversation") {
		return v, endedSession, nil
	}
	if err != nil {
		return v, "", err
	}
	return viewer{
		corporateID: sess.CorporateID, me: sess.UserIDSha, conversationID: sess.ConversationID, cookie: c.Value,
		page: chatPage{page: newPage(r, sess.CorporateLanguage, func(texts) string { return sess.BotName + " · " + sess.CorporateName }),
			Heading: sess.BotName, CorporateName: sess.CorporateName,
			Me: sess.UserIDSha, ConversationID: sess.ConversationID, Base: "/w/" + sess.ConversationID,
			Until: sess.ExpiresAt.UTC().Format("2006-01-02 15:04 MST")},
		grant: realtime.Grant{CorporateID: sess.CorporateID, ConversationID: sess.ConversationID,
			Key: "session:" + strconv.FormatInt(sess.ID, 10), LinkID: sess.LinkID, UserID: sess.UserID, BotID: sess.BotID,
			Expires: sess.ExpiresAt},
	}, "", nil
}

func (h *Handler) chat(w http.ResponseWriter, r *http.Request) {
	v, ended, err := h.viewer(r, true)
	app := strings.HasPrefix(r.URL.Path, "/app/")
	switch {
	case err != nil:
		h.fail(w, r, err)
		return
	case app && (ended == endedNone || ended == endedSession):
		http.Redirect(w, r, "/app", http.StatusSeeOther) // sign in (again)
		return
	case ended == endedUnknown:
		h.ended(w, r, http.StatusNotFound, "nochat")
		return
	case ended == endedNone:
		h.ended(w, r, http.StatusUnauthorized, "openlink")
		return
	case ended != "":
		h.ended(w, r, http.StatusGone, "sessionend")
		return
	}
	h.render(w, http.StatusOK, "chat", v.page)
}

// jsonViewer is viewer for the chat's JSON calls: a missing, ended or
// unknown one answers 401, 410 or 404 with {"error": …}.
func (h *Handler) jsonViewer(w http.ResponseWriter, r *http.Request) (viewer, bool) {
	v, ended, err := h.viewer(r, false)
	switch {
	case err != nil:
		h.log.Error("chat session", "err", err)
		writeError(w, http.StatusInternalServerError, "something went wrong")
	case ended == endedNone:
		writeError(w, http.StatusUnauthorized, "sign in or open your link again")
	case ended == endedUnknown:
		writeError(w, http.StatusNotFound, "no such chat")
	case ended != "":
		writeError(w, http.StatusGone, "this session has ended")
	default:
		return v, true
	}
	return v, false
}

// history is GET /w/{conversation}/messages[?before=SEQ]: the latest 50
// messages, or the 50 before SEQ, oldest first.
func (h *Handler) history(w http.ResponseWriter, r *http.Request) {
	v, ok := h.jsonViewer(w, r)
	if !ok {
		return
	}
	p := imbee.MessagePage{Limit: 50}
	if v := r.URL.Query().Get("before"); v != "" {
		n, ok := imbee.ParseSeq(v)
		if !ok {
			writeError(w, http.StatusBadRequest, "before must be a seq")
			return
		}
		p.Before = &n
	}
	ms, more, last, _, err := h.store.Messages(r.Context(), v.corporateID, v.conversationID, v.me, p)
	if err != nil {
		h.log.Error("chat history", "err", err)
		writeError(w, http.StatusInternalServerError, "something went wrong")
		return
	}
	out := []*realtime.MessageView{}
	for _, m := range ms {
		out = append(out, realtime.View(m))
	}
	if p.Before != nil {
		slices.Reverse(out) // pages before a seq come newest first
	}
	writeJSON(w, http.StatusOK, historyResponse{HasMore: more, LastSeq: last, Messages: out})
}

// send is POST /w/{conversation}/messages {"text", "clientMsgId"}. Only
// JSON is taken, so a form on another site cannot post here (and the
// cookie is SameSite=Lax).
func (h *Handler) send(w http.ResponseWriter, r *http.Request) {
	v, ok := h.jsonViewer(w, r)
	if !ok {
		return
	}
	// The cookie's value is the key: it never leaves this process.
	if wait, ok := h.sends.Allow(v.cookie); !ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		writeError(w, http.StatusTooManyRequests, "too many messages: wait a moment")
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send JSON")
		return
	}
	var req struct {
		Text        string `json:"text"`
		ClientMsgID string `json:"clientMsgId"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "send {\"text\": …}")
		return
	}
	mr, err := imbee.NewMessageRequest(v.conversationID, req.Text, req.ClientMsgID)
	if err != nil {
		writeError(w, http.StatusBadRequest, sendError(err))
		return
	}
	mr.CorporateID, mr.Sender = v.corporateID, v.me
	m, existed, err := h.writes.SendMessage(r.Context(), mr)
	if err != nil {
		h.log.Error("chat send", "err", err)
		writeError(w, http.StatusInternalServerError, "the message was not sent: try again")
		return
	}
	writeJSON(w, http.StatusOK, sendResponse{Message: realtime.View(m), PreviouslySent: existed})
}

// read is POST …/read {"seq": N}: the viewer has read the conversation up
// to N (a mark only moves forward, and never past the last message). JSON
// only, like send.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) {
	v, ok := h.jsonViewer(w, r)
	if !ok {
		return
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "send JSON")
		return
	}
	var req struct {
		Seq *int64 `json:"seq"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil || req.Seq == nil || *req.Seq < 0 {
		writeError(w, http.StatusBadRequest, "send {\"seq\": N}, N ≥ 0")
		return
	}
	read, err := h.writes.MarkRead(r.Context(), v.corporateID, v.conversationID, v.me, *req.Seq)
	if err != nil {
		h.log.Error("chat read", "err", err)
		writeError(w, http.StatusInternalServerError, "something went wrong")
		return
	}
	writeJSON(w, http.StatusOK, readResponse{ReadSeq: read})
}

// sendError is what the chat is told of a message the domain's rule
// refused: its clientMsgId by the rule's message, its text in words for
// people.
func sendError(err error) string {
	var e *imbee.Error
	if errors.As(err, &e) && e.Field == imbee.SubjectClientMsgID {
		return e.Named(func(string) string { return "clientMsgId" }).Message
	}
	return fmt.Sprintf("a message has 1 to %d characters", imbee.MaxMessageLength)
}

// socket is GET /w/{conversation}/socket?after=SEQ: the chat's live
// updates, for the session's user, until the session ends (expiry, or its
// link, its user's links, its bot revoked, or its corporate disabled:
// close code 1008). At most Events.MaxSockets are open per session, on
// this server (429 beyond).
func (h *Handler) socket(w http.ResponseWriter, r *http.Request) {
	// Read before the session is: a revocation after it is applied to
	// this socket, even one applied before it subscribes.
	since := h.cfg.Events.Since(r.Context())
	v, ok := h.jsonViewer(w, r)
	if !ok {
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	g := v.grant
	g.Since = since
	sub, err := h.cfg.Events.Subscribe(g)
	if errors.Is(err, realtime.ErrTooManySockets) {
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusTooManyRequests, "this chat is open in too many windows: close one and try again")
		return
	}
	realtime.Serve(w, r, h.cfg.Events, sub, h.store, h.log, max(after, 0))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// writeError answers a JSON call's failure: {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorResponse{Error: msg})
}

func (h *Handler) linkEnded(w http.ResponseWriter, r *http.Request, st imbee.LinkState) {
	switch st {
	case imbee.LinkUsedUp:
		h.ended(w, r, http.StatusGone, "usedup")
	case imbee.LinkExpired:
		h.ended(w, r, http.StatusGone, "expired")
	default:
		h.ended(w, r, http.StatusGone, "withdrawn")
	}
}

// failLink answers a link request that failed. An unknown token counts
// against the client's probe limit, and past it is answered 429: the token
// is always looked up first, so a real link is never refused, even to an
// address that shares a prober's (a NAT, a proxy that is not trusted).
func (h *Handler) failLink(w http.ResponseWriter, r *http.Request, err error) {
	var e *imbee.Error
	if errors.As(err, &e) && e.Code == imbee.CodeNotFound {
		wait, ok, lerr := h.probes.Take(r.Context(), h.cfg.Clients.Key(r))
		if lerr != nil {
			h.log.Warn("count an unknown link token", "err", lerr)
		}
		if !ok {
			w.Header().Set("Retry-After", retryAfter(wait))
			h.ended(w, r, http.StatusTooManyRequests, "probes")
			return
		}
	}
	h.fail(w, r, err)
}

// retryAfter is a Retry-After value: whole seconds, at least 1.
func retryAfter(wait time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(wait.Seconds()))))
}

// crossSite says whether a request comes from a page of another site, as
// the browser tells (Sec-Fetch-Site, Origin): spending a link from there is
// login CSRF, a session of the sender's link in the victim's browser.
// Requests without those headers (older browsers, scripts) pass.
func (h *Handler) crossSite(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return true
	}
	if o, sent := r.Header["Origin"]; sent && (len(o) != 1 || origin(o[0]) != h.origin) {
		return true
	}
	return false
}

// origin is a URL's origin as browsers serialise it: scheme://host[:port],
// lower case, without the scheme's default port. Anything else, "null"
// included, gives "" (which matches no public URL).
func origin(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" || u.Scheme != "http" && u.Scheme != "https" {
		return ""
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if port := u.Port(); scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return scheme + "://" + host
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var e *imbee.Error
	if errors.As(err, &e) && e.Code == imbee.CodeNotFound {
		h.ended(w, r, http.StatusNotFound, "nolink")
		return
	}
	h.log.Error("link page", "err", err)
	h.ended(w, r, http.StatusInternalServerError, "error")
}

// ended answers with a page saying why there is nothing to show; key
// names its title and message among the strings.
func (h *Handler) ended(w http.ResponseWriter, r *http.Request, status int, key string) {
	p := newPage(r, "", text(key+".title"))
	h.render(w, status, "ended", endedPage{page: p, Message: p.T[key+".message"], Ask: asksForLink[key]})
}

// asksForLink are the endings that a new link would cure.
var asksForLink = map[string]bool{"usedup": true, "expired": true, "withdrawn": true, "sessionend": true}

// bufs holds render buffers: a page is rendered whole before it is sent, so
// that a failure can still answer 500 and the response has a length.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (h *Handler) render(w http.ResponseWriter, status int, name string, data any) {
	buf := bufs.Get().(*bytes.Buffer)
	defer func() { buf.Reset(); bufs.Put(buf) }()
	if err := pages.ExecuteTemplate(buf, name, data); err != nil {
		h.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Package api serves the third-party REST API: routes, the response
// envelope, and the checks every call goes through, in the spec's order:
// route, Authorization, X-WOOS-KEY, rate limit, Content-Type, body,
// parameters, references.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/clientaddr"
	"github.com/imbee/imbee/internal/ratelimit"
	"github.com/imbee/imbee/internal/realtime"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 1 << 20

// Store is what the handlers read, and the ledger of Idempotency-Keys.
type Store interface {
	Authenticate(ctx context.Context, auth, corporateToken string) (imbee.Corporate, error)
	AuthenticateUser(ctx context.Context, auth, apikey string) (imbee.Corporate, imbee.User, error)
	KnownUser(ctx context.Context, auth, corporateToken, uniqueID string, dev *imbee.Device) (imbee.Corporate, imbee.User, bool, error)
	KnownChat(ctx context.Context, auth, apikey, contact string) (imbee.Corporate, imbee.User, imbee.Conversation, bool, error)
	LinkStatus(ctx context.Context, corporateID int64, token string) (imbee.Link, []imbee.Delivery, error)
	LinkAttempts(ctx context.Context, corporateID, linkID int64) ([]imbee.LinkAttempt, error)
	Messages(ctx context.Context, corporateID int64, conversationID, member string, p imbee.MessagePage) ([]imbee.Message, bool, int64, int64, error)
	realtime.History // a socket's catch-up
	Chats(ctx context.Context, corporateID int64, member string, limit int) ([]imbee.ChatSummary, error)
	IsMember(ctx context.Context, corporateID int64, conversationID, idsha string) (bool, error)
	BotByIDSha(ctx context.Context, corporateID int64, idsha string) (imbee.Bot, error)
	idempotencyLedger
}

// Writes are the API's changes, each with what follows its commit:
// sockets told, workers woken (internal/writes).
type Writes interface {
	RegisterUser(ctx context.Context, corporateID int64, uniqueID string, dev *imbee.Device) (imbee.User, bool, error)
	RegisterUsers(ctx context.Context, corporateID int64, specs []imbee.UserSpec) ([]imbee.Registration, error)
	RotateUser(ctx context.Context, corporateID int64, uniqueID string) (imbee.User, error)
	IssueLink(ctx context.Context, req imbee.LinkRequest) (imbee.Link, error)
	RevokeLink(ctx context.Context, corporateID int64, token string) (imbee.Link, error)
	RevokeUserLinks(ctx context.Context, corporateID int64, uniqueID string) (int64, error)
	CreateConversation(ctx context.Context, req imbee.ChatRequest) (imbee.Conversation, error)
	SendMessage(ctx context.Context, req imbee.MessageRequest) (imbee.Message, bool, error)
	MarkRead(ctx context.Context, corporateID int64, conversationID, member string, seq int64) (int64, error)
	SetBotWebhook(ctx context.Context, corporateID int64, botIDSha, url string) (string, error)
}

// Config is what the API is told at start.
type Config struct {
	PublicURL string // base of link URLs, without a trailing slash
	// RateLimit is each corporate's sustained requests per second (0: no
	// limit), RateBurst how many it may send at once above that.
	RateLimit float64
	RateBurst int
	// UserRateShare is the share of its corporate's rate limit (and burst)
	// one user's apikey may use on the user-level calls (0: no own limit).
	UserRateShare float64
	// AuthFailLimit and AuthFailBurst limit the failed authentications one
	// client address may make, per second and at once (0: no limit).
	AuthFailLimit float64
	AuthFailBurst int
	// Limits keeps the corporates' and users' rate limit buckets: the
	// installation's, shared by its servers (nil: this server's memory).
	Limits Limits
	// Clients finds a request's client address (nil: its peer).
	Clients *clientaddr.Resolver
	// RecipientLimit caps the links a corporate sends to one address or
	// number per hour (0: no cap).
	RecipientLimit int
	// IdempotencyTTL is how long an Idempotency-Key is kept.
	IdempotencyTTL time.Duration
	// Now is the server's clock: a link's end of day, its state.
	Now func() time.Time
	// Events are the API's sockets: the hub the writes tell.
	Events *realtime.Hub
	// Observe, when set, is told of every request once answered, as the
	// access log records it: route, HTTP status, the envelope's code
	// (envelope false: the answer was a page, an asset, a socket…) and
	// how long it took.
	Observe func(route string, status int, code imbee.Code, envelope bool, took time.Duration)
	// Ready says whether the server can serve (GET /readyz); its error is
	// an *imbee.Error whose message says why not.
	Ready func(ctx context.Context) error
	// Metrics, when set, is served at /metrics to clients in MetricsAllow.
	Metrics      http.Handler
	MetricsAllow []netip.Prefix
	// AllowPrivateWebhooks lets bots' webhooks point at loopback and
	// private addresses (--allow-private-webhooks).
	AllowPrivateWebhooks bool
	// SharedFailures keeps the failed authentications' limit in the
	// installation's buckets (nil: this server's memory).
	SharedFailures ratelimit.Giver
	Log            *slog.Logger
}

// Limits are the buckets of the corporates' rate limits and their users'
// shares. TakeRate takes one request from the bucket of (corporateID, userID)
// (userID 0: the corporate's own), which holds burst requests and gets
// perSecond back a second, and restarts full when either changes. When it
// refuses, wait is how long until a request would be taken; remaining is
// what the bucket holds after the call.
type Limits interface {
	TakeRate(ctx context.Context, corporateID, userID int64, perSecond float64, burst int) (wait time.Duration, ok bool, remaining float64, err error)
}

// localLimits are one server's buckets, in its memory: the corporates'
// apart from their users', so that a flood of users never evicts a
// corporate's.
type localLimits struct {
	corporates, users *ratelimit.Keyed[[2]int64]
}

func newLocalLimits() localLimits {
	return localLimits{corporates: ratelimit.NewPerKey[[2]int64](0), users: ratelimit.NewPerKey[[2]int64](0)}
}

func (l localLimits) TakeRate(_ context.Context, corporateID, userID int64, perSecond float64, burst int) (time.Duration, bool, float64, error) {
	k := l.users
	if userID == 0 {
		k = l.corporates
	}
	wait, ok, remaining := k.AllowWith([2]int64{corporateID, userID}, perSecond, burst)
	return wait, ok, remaining, nil
}

// Server is the API's HTTP handler.
type Server struct {
	store     Store
	writes    Writes
	cfg       Config
	mux       *http.ServeMux
	authFails *ratelimit.Failures[netip.Prefix] // client address
}

// NewHandler returns the whole HTTP surface: the API, and pages (the human
// link and chat pages, mounted at /l/ and /w/, and the web app at /app),
// behind the access log. The
// handlers read from store and change through writes.
func NewHandler(store Store, writes Writes, pages http.Handler, cfg Config, log *slog.Logger) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	if cfg.Events == nil {
		cfg.Events = realtime.NewHub()
	}
	if cfg.Limits == nil {
		cfg.Limits = newLocalLimits()
	}
	cfg.Log = log
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Server{store: store, writes: writes, cfg: cfg, mux: http.NewServeMux(),
		authFails: ratelimit.NewFailures[netip.Prefix](cfg.AuthFailLimit, cfg.AuthFailBurst, 0)}
	if cfg.SharedFailures != nil {
		s.authFails = ratelimit.NewSharedFailures(cfg.SharedFailures, ratelimit.SpaceAuthFailures, ratelimit.PrefixID, cfg.AuthFailLimit, cfg.AuthFailBurst, cfg.Now)
	}

	// The whole API.
	s.handle("/third_parties/user/new", "POST", s.creating(corporateKey, s.userNew, s.userRepeat))
	s.handle("/third_parties/user/bulk", "POST", s.creating(corporateKey, s.userBulk, nil))
	s.handle("/third_parties/user/rotate", "POST", s.creating(corporateKey, s.userRotate, nil))
	s.handle("/token/new", "POST", s.creating(corporateKey, s.tokenNew, nil))
	s.handle("/token/status", "POST", s.endpoint(corporateKey, s.tokenStatus, nil))
	s.handle("/token/revoke", "POST", s.creating(corporateKey, s.tokenRevoke, nil))
	s.handle("/chat/create", "POST", s.creating(userKey, s.chatCreate, s.chatRepeat))
	s.handle("/chat/message/send", "POST", s.creating(userKey, s.messageSend, nil))
	s.handle("/chat/message/list", "POST", s.endpoint(userKey, s.messageList, nil))
	s.handle("/chat/list", "POST", s.endpoint(userKey, s.chatList, nil))
	s.handle("/chat/read", "POST", s.endpoint(userKey, s.chatRead, nil))
	s.handle("/bot/message/send", "POST", s.creating(corporateKey, s.botMessageSend, nil))
	s.handle("/bot/webhook", "POST", s.creating(corporateKey, s.botWebhook, nil))
	s.mux.HandleFunc("/chat/socket", s.socket)
	// The contract of all of the above, docs/openapi.json.
	s.mux.Handle("/openapi.json", named("/openapi.json", http.HandlerFunc(serveOpenAPI)))

	s.mux.Handle("/l/", named("/l/{token}", pages))
	s.mux.Handle("/w/", named("/w/{conversation}", pages))
	s.mux.Handle("/assets/", named("/assets/", pages))
	s.mux.Handle("/app", named("/app", pages))
	s.mux.Handle("/app/", named("/app/…", pages))
	// Browsers ask for it on every page: no icon, and no 404 in their console.
	s.mux.Handle("/favicon.ico", named("/favicon.ico", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	s.mountOps()
	s.mux.Handle("/", http.HandlerFunc(s.notFound))
	return accessLog(log, cfg.Clients, cfg.Observe, s.mux)
}

// notFound is the answer to an unknown path.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	info(r).code, info(r).envelope = imbee.CodeGeneric, true
	writeEnvelope(w, http.StatusNotFound, time.Now(), imbee.CodeGeneric, "no such endpoint: see the API reference", nil)
}

// handle routes path to h for one method; other methods get 405 in the
// envelope, with Allow.
func (s *Server) handle(path, method string, h http.Handler) {
	s.mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.serveMethod(path, method, w, r, h.ServeHTTP)
	}))
}

// serveMethod serves one request of a route of one method.
func (s *Server) serveMethod(path, method string, w http.ResponseWriter, r *http.Request, h http.HandlerFunc) {
	info(r).route, info(r).envelope = path, true
	if r.Method != method {
		info(r).code = imbee.CodeGeneric
		w.Header().Set("Allow", method)
		writeEnvelope(w, http.StatusMethodNotAllowed, time.Now(), imbee.CodeGeneric, "method not allowed: use "+method, nil)
		return
	}
	h(w, r)
}

func named(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info(r).route = route
		h.ServeHTTP(w, r)
	})
}

// keyKind says what X-WOOS-KEY carries on an endpoint.
type keyKind int

const (
	corporateKey keyKind = iota // the corporate token
	userKey                     // a user's apikey
)

// call is an authenticated API request.
type call struct {
	checked   bool // the credentials have been checked
	corporate imbee.Corporate
	user      imbee.User // set on userKey endpoints
	body      []byte     // a JSON object
}

// A repeatFunc answers an integrator's retry, the most common request,
// from the same database read that checks the credentials: one statement
// instead of two. It is given a small body that may not be JSON at all,
// and returns nil, nil when its parameters are not valid (the full path
// says why). Once it has checked the credentials it sets c.checked (and
// c's corporate and user); it returns the response when the answer is
// already stored, or nil when the request needs the full path.
type repeatFunc func(ctx context.Context, auth, key string, c *call) (any, error)

// maxRepeatBody is the largest body a repeat is tried on. The repeat reads
// and decodes its body before the credentials are known: bounded so, that
// costs a stranger no more than the lookup does. Retries are small (a
// user's id and device, a chat's one contact); larger bodies take the full
// path.
const maxRepeatBody = 4 << 10

// endpoint runs the checks shared by every API call, in the spec's order,
// then h, and writes h's result or error in the envelope. With repeat set,
// a small body is decoded before the credentials are checked, so that a
// repeat can be answered from one read; the order in which failures are
// answered stays the spec's. Whatever the body, a request with wrong
// credentials costs at most reading maxRepeatBody bytes of it and one
// lookup: the rest is read, and checked to be JSON, only once the
// credentials are good.
func (s *Server) endpoint(key keyKind, h func(ctx context.Context, c *call) (any, error), repeat repeatFunc) http.Handler {
	return s.serveCall(key, h, repeat, false)
}

// creating is endpoint for a call that creates or changes something: it
// also honours Idempotency-Key (see idempotent).
func (s *Server) creating(key keyKind, h func(ctx context.Context, c *call) (any, error), repeat repeatFunc) http.Handler {
	return s.serveCall(key, h, repeat, true)
}

func (s *Server) serveCall(key keyKind, h func(ctx context.Context, c *call) (any, error), repeat repeatFunc, keyed bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		c := &call{}
		client, ok := s.authAllowed(w, r, start)
		if !ok {
			return
		}
		auth := bearer(r.Header.Get("Authorization"))
		woos := strings.TrimSpace(r.Header.Get("X-WOOS-KEY"))
		jsonBody := isJSON(r.Header.Get("Content-Type"))
		body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		var bodyErr error
		read := false // c.body is the whole body
		var resp any
		var err error
		_, hasKey := r.Header[idempotencyHeader]
		useKey := keyed && hasKey
		// With a key, the stored answer (or the key's conflict) comes first.
		if repeat != nil && jsonBody && !useKey {
			c.body, bodyErr = readHead(body)
			read = bodyErr == nil && len(c.body) <= maxRepeatBody
			if read {
				if resp, err = repeat(ctx, auth, woos, c); err != nil {
					s.authFailed(ctx, client, err)
					writeError(w, r, start, err)
					return
				}
			}
		}
		if !c.checked {
			if key == corporateKey {
				c.corporate, err = s.store.Authenticate(ctx, auth, woos)
			} else {
				c.corporate, c.user, err = s.store.AuthenticateUser(ctx, auth, woos)
			}
			if err != nil {
				s.authFailed(ctx, client, err)
				writeError(w, r, start, err)
				return
			}
		}
		info(r).corporateID = c.corporate.ID
		// A user's own share first: what it refuses does not count
		// against the corporate's limit, so one apikey cannot spend it.
		if err := s.allowUser(ctx, w, c); err != nil {
			writeError(w, r, start, err)
			return
		}
		if err := s.allow(ctx, w, c.corporate); err != nil {
			writeError(w, r, start, err)
			return
		}
		if !jsonBody {
			writeError(w, r, start, imbee.Errorf(imbee.CodeContentType, "Content-Type must be application/json"))
			return
		}
		if bodyErr == nil && !read {
			c.body, bodyErr = readRest(body, c.body, r.ContentLength)
		}
		// A body a repeat has answered from was decoded whole into an
		// object: valid already.
		if bodyErr == nil && resp == nil {
			bodyErr = checkObject(c.body)
		}
		if bodyErr != nil {
			writeError(w, r, start, bodyErr)
			return
		}
		if useKey {
			s.idempotent(w, r, start, key, c, h)
			return
		}
		if resp == nil {
			if resp, err = h(ctx, c); err != nil {
				writeError(w, r, start, err)
				return
			}
		}
		writeEnvelope(w, http.StatusOK, start, imbee.CodeOK, "Ok", resp)
	})
}

// bearer accepts the raw token or "Bearer <token>".
func bearer(h string) string {
	h = strings.TrimSpace(h)
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return h
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// readHead reads a body's first maxRepeatBody+1 bytes, as they are: all of
// it when it is no longer than maxRepeatBody.
func readHead(body io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(body, maxRepeatBody+1))
	return b, bodyError(err)
}

// readRest reads the rest of a body (at most MaxBodyBytes in all) whose
// first bytes, head, were read already. The caller is authenticated, so the
// length it declares may size the buffer.
func readRest(body io.Reader, head []byte, declared int64) ([]byte, error) {
	size := int64(len(head)) + bytes.MinRead
	if declared > 0 {
		size = max(size, min(declared, MaxBodyBytes)+bytes.MinRead)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size))
	buf.Write(head)
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), bodyError(err)
}

func bodyError(err error) error {
	if err == nil {
		return nil
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return &imbee.Error{Code: imbee.CodeBody, Message: "body is larger than 1 MiB", Err: err}
	}
	return &imbee.Error{Code: imbee.CodeBody, Message: "could not read the body", Err: err}
}

// checkObject says whether a body is a JSON object.
func checkObject(b []byte) error {
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return imbee.Errorf(imbee.CodeBody, "body must be a JSON object")
	}
	return nil
}

// authAllowed turns away, before anything costly, a client address that
// has failed authentication too often (answered code 8). client is the
// address's key, for authFailed.
func (s *Server) authAllowed(w http.ResponseWriter, r *http.Request, start time.Time) (client netip.Prefix, ok bool) {
	if s.authFails == nil {
		return client, true
	}
	client = s.cfg.Clients.Key(r)
	if wait := s.authFails.Wait(client); wait > 0 {
		secs := retryAfter(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeError(w, r, start, imbee.Errorf(imbee.CodeRateLimited, "too many failed authentications from this address: retry after %d s", secs))
		return client, false
	}
	return client, true
}

// authFailed counts a failed authentication (code 2 or 3) against the
// client address's limit.
func (s *Server) authFailed(ctx context.Context, client netip.Prefix, err error) {
	if s.authFails == nil {
		return
	}
	var e *imbee.Error
	if errors.As(err, &e) && (e.Code == imbee.CodeAuth || e.Code == imbee.CodeCorporateKey) {
		if _, _, err := s.authFails.Take(ctx, client); err != nil {
			s.cfg.Log.Warn("count a failed authentication", "err", err)
		}
	}
}

// decode unmarshals a JSON object into v; a value of the wrong type is a
// parameter error naming the field.
func decode(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if i := strings.IndexByte(field, '.'); i >= 0 {
			field = field[:i]
		}
		return imbee.ParamError(field, "%s must be %s", field, kindName(te.Type.Kind().String()))
	}
	if err != nil {
		return imbee.Errorf(imbee.CodeBody, "body must be a JSON object")
	}
	return nil
}

func kindName(kind string) string {
	switch {
	case kind == "string":
		return "a string"
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "an integer"
	case kind == "slice":
		return "an array"
	case kind == "struct", kind == "map":
		return "an object"
	}
	return "of another type"
}

// allow applies the corporate's rate limit (its own, or the server's) and
// sets the X-RateLimit-* headers; when it refuses, it sets Retry-After and
// returns the rate limit's error. X-RateLimit-Limit is the bucket's size
// (the burst), -Remaining the requests that may be sent at once now,
// -Reset the seconds until the bucket is full again.
func (s *Server) allow(ctx context.Context, w http.ResponseWriter, c imbee.Corporate) error {
	limit, burst := s.corporateLimit(c)
	if limit <= 0 {
		return nil
	}
	wait, ok, tokens, err := s.cfg.Limits.TakeRate(ctx, c.ID, 0, limit, burst)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(burst))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, int(tokens))))
	h.Set("X-RateLimit-Reset", strconv.Itoa(int(math.Ceil((float64(burst)-tokens)/limit))))
	if ok {
		return nil
	}
	secs := retryAfter(wait)
	h.Set("Retry-After", strconv.Itoa(secs))
	return imbee.Errorf(imbee.CodeRateLimited, "too many requests: retry after %d s", secs)
}

// retryAfter is a wait in whole seconds, at least 1.
func retryAfter(wait time.Duration) int {
	return max(1, int(math.Ceil(wait.Seconds())))
}

// corporateLimit is the corporate's rate limit (its own, or the server's)
// and burst; a limit <= 0 is none.
func (s *Server) corporateLimit(c imbee.Corporate) (limit float64, burst int) {
	limit, burst = s.cfg.RateLimit, s.cfg.RateBurst
	if c.RateLimit != nil {
		limit = *c.RateLimit
	}
	if c.RateBurst != nil {
		burst = *c.RateBurst
	}
	return limit, max(burst, 1)
}

// allowUser applies a user-level call's share of its corporate's rate
// limit to its apikey's user; when it refuses, the X-RateLimit-* headers
// describe the user's bucket, and it sets Retry-After and returns the rate
// limit's error.
func (s *Server) allowUser(ctx context.Context, w http.ResponseWriter, c *call) error {
	if c.user.ID == 0 || s.cfg.UserRateShare <= 0 {
		return nil
	}
	limit, burst := s.corporateLimit(c.corporate)
	if limit <= 0 {
		return nil
	}
	limit, burst = limit*s.cfg.UserRateShare, max(1, int(math.Ceil(float64(burst)*s.cfg.UserRateShare)))
	wait, ok, tokens, err := s.cfg.Limits.TakeRate(ctx, c.corporate.ID, c.user.ID, limit, burst)
	if err != nil || ok {
		return err
	}
	secs := retryAfter(wait)
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(burst))
	h.Set("X-RateLimit-Remaining", "0")
	h.Set("X-RateLimit-Reset", strconv.Itoa(int(math.Ceil((float64(burst)-tokens)/limit))))
	h.Set("Retry-After", strconv.Itoa(secs))
	return imbee.Errorf(imbee.CodeRateLimited, "too many requests with this apikey: retry after %d s", secs)
}

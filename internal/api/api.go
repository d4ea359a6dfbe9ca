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
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/realtime"
)

// MaxBodyBytes is the largest request body accepted.
const MaxBodyBytes = 1 << 20

// Store is what the API needs from storage.
type Store interface {
	Authenticate(ctx context.Context, auth, corporateToken string) (imbee.Corporate, error)
	AuthenticateUser(ctx context.Context, auth, apikey string) (imbee.Corporate, imbee.User, error)
	KnownUser(ctx context.Context, auth, corporateToken, uniqueID string, dev *imbee.Device) (imbee.Corporate, imbee.User, bool, error)
	RegisterUser(ctx context.Context, corporateID int64, uniqueID string, dev *imbee.Device) (imbee.User, bool, error)
	RegisterUsers(ctx context.Context, corporateID int64, specs []imbee.UserSpec) ([]imbee.Registration, error)
	IssueLink(ctx context.Context, req imbee.LinkRequest) (imbee.Link, error)
	LinkStatus(ctx context.Context, corporateID int64, token string) (imbee.Link, []imbee.Delivery, error)
	LinkAttempts(ctx context.Context, linkID int64) ([]imbee.LinkAttempt, error)
	RevokeLink(ctx context.Context, corporateID int64, token string) (imbee.Link, error)
	KnownChat(ctx context.Context, auth, apikey, contact string) (imbee.Corporate, imbee.User, imbee.Conversation, bool, error)
	CreateConversation(ctx context.Context, req imbee.ChatRequest) (imbee.Conversation, error)
	SendMessage(ctx context.Context, req imbee.MessageRequest) (imbee.Message, bool, error)
	Messages(ctx context.Context, corporateID int64, conversationID, member string, p imbee.MessagePage) ([]imbee.Message, bool, int64, int64, error)
	MessagesAfter(ctx context.Context, corporateID int64, conversationID string, seq int64, limit int) ([]imbee.Message, error)
	MarkRead(ctx context.Context, corporateID int64, conversationID, member string, seq int64) (int64, error)
	Chats(ctx context.Context, corporateID int64, member string, limit int) ([]imbee.ChatSummary, error)
	IsMember(ctx context.Context, corporateID int64, conversationID, idsha string) (bool, error)
	BotByIDSha(ctx context.Context, corporateID int64, idsha string) (imbee.Bot, error)
	SetBotWebhook(ctx context.Context, corporateID int64, botIDSha, url string) (string, error)
	RotateUser(ctx context.Context, corporateID int64, uniqueID string) (imbee.User, error)
	ClaimIdempotencyKey(ctx context.Context, k imbee.IdempotencyKey, ttl time.Duration) ([]byte, error)
	CompleteIdempotencyKey(ctx context.Context, k imbee.IdempotencyKey, response []byte) error
	ReleaseIdempotencyKey(ctx context.Context, k imbee.IdempotencyKey) error
	RevokeUserLinks(ctx context.Context, corporateID int64, uniqueID string) (int64, error)
}

// Config is what the API is told at start.
type Config struct {
	PublicURL string // base of link URLs, without a trailing slash
	// RateLimit is each corporate's sustained requests per second (0: no
	// limit), RateBurst how many it may send at once above that.
	RateLimit float64
	RateBurst int
	// RecipientLimit caps the links a corporate sends to one address or
	// number per hour (0: no cap).
	RecipientLimit int
	// IdempotencyTTL is how long an Idempotency-Key is kept.
	IdempotencyTTL time.Duration
	Now            func() time.Time
	// LinkIssued is called after a /token/new has committed its deliveries.
	LinkIssued func()
	// MessageSent is called after a new message (and its webhook events)
	// has been committed.
	MessageSent func()
	// Events tells sockets of new messages and read marks.
	Events *realtime.Hub
	// Observe, when set, is told of every request once answered, as the
	// access log records it: route, HTTP status, the envelope's code
	// (envelope false: the answer was a page, an asset, a socket…) and
	// how long it took.
	Observe func(route string, status int, code imbee.Code, envelope bool, took time.Duration)
	// Ready says whether the server can serve (GET /readyz); its error is
	// an *imbee.Error whose message says why not.
	Ready func(ctx context.Context) error
	// Metrics, when set, is served at /metrics.
	Metrics http.Handler
	// AllowPrivateWebhooks lets bots' webhooks point at loopback and
	// private addresses (--allow-private-webhooks).
	AllowPrivateWebhooks bool
	Log                  *slog.Logger
}

// Server is the API's HTTP handler.
type Server struct {
	store  Store
	cfg    Config
	mux    *http.ServeMux
	limits sync.Map // corporate id → *rate.Limiter
}

// NewHandler returns the whole HTTP surface: the API, and pages (the human
// link and chat pages, mounted at /l/ and /w/), behind the access log.
func NewHandler(store Store, pages http.Handler, cfg Config, log *slog.Logger) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = 24 * time.Hour
	}
	if cfg.Events == nil {
		cfg.Events = realtime.NewHub()
	}
	cfg.Log = log
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &Server{store: store, cfg: cfg, mux: http.NewServeMux()}

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
	// Browsers ask for it on every page: no icon, and no 404 in their console.
	s.mux.Handle("/favicon.ico", named("/favicon.ico", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	s.mountOps()
	s.mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info(r).code, info(r).envelope = imbee.CodeGeneric, true
		writeEnvelope(w, http.StatusNotFound, time.Now(), imbee.CodeGeneric, "no such endpoint: see the API reference", nil)
	}))
	return accessLog(log, cfg.Observe, s.mux)
}

// handle routes path to h for one method; other methods get 405 in the
// envelope, with Allow.
func (s *Server) handle(path, method string, h http.Handler) {
	s.mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info(r).route, info(r).envelope = path, true
		if r.Method != method {
			info(r).code = imbee.CodeGeneric
			w.Header().Set("Allow", method)
			writeEnvelope(w, http.StatusMethodNotAllowed, time.Now(), imbee.CodeGeneric, "method not allowed: use "+method, nil)
			return
		}
		h.ServeHTTP(w, r)
	}))
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
// instead of two. It is given a body that is a JSON object and returns nil,
// nil when its parameters are not valid (the full path says why). Once it
// has checked the credentials it sets c.checked (and c's corporate and
// user); it returns the response when the answer is already stored, or nil
// when the request needs the full path.
type repeatFunc func(ctx context.Context, auth, key string, c *call) (any, error)

// endpoint runs the checks shared by every API call, in the spec's order,
// then h, and writes h's result or error in the envelope. With repeat set,
// the body is read before the credentials are checked, so that a repeat
// can be answered from one read; the order in which failures are answered
// stays the spec's.
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
		auth := bearer(r.Header.Get("Authorization"))
		woos := strings.TrimSpace(r.Header.Get("X-WOOS-KEY"))
		jsonBody := isJSON(r.Header.Get("Content-Type"))
		var bodyErr error
		if jsonBody {
			c.body, bodyErr = readObject(w, r)
		}
		var resp any
		var err error
		_, hasKey := r.Header[idempotencyHeader]
		useKey := keyed && hasKey
		// With a key, the stored answer (or the key's conflict) comes first.
		if repeat != nil && jsonBody && bodyErr == nil && !useKey {
			if resp, err = repeat(ctx, auth, woos, c); err != nil {
				writeError(w, r, start, err)
				return
			}
		}
		if !c.checked {
			if key == corporateKey {
				c.corporate, err = s.store.Authenticate(ctx, auth, woos)
			} else {
				c.corporate, c.user, err = s.store.AuthenticateUser(ctx, auth, woos)
			}
			if err != nil {
				writeError(w, r, start, err)
				return
			}
		}
		info(r).corporateID = c.corporate.ID
		if wait, ok := s.allow(w, c.corporate); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(wait))
			writeError(w, r, start, imbee.Errorf(imbee.CodeRateLimited, "too many requests: retry after %d s", wait))
			return
		}
		if !jsonBody {
			writeError(w, r, start, imbee.Errorf(imbee.CodeContentType, "Content-Type must be application/json"))
			return
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

// readObject reads a body of at most MaxBodyBytes that must be a JSON object.
func readObject(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, &imbee.Error{Code: imbee.CodeBody, Message: "body is larger than 1 MiB", Err: err}
		}
		return nil, &imbee.Error{Code: imbee.CodeBody, Message: "could not read the body", Err: err}
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, imbee.Errorf(imbee.CodeBody, "body must be a JSON object")
	}
	return b, nil
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

// allow applies the corporate's rate limit (its own, or the server's), sets
// the X-RateLimit-* headers, and when it refuses says how many seconds to
// wait. X-RateLimit-Limit is the bucket's size (the burst), -Remaining the
// requests that may be sent at once now, -Reset the seconds until the bucket
// is full again.
func (s *Server) allow(w http.ResponseWriter, c imbee.Corporate) (retryAfter int, ok bool) {
	limit, burst := s.cfg.RateLimit, s.cfg.RateBurst
	if c.RateLimit != nil {
		limit = *c.RateLimit
	}
	if c.RateBurst != nil {
		burst = *c.RateBurst
	}
	if limit <= 0 {
		return 0, true
	}
	burst = max(burst, 1)
	l, found := s.limits.Load(c.ID)
	if !found {
		l, _ = s.limits.LoadOrStore(c.ID, rate.NewLimiter(rate.Limit(limit), burst))
	}
	lim := l.(*rate.Limiter)
	if lim.Limit() != rate.Limit(limit) || lim.Burst() != burst {
		// A limit changed with the CLI while running applies from the next
		// request, with a full bucket of the new size.
		lim = rate.NewLimiter(rate.Limit(limit), burst)
		s.limits.Store(c.ID, lim)
	}
	allowed := lim.Allow()
	tokens := lim.Tokens()
	h := w.Header()
	h.Set("X-RateLimit-Limit", strconv.Itoa(burst))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(max(0, int(tokens))))
	h.Set("X-RateLimit-Reset", strconv.Itoa(int(math.Ceil((float64(burst)-tokens)/limit))))
	if allowed {
		return 0, true
	}
	wait := (1 - tokens) / limit // seconds until one token is back
	return max(1, int(math.Ceil(wait))), false
}

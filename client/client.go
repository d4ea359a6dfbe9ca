package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// Default retry policy: 4 attempts, backoff from 200 ms up to 10 s.
const (
	DefaultMaxAttempts = 4
	DefaultBaseDelay   = 200 * time.Millisecond
	DefaultMaxDelay    = 10 * time.Second
)

// maxResponseBytes bounds a response read into memory; the largest real
// answers (a page of 200 messages of 4,000 characters) are a few MiB.
const maxResponseBytes = 32 << 20

// Client calls one imbee server with one set of credentials. A Client is
// safe for concurrent use by multiple goroutines; it holds no state that a
// call changes.
type Client struct {
	baseURL   string
	auth      string
	key       string // X-WOOS-KEY: the corporate token, or a user's apikey (AsUser)
	http      *http.Client
	userAgent string
	retry     retryPolicy
}

// An Option configures a Client in New.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests through hc, for
// custom transports, proxies or timeouts. The default is an http.Client
// with a 30 s timeout per attempt.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.http = hc
		}
	}
}

// WithRetry sets the retry policy: at most maxAttempts requests per call
// (1: no retry), waiting between them a random time between 0 and
// baseDelay·2ⁿ, capped at maxDelay (exponential backoff with full jitter),
// and never less than the server's Retry-After. An answer whose Retry-After
// is longer than maxDelay is returned at once: waiting is the caller's
// decision then.
func WithRetry(maxAttempts int, baseDelay, maxDelay time.Duration) Option {
	return func(c *Client) {
		c.retry = retryPolicy{attempts: max(1, maxAttempts), base: max(0, baseDelay), max: max(0, maxDelay)}
	}
}

// WithoutRetry makes every call a single request.
func WithoutRetry() Option { return WithRetry(1, 0, 0) }

// WithUserAgent sets the User-Agent header of every request.
func WithUserAgent(ua string) Option {
	return func(c *Client) { c.userAgent = ua }
}

// New returns a Client for the server at baseURL (such as
// "https://chat.example.com"), calling with the corporate's integration
// token auth (the Authorization header) and its corporate token (the
// X-WOOS-KEY header). Use AsUser for the user-level calls.
func New(baseURL, auth, corporateToken string, opts ...Option) *Client {
	c := &Client{
		baseURL:   strings.TrimRight(baseURL, "/"),
		auth:      auth,
		key:       corporateToken,
		http:      &http.Client{Timeout: 30 * time.Second},
		userAgent: "imbee-go-client",
		retry:     retryPolicy{attempts: DefaultMaxAttempts, base: DefaultBaseDelay, max: DefaultMaxDelay},
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// AsUser returns a Client that calls as the user whose apikey is given (the
// X-WOOS-KEY of CreateChat, SendMessage, ListMessages, ListChats and
// MarkRead), with c's server, Authorization and options. c is unchanged.
func (c *Client) AsUser(apikey string) *Client {
	u := *c
	u.key = apikey
	return &u
}

// Meta describes the HTTP exchange of a call, for callers that want it:
// pass CaptureMeta to a call. It is filled on success and on failure.
type Meta struct {
	HTTPStatus int           // of the last attempt; 0 if none got an answer
	ServerTime time.Duration // the envelope's time: what the server spent
	RequestID  string        // X-Request-Id of the last answer: quote it to the operator
	// Replayed is true when the server answered from the stored result of
	// an earlier request with the same Idempotency-Key.
	Replayed bool
	// IdempotencyKey is the key the call sent (the caller's, or the one the
	// client generated), "" on calls that take none.
	IdempotencyKey string
	Attempts       int // requests sent, retries included
}

// A CallOption changes one call.
type CallOption func(*callOptions)

type callOptions struct {
	idempotencyKey string
	meta           *Meta
}

// WithIdempotencyKey sends key as the Idempotency-Key header (1 to 255
// printable ASCII characters) instead of a generated one, so that a call
// repeated later, even by another process, gets the first call's answer
// back instead of running twice. The server only honours it on creating
// and changing calls.
func WithIdempotencyKey(key string) CallOption {
	return func(o *callOptions) { o.idempotencyKey = key }
}

// CaptureMeta fills m with the call's Meta when the call returns. Give
// each concurrent call its own m.
func CaptureMeta(m *Meta) CallOption {
	return func(o *callOptions) { o.meta = m }
}

// kind says whether an endpoint is safe to repeat after a server error or
// a lost answer.
type kind int

const (
	// changing calls accept an Idempotency-Key; with one, a repeat gets the
	// first answer instead of running again.
	changing kind = iota
	// reading calls change nothing.
	reading
	// unkeyed calls change something but take no key (/chat/read): one
	// that failed on the way is not repeated.
	unkeyed
)

// call POSTs in to path and decodes the envelope's body into out,
// retrying as the policy and the endpoint's kind allow.
func (c *Client) call(ctx context.Context, path string, k kind, in, out any, opts []CallOption) error {
	var o callOptions
	for _, opt := range opts {
		opt(&o)
	}
	body, err := json.Marshal(in) // buffered once: every attempt sends the same bytes
	if err != nil {
		return fmt.Errorf("imbee: %s: encoding the request: %w", path, err)
	}
	key := o.idempotencyKey
	if key == "" && k == changing {
		key = newKey()
	}
	if key != "" && !validKey(key) {
		// The server's answer, given here: Go's transport would refuse to
		// send some such keys, and that must not look like a lost answer.
		return &Error{Code: CodeParam, Field: "Idempotency-Key", Message: "Idempotency-Key must be 1 to 255 printable ASCII characters"}
	}
	m := o.meta
	if m == nil {
		m = new(Meta)
	}
	*m = Meta{IdempotencyKey: key}
	// A changing call always carries a key here, so its repeats are safe.
	safe := k == reading || k == changing
	for attempt := 1; ; attempt++ {
		m.Attempts = attempt
		lost, err := c.attempt(ctx, path, body, key, safe, out, m)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("imbee: %s: %w", path, ctx.Err())
		}
		wait, ok := c.retry.next(err, lost, safe, attempt)
		if !ok {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("imbee: %s: %w while waiting to retry after: %w", path, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// attempt sends one request. lost reports a failure on the way (no
// answer, or an answer cut short), after which the request may or may not
// have run.
func (c *Client) attempt(ctx context.Context, path string, body []byte, key string, safe bool, out any, m *Meta) (lost bool, err error) {
	m.HTTPStatus, m.ServerTime, m.RequestID, m.Replayed = 0, 0, "", false
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+path, bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("imbee: %s: %w", path, err)
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", c.auth)
	h.Set("X-WOOS-KEY", c.key)
	h.Set("User-Agent", c.userAgent)
	if key != "" {
		h.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return true, fmt.Errorf("imbee: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return true, fmt.Errorf("imbee: %s: reading the answer: %w", path, err)
	}
	m.HTTPStatus = resp.StatusCode
	m.RequestID = resp.Header.Get("X-Request-Id")
	m.Replayed = strings.EqualFold(resp.Header.Get("Idempotent-Replayed"), "true")

	var env struct {
		Time    float64         `json:"time"`
		Code    *int            `json:"code"`
		Message string          `json:"message"`
		Body    json.RawMessage `json:"body"`
	}
	if len(raw) > maxResponseBytes || json.Unmarshal(raw, &env) != nil || env.Code == nil {
		e := notEnvelope(resp, raw)
		e.safe = safe
		return false, e
	}
	m.ServerTime = time.Duration(math.Round(env.Time * float64(time.Second)))
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	if *env.Code != CodeOK || !ok {
		e := &Error{
			Code:       *env.Code,
			Message:    env.Message,
			HTTPStatus: resp.StatusCode,
			RetryAfter: retryAfter(resp.Header.Get("Retry-After")),
			RequestID:  m.RequestID,
			safe:       safe,
		}
		if e.Code == CodeOK { // a success code with an error status: not the API's answer
			e.Code = CodeGeneric
		}
		var detail struct {
			Field string `json:"field"`
		}
		_ = json.Unmarshal(env.Body, &detail) // the detail is optional
		e.Field = detail.Field
		return false, e
	}
	if err := json.Unmarshal(env.Body, out); err != nil {
		return false, fmt.Errorf("imbee: %s: decoding the answer: %w", path, err)
	}
	return false, nil
}

// notEnvelope is the error for an answer that is not imbee's, such as a
// proxy's HTML 502 page: code 1 with its status and the start of its text.
func notEnvelope(resp *http.Response, raw []byte) *Error {
	snippet := strings.ToValidUTF8(string(raw[:min(len(raw), 200)]), "?")
	snippet = strings.Join(strings.Fields(snippet), " ")
	return &Error{
		Code:       CodeGeneric,
		Message:    fmt.Sprintf("not an imbee answer (%s, %q): %s", resp.Status, resp.Header.Get("Content-Type"), snippet),
		HTTPStatus: resp.StatusCode,
		RetryAfter: retryAfter(resp.Header.Get("Retry-After")),
		RequestID:  resp.Header.Get("X-Request-Id"),
	}
}

// retryAfter parses Retry-After: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var secs int64
	if _, err := fmt.Sscan(v, &secs); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// newKey returns a random Idempotency-Key: 128 bits as 32 hex characters.
func newKey() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails: see crypto/rand.Read
	return hex.EncodeToString(b)
}

// validKey is the server's rule for an Idempotency-Key: 1 to 255
// printable ASCII characters, not all blank.
func validKey(k string) bool {
	if len(k) > 255 || strings.TrimSpace(k) == "" {
		return false
	}
	for i := range len(k) {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

type retryPolicy struct {
	attempts  int
	base, max time.Duration
}

// next says whether to retry after attempt failed with err, and how long
// to wait first. Rate limits (8) and a key in progress (10) are retried on
// any endpoint: the server did nothing. Server errors (5xx) and lost
// answers are retried only when safe, since the request may have run.
func (p retryPolicy) next(err error, lost, safe bool, attempt int) (time.Duration, bool) {
	if attempt >= p.attempts {
		return 0, false
	}
	wait := p.backoff(attempt)
	if lost {
		return wait, safe
	}
	var e *Error
	if !errors.As(err, &e) {
		return 0, false // an answer we could not decode: repeating gives the same
	}
	switch {
	case e.Code == CodeRateLimited, e.Code == CodeIdempotencyInProgress:
	case e.Code == CodeGeneric && e.HTTPStatus >= 500 && safe:
	default:
		return 0, false
	}
	if e.RetryAfter > p.max {
		return 0, false // e.g. the hour-long recipient limit of NewToken
	}
	return max(wait, e.RetryAfter), true
}

// backoff is full jitter: uniform in [0, min(max, base·2^(attempt-1))].
func (p retryPolicy) backoff(attempt int) time.Duration {
	ceiling := p.base << min(attempt-1, 30)
	if ceiling > p.max || ceiling <= 0 {
		ceiling = p.max
	}
	if ceiling <= 0 {
		return 0
	}
	return mrand.N(ceiling + 1)
}

package delivery

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"code.dny.dev/ssrf"
	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// WebhookQueue is the storage the webhook worker needs.
type WebhookQueue interface {
	ClaimWebhookEvents(ctx context.Context, limit, pool int, lease time.Duration) ([]imbee.WebhookEvent, error)
	MarkWebhookSent(ctx context.Context, corporateID, id int64) error
	MarkWebhookFailed(ctx context.Context, corporateID, id int64, cause string, retryAt time.Time, dead bool) error
}

// WebhookWorker POSTs queued events to bots' webhooks, signed in the
// Standard Webhooks style (webhook-id, the same on every retry;
// webhook-timestamp; webhook-signature), with the retry policy of cfg: a
// 2xx is delivered, 408, 429 (after its Retry-After) and 5xx are retried,
// any other 4xx (and 3xx: redirects are not followed) is dead at once. A
// host that failed BreakerFailures times in a row is not tried for
// cfg.FirstRetry: its events meanwhile count a failed attempt each and are
// retried after the cool-down (or their backoff, if longer).
type WebhookWorker struct {
	queue   WebhookQueue
	client  *http.Client
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	kick    chan struct{}
	breaker *breaker
	// builtin answers the events of the bots whose webhook URL is
	// imbee.DemoBotURL, in-process (nil: such events are dead).
	builtin func(ctx context.Context, e imbee.WebhookEvent) error
}

// SetBuiltin makes f answer the events of the built-in demo bot: its
// failures are retried like a webhook's. Call it before Run.
func (w *WebhookWorker) SetBuiltin(f func(ctx context.Context, e imbee.WebhookEvent) error) {
	w.builtin = f
}

// NewWebhookWorker returns a worker over q that posts with client; nil
// means WebhookClient(cfg.Timeout, false).
func NewWebhookWorker(q WebhookQueue, cfg Config, client *http.Client, log *slog.Logger) *WebhookWorker {
	cfg = cfg.withDefaults()
	if client == nil {
		client = WebhookClient(cfg.Timeout, false)
	}
	return &WebhookWorker{queue: q, client: client, cfg: cfg, log: log, now: cfg.Now, kick: make(chan struct{}, 1),
		breaker: newBreaker(cfg.FirstRetry)}
}

// Kick asks the worker to look for due events now. It never blocks.
func (w *WebhookWorker) Kick() { kickNow(w.kick) }

// Run sends events until ctx ends; sends in flight finish first.
func (w *WebhookWorker) Run(ctx context.Context) {
	runQueue(ctx, w.cfg, w.log, "claim webhook events", w.kick, w.queue.ClaimWebhookEvents, w.send)
}

func (w *WebhookWorker) send(ctx context.Context, e imbee.WebhookEvent) {
	host := target(e.URL)
	closedIn, err := w.breaker.allow(host, w.now())
	if err == nil {
		err = w.post(ctx, e)
		if e.URL != "" {
			w.breaker.record(host, err == nil, w.now())
		}
	}
	if err == nil {
		if err := w.queue.MarkWebhookSent(ctx, e.CorporateID, e.ID); err != nil {
			w.log.Error("record webhook sent", "event_id", e.EventID, "err", err)
		}
		return
	}
	wait, dead := w.cfg.retryWait(e.Attempts, err)
	wait = max(wait, closedIn)
	w.log.Warn("webhook failed", "event_id", e.EventID, "bot", e.BotIDSha, "attempt", e.Attempts, "dead", dead,
		"retry_in", wait.Round(time.Millisecond).String(), "err", err)
	if err := w.queue.MarkWebhookFailed(ctx, e.CorporateID, e.ID, err.Error(), w.now().Add(wait), dead); err != nil {
		w.log.Error("record webhook failed", "event_id", e.EventID, "err", err)
	}
	if !dead {
		wakeAt(w.cfg, wait, w.kick)
	}
}

func (w *WebhookWorker) post(ctx context.Context, e imbee.WebhookEvent) error {
	if e.URL == "" {
		return Permanent(errNoWebhook)
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	if e.URL == imbee.DemoBotURL {
		if w.builtin == nil {
			return Permanent(errNoBuiltin)
		}
		return w.builtin(ctx, e)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.URL, bytes.NewReader(e.Payload))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "imbee-webhooks")
	SignWebhook(req.Header, secret.WebhookKey(e.Secret), e.EventID, w.now(), e.Payload)
	var ignored struct{}
	err = postJSON(w.client, req, &ignored)
	if errors.Is(err, ssrf.ErrProhibitedIP) || errors.Is(err, ssrf.ErrProhibitedPort) || errors.Is(err, ssrf.ErrProhibitedNetwork) {
		// Retrying cannot help: the operator's rule refuses the address.
		return Permanent(err)
	}
	return err
}

// WebhookClient is the HTTP client for URLs that tenants choose: every
// address it dials passes imbee.WebhookGuard (checked on the address
// actually dialled, so a name that resolves, or later rebinds, to a local
// one is refused before connecting); it follows no redirect (a 3xx is the
// answer, a failed attempt) and uses no proxy from the environment, which
// would dial in its stead. allowPrivate is --allow-private-webhooks.
func WebhookClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: min(timeout, 10*time.Second), KeepAlive: 30 * time.Second, Control: imbee.WebhookGuard(allowPrivate).Safe}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   min(timeout, 10*time.Second),
			ResponseHeaderTimeout: timeout,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imbee/imbee/internal/api"
	"github.com/imbee/imbee/internal/clientaddr"
	"github.com/imbee/imbee/internal/delivery"
	"github.com/imbee/imbee/internal/linkpage"
	"github.com/imbee/imbee/internal/metrics"
	"github.com/imbee/imbee/internal/realtime"
	"github.com/imbee/imbee/internal/store"
)

func (c *cli) serve(ctx context.Context, args []string) error {
	fs := c.flagSet("serve", "Run the server: the API, the link pages and the delivery worker.")
	sf := c.addStoreFlags(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on, host:port (port 0 picks a free one)")
	publicURL := fs.String("public-url", "", "base of the links sent to people, e.g. https://chat.example.com (default http://<addr>)")
	bootstrap := fs.Bool("bootstrap", true, "on an empty database, create a demo corporate and bot and print their credentials")
	synchronous := fs.String("sqlite-synchronous", "full", "SQLite durability: full (an acknowledged write survives power loss) or normal (survives a process crash only; faster)")
	maxConns := fs.Int("pg-max-conns", 16, "PostgreSQL: the most connections this server opens (size it as in docs/deployment.md)")
	stmtTimeout := fs.Duration("pg-statement-timeout", 10*time.Second, "PostgreSQL: the longest one statement may run")
	rateLimit := fs.Float64("rate-limit", 5000, "requests per second allowed to each corporate; 0 turns the limit off")
	rateBurst := fs.Int("rate-burst", 10000, "requests a corporate may send at once above --rate-limit")
	probeLimit := fs.Float64("probe-limit", 1, "unknown link tokens one client address may try per second on /l/ (0 turns the limit off)")
	probeBurst := fs.Int("probe-burst", 20, "unknown link tokens one client address may try at once above --probe-limit")
	userRateShare := fs.Float64("user-rate-share", 0.1, "share of its corporate's rate limit and burst one user's apikey may use on user-level calls; 0 turns the per-user limit off")
	authFailLimit := fs.Float64("auth-fail-limit", 1, "failed authentications one client address may make per second (0 turns the limit off)")
	authFailBurst := fs.Int("auth-fail-burst", 30, "failed authentications one client address may make at once above --auth-fail-limit")
	webSendLimit := fs.Float64("web-send-limit", 1, "messages one web chat session may send per second (0 turns the limit off)")
	webSendBurst := fs.Int("web-send-burst", 20, "messages one web chat session may send at once above --web-send-limit")
	trustedProxies := fs.String("trusted-proxies", "", "comma-separated networks (CIDRs or addresses) of reverse proxies whose X-Forwarded-For names the client; default none")
	logFormat := fs.String("log-format", "json", "log format: json or text")
	logLevel := fs.String("log-level", "info", "least level logged: debug, info, warn or error")
	debugAddr := fs.String("debug-addr", "", "if set, serve Go's pprof profiles on this address (keep it private), e.g. 127.0.0.1:6060")
	metricsAddr := fs.String("metrics-addr", "", "if set, serve the Prometheus metrics (/metrics) on this address only, e.g. 127.0.0.1:9090; unset: on --addr")
	metricsAllow := fs.String("metrics-allow", "127.0.0.0/8,::1", "networks (comma-separated CIDRs or addresses) allowed to read /metrics on --addr; others, and requests forwarded by a proxy, get 404")
	readHeaderTimeout := fs.Duration("read-header-timeout", 5*time.Second, "longest a client may take to send a request's headers (slow clients are cut off)")
	readTimeout := fs.Duration("read-timeout", 30*time.Second, "longest a client may take to send a whole request")
	writeTimeout := fs.Duration("write-timeout", 30*time.Second, "longest an answer may take to be written")
	idleTimeout := fs.Duration("idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open")
	maxSockets := fs.Int("max-sockets", 5, "WebSockets open at once per web chat session and per apikey, on each server; 0 turns the cap off")
	idempotencyTTL := fs.Duration("idempotency-ttl", 24*time.Hour, "how long an Idempotency-Key and its stored response are kept")
	tf := addTransportFlags(fs)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	allowMetrics, err := clientaddr.ParseNetworks(strings.Split(*metricsAllow, ","))
	if err != nil {
		return fmt.Errorf("--metrics-allow: %w", err)
	}
	clients, err := clientaddr.New(strings.Split(*trustedProxies, ","))
	if err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	tuneGC(c.getenv)
	log, err := newLogger(c.stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}

	s, err := sf.open(ctx, store.Options{Synchronous: *synchronous, MaxConns: *maxConns, StatementTimeout: *stmtTimeout})
	if err != nil {
		return err
	}
	defer s.Close()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	base := strings.TrimRight(*publicURL, "/")
	if base == "" {
		base = "http://" + ln.Addr().String()
	}

	if *bootstrap {
		if err := c.bootstrap(ctx, s, base, isLoopback(ln.Addr())); err != nil {
			return err
		}
	}

	senders, err := tf.senders(c.stdout, log)
	if err != nil {
		return err
	}
	worker := delivery.NewWorker(s, senders, base, tf.worker, log)
	webhooks := delivery.NewWebhookWorker(s, tf.webhookConfig(), delivery.WebhookClient(tf.webhookTimeout, tf.allowPrivateWebhooks), log)
	hub := realtime.NewHub()
	hub.MaxSockets = *maxSockets
	// Sockets end when access does: the hub follows the revocations log
	// from here on.
	if err := hub.Follow(ctx, s); err != nil {
		return err
	}

	pages := linkpage.New(s, linkpage.Config{PublicURL: base, Events: hub, MessageSent: webhooks.Kick, ProbeLimit: *probeLimit, ProbeBurst: *probeBurst,
		SendLimit: *webSendLimit, SendBurst: *webSendBurst, Clients: clients}, log)
	b := readBuild()
	m := metrics.New(metrics.Build{Version: b.Version, Revision: b.Revision, GoVersion: b.Go}, s, s.Pools(), log)
	worker.Sent, webhooks.Sent = m.DeliverySent, m.WebhookSent
	var mainMetrics http.Handler // on --addr, unless it has its own
	if *metricsAddr == "" {
		mainMetrics = m.Handler()
	}
	handler := api.NewHandler(s, pages, api.Config{
		PublicURL:      base,
		RateLimit:      *rateLimit,
		RateBurst:      *rateBurst,
		UserRateShare:  *userRateShare,
		AuthFailLimit:  *authFailLimit,
		AuthFailBurst:  *authFailBurst,
		Clients:        clients,
		RecipientLimit: tf.recipientLimit,
		IdempotencyTTL: *idempotencyTTL,
		LinkIssued:     worker.Kick,
		MessageSent:    webhooks.Kick,
		Events:         hub,
		Observe:        m.ObserveRequest,
		Ready:          s.Ready,
		Metrics:        mainMetrics,
		MetricsAllow:   allowMetrics,

		AllowPrivateWebhooks: tf.allowPrivateWebhooks,
	}, log)

	conns := newConnTracker()
	srv := &http.Server{
		Handler:           conns.handler(handler),
		ConnState:         conns.track,
		ReadHeaderTimeout: *readHeaderTimeout,
		ReadTimeout:       *readTimeout,
		WriteTimeout:      *writeTimeout,
		IdleTimeout:       *idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { worker.Run(workerCtx) })
	wg.Go(func() { webhooks.Run(workerCtx) })
	// Other servers' messages and read marks (PostgreSQL), for this
	// server's sockets.
	wg.Go(func() { s.ListenEvents(workerCtx, hub.Publish) })
	wg.Go(func() { hub.Poll(workerCtx, revocationPoll) })
	wg.Go(func() { purgeExpired(workerCtx, s, log) })
	wg.Go(func() { pages.Run(workerCtx) })
	defer func() {
		stopWorker()
		wg.Wait()
	}()

	if *metricsAddr != "" {
		mln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", m.Instrument("/metrics", m.Handler()))
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: *readHeaderTimeout, WriteTimeout: *writeTimeout,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
		defer msrv.Close()
		go msrv.Serve(mln)
		log.Info("metrics listening", "addr", mln.Addr().String())
		fmt.Fprintf(c.stdout, "imbee metrics on http://%s/metrics\n", mln.Addr())
	}

	if *debugAddr != "" {
		dbg, err := net.Listen("tcp", *debugAddr)
		if err != nil {
			return err
		}
		defer dbg.Close()
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		go http.Serve(dbg, mux)
		log.Info("pprof listening", "addr", dbg.Addr().String())
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "public_url", base)
	fmt.Fprintf(c.stdout, "imbee listening on http://%s\n", ln.Addr())

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conns.drain(shutdownCtx, ln)
	// drain closed the listener already; Shutdown closing it again (when
	// Serve has not yet returned) is not a failure.
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// revocationPoll is how often a server reads the revocations log: a
// revocation that no NOTIFY brings (SQLite's CLI, a lost notification)
// closes this server's sockets within about this (the promise is 2 s).
// Each read is one indexed lookup past the last id seen.
const revocationPoll = 250 * time.Millisecond

// keepRevocations is how long the revocations log keeps a row: far longer
// than any server takes to read it.
const keepRevocations = time.Hour

// purgeExpired deletes expired Idempotency-Keys and old revocations now and
// then; until it does, an expired key is already treated as new.
func purgeExpired(ctx context.Context, s *store.Store, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := s.PurgeIdempotencyKeys(ctx); err != nil && ctx.Err() == nil {
			log.Error("purge idempotency keys", "err", err)
		} else if n > 0 {
			log.Info("purged idempotency keys", "count", n)
		}
		if _, err := s.PurgeRevocations(ctx, time.Now().Add(-keepRevocations)); err != nil && ctx.Err() == nil {
			log.Error("purge revocations", "err", err)
		}
	}
}

// connTracker lets a shutdown end keep-alive connections without cutting
// off a request on its way. http.Server.Shutdown alone closes idle
// connections at once and drops a request read on one after it began: a
// client that had just written its next request gets EOF or a reset, and
// cannot know whether it was done.
type connTracker struct {
	draining atomic.Bool
	mu       sync.Mutex
	idle     map[net.Conn]time.Time // the open connections: since when each is idle, zero while in use
}

// How long drain waits for open connections: until each has been idle for
// drainQuiet (a client that reuses its connection sends the next request
// well within that), at most drainMax in all.
const (
	drainQuiet = 100 * time.Millisecond
	drainMax   = 2 * time.Second
)

func newConnTracker() *connTracker { return &connTracker{idle: map[net.Conn]time.Time{}} }

// track is the server's ConnState hook.
func (ct *connTracker) track(c net.Conn, st http.ConnState) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	switch st {
	case http.StateNew, http.StateActive:
		ct.idle[c] = time.Time{}
	case http.StateIdle:
		ct.idle[c] = time.Now()
	case http.StateClosed, http.StateHijacked:
		delete(ct.idle, c)
	}
}

// handler answers with Connection: close while draining, so that clients
// take their next request elsewhere.
func (ct *connTracker) handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ct.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// drain closes the listener (new connections are refused) and waits until
// every open connection is closed or quiet; Shutdown then closes the quiet
// ones and waits for the rest.
func (ct *connTracker) drain(ctx context.Context, ln net.Listener) {
	ct.draining.Store(true)
	ln.Close()
	deadline := time.Now().Add(drainMax)
	for !ct.quiet() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// quiet says whether every open connection has been idle for drainQuiet.
func (ct *connTracker) quiet() bool {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for _, since := range ct.idle {
		if since.IsZero() || time.Since(since) < drainQuiet {
			return false
		}
	}
	return true
}

// bootstrap creates and announces the demo corporate on a new database.
// The credentials go to stdout, once, never to the log. Only a server that
// listens on a loopback address gets one: a working corporate whose
// credentials sit in a log (stdout often is one) on a server anyone can
// reach is an open door, so there it says how to create one instead.
func (c *cli) bootstrap(ctx context.Context, s *store.Store, base string, loopback bool) error {
	if !loopback {
		empty, err := s.Empty(ctx)
		if err != nil || !empty {
			return err
		}
		fmt.Fprintf(c.stdout, `
imbee: this database has no corporate yet. The demo corporate is only created on a
loopback --addr; create yours with:

  imbee corporate create --name "Acme" --json

`)
		return nil
	}
	d, ok, err := s.Bootstrap(ctx, "Demo Corporate", "Demo Bot")
	if err != nil || !ok {
		return err
	}
	fmt.Fprintf(c.stdout, `
imbee: this database was empty, so a demo corporate and bot were created.
  Authorization: %s
  X-WOOS-KEY:    %s
  bot_idsha:     %s
These are shown only now. Try the API:

  curl --request POST --url %s/third_parties/user/new --header 'Authorization: %s' --header 'Content-Type: application/json' --header 'X-WOOS-KEY: %s' --data '{"uniqueIdSha":"user_identifier_sha", "platform": "platformValue","deviceName": "deviceNameValue","hardwareId":"hardwareIdValue","osVersion":"osVersionValue"}'

`, d.Credentials.Auth, d.Credentials.CorporateToken, d.Bot.IDSha, base, d.Credentials.Auth, d.Credentials.CorporateToken)
	return nil
}

// isLoopback says whether a listener's address is a loopback one
// (127.0.0.1, ::1); an unspecified one (0.0.0.0, ::) listens everywhere.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

func newLogger(w interface{ Write([]byte) (int, error) }, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format must be json or text, not %q", format)
}

// tuneGC trades memory for CPU: the live heap is small (tens of MB), so
// collecting at 5× it instead of 2× cuts GC work per request by more than
// half (about 10 % more throughput on the repeat endpoints), while the soft
// limit keeps the process well under 150 MB. GOGC and GOMEMLIMIT, when set,
// win.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(120 << 20)
	}
}

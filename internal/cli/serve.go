package cli

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/imbee/imbee/internal/api"
	"github.com/imbee/imbee/internal/clientaddr"
	"github.com/imbee/imbee/internal/delivery"
	"github.com/imbee/imbee/internal/demobot"
	"github.com/imbee/imbee/internal/linkpage"
	"github.com/imbee/imbee/internal/metrics"
	"github.com/imbee/imbee/internal/push"
	"github.com/imbee/imbee/internal/ratelimit"
	"github.com/imbee/imbee/internal/realtime"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/writes"
)

// serveFlags are serve's settings, read from its flags (and their
// IMBEE_* variables and the config file) into each part's own options.
type serveFlags struct {
	db         *storeFlags
	transport  *transportFlags
	store      store.Options
	api        api.Config
	pages      linkpage.Config
	timeouts   struct{ readHeader, read, write, idle time.Duration }
	maxSockets int

	addr, publicURL              string
	pushContact                  string
	bootstrap                    bool
	trustedProxies, metricsAllow string
	metricsAddr, debugAddr       string
	logFormat, logLevel          string
}

// parseServeFlags reads serve's settings; the networks they name are
// checked here, before anything starts.
func (c *cli) parseServeFlags(args []string) (*serveFlags, error) {
	f := &serveFlags{}
	fs := c.flagSet("serve", "Run the server: the API, the link pages and the delivery worker.")
	f.db = c.addStoreFlags(fs)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "address to listen on, host:port (port 0 picks a free one)")
	fs.StringVar(&f.publicURL, "public-url", "", "base of the links sent to people, e.g. https://chat.example.com (default http://<addr>)")
	fs.StringVar(&f.pushContact, "push-contact", "", "who push services may contact about this server's Web Push (RFC 8292): a mail address or an https URL (default: the public URL)")
	fs.BoolVar(&f.bootstrap, "bootstrap", true, "on an empty database, create a demo corporate and bot and print their credentials")
	fs.StringVar(&f.store.Synchronous, "sqlite-synchronous", "full", "SQLite durability: full (an acknowledged write survives power loss) or normal (survives a process crash only; faster)")
	fs.IntVar(&f.store.MaxConns, "pg-max-conns", 16, "PostgreSQL: the most connections this server opens (size it as in docs/deployment.md)")
	fs.DurationVar(&f.store.StatementTimeout, "pg-statement-timeout", 10*time.Second, "PostgreSQL: the longest one statement may run")
	fs.Float64Var(&f.api.RateLimit, "rate-limit", 5000, "requests per second allowed to each corporate; 0 turns the limit off")
	fs.IntVar(&f.api.RateBurst, "rate-burst", 10000, "requests a corporate may send at once above --rate-limit")
	fs.Float64Var(&f.pages.ProbeLimit, "probe-limit", 1, "unknown link tokens one client address may try per second on /l/ (0 turns the limit off)")
	fs.IntVar(&f.pages.ProbeBurst, "probe-burst", 20, "unknown link tokens one client address may try at once above --probe-limit")
	fs.Float64Var(&f.api.UserRateShare, "user-rate-share", 0.1, "share of its corporate's rate limit and burst one user's apikey may use on user-level calls; 0 turns the per-user limit off")
	fs.Float64Var(&f.api.AuthFailLimit, "auth-fail-limit", 1, "failed authentications one client address may make per second (0 turns the limit off)")
	fs.IntVar(&f.api.AuthFailBurst, "auth-fail-burst", 30, "failed authentications one client address may make at once above --auth-fail-limit")
	fs.Float64Var(&f.pages.SendLimit, "web-send-limit", 1, "messages one web chat session may send per second (0 turns the limit off)")
	fs.IntVar(&f.pages.SendBurst, "web-send-burst", 20, "messages one web chat session may send at once above --web-send-limit")
	fs.Float64Var(&f.pages.SignInLimit, "web-signin-limit", 1.0/60, "failed web app sign-ins allowed per second, per user and per client address, after --web-signin-burst (0 turns the limit off)")
	fs.IntVar(&f.pages.SignInBurst, "web-signin-burst", 5, "failed web app sign-ins allowed at once, per user and per client address")
	fs.StringVar(&f.trustedProxies, "trusted-proxies", "", "comma-separated networks (CIDRs or addresses) of reverse proxies whose X-Forwarded-For names the client; default none")
	fs.StringVar(&f.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&f.logLevel, "log-level", "info", "least level logged: debug, info, warn or error")
	fs.StringVar(&f.debugAddr, "debug-addr", "", "if set, serve Go's pprof profiles on this address (keep it private), e.g. 127.0.0.1:6060")
	fs.StringVar(&f.metricsAddr, "metrics-addr", "", "if set, serve the Prometheus metrics (/metrics) on this address only, e.g. 127.0.0.1:9090; unset: on --addr")
	fs.StringVar(&f.metricsAllow, "metrics-allow", "127.0.0.0/8,::1", "networks (comma-separated CIDRs or addresses) allowed to read /metrics on --addr; others, and requests forwarded by a proxy, get 404")
	fs.DurationVar(&f.timeouts.readHeader, "read-header-timeout", 5*time.Second, "longest a client may take to send a request's headers (slow clients are cut off)")
	fs.DurationVar(&f.timeouts.read, "read-timeout", 30*time.Second, "longest a client may take to send a whole request")
	fs.DurationVar(&f.timeouts.write, "write-timeout", 30*time.Second, "longest an answer may take to be written")
	fs.DurationVar(&f.timeouts.idle, "idle-timeout", 2*time.Minute, "how long an idle keep-alive connection stays open")
	fs.IntVar(&f.maxSockets, "max-sockets", 5, "WebSockets open at once per web chat session and per apikey, on each server; 0 turns the cap off")
	fs.DurationVar(&f.api.IdempotencyTTL, "idempotency-ttl", 24*time.Hour, "how long an Idempotency-Key and its stored response are kept")
	f.transport = addTransportFlags(fs)
	if err := c.parse(fs, args); err != nil {
		return nil, err
	}
	var err error
	if f.api.MetricsAllow, err = clientaddr.ParseNetworks(strings.Split(f.metricsAllow, ",")); err != nil {
		return nil, fmt.Errorf("--metrics-allow: %w", err)
	}
	if f.api.Clients, err = clientaddr.New(strings.Split(f.trustedProxies, ",")); err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	f.pages.Clients = f.api.Clients
	f.api.RecipientLimit = f.transport.recipientLimit
	f.api.AllowPrivateWebhooks = f.transport.allowPrivateWebhooks
	f.pages.AllowPrivatePush = f.transport.allowPrivateWebhooks
	return f, nil
}

// serve runs the server until ctx ends, then shuts it down: requests on
// their way are answered, background work finishes, the store closes last.
func (c *cli) serve(ctx context.Context, args []string) error {
	f, err := c.parseServeFlags(args)
	if err != nil {
		return err
	}
	tuneGC(c.getenv)
	log, err := newLogger(c.stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	s, err := f.db.open(ctx, f.store)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, base, err := listen(f.addr, f.publicURL)
	if err != nil {
		return err
	}
	defer ln.Close()
	if f.bootstrap {
		if err := c.bootstrap(ctx, s, base, isLoopback(ln.Addr())); err != nil {
			return err
		}
	}
	sv, err := c.assemble(ctx, f, s, base, log)
	if err != nil {
		return err
	}
	stop := sv.start(ctx)
	defer stop()
	if f.metricsAddr != "" {
		closeMetrics, err := c.serveMetrics(f, sv.metrics, log)
		if err != nil {
			return err
		}
		defer closeMetrics()
	}
	if f.debugAddr != "" {
		closeDebug, err := serveDebug(f.debugAddr, log)
		if err != nil {
			return err
		}
		defer closeDebug()
	}
	return c.serveHTTP(ctx, f, ln, base, sv.handler, log)
}

// listen listens on addr; base is the links' public URL: publicURL, or
// the address listened on.
func listen(addr, publicURL string) (ln net.Listener, base string, err error) {
	if ln, err = net.Listen("tcp", addr); err != nil {
		return nil, "", err
	}
	base = strings.TrimRight(publicURL, "/")
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	return ln, base, nil
}

// server is what serve runs: the HTTP surface and the background work.
type server struct {
	handler http.Handler
	metrics *metrics.Metrics
	loops   []func(ctx context.Context) // each runs until ctx ends
}

// assemble builds the server's parts over the store s, in the order they
// need each other: metrics, the workers (whose sends they count), the
// sockets' hub, the writes (which tell the hub and wake the workers), and
// the handlers (which read from s and change through the writes). Every
// part reads the one clock, c.now.
func (c *cli) assemble(ctx context.Context, f *serveFlags, s *store.Store, base string, log *slog.Logger) (*server, error) {
	b := readBuild()
	m := metrics.New(metrics.Build{Version: b.Version, Revision: b.Revision, GoVersion: b.Go}, s, s.Pools(), log)
	links, webhooks, err := c.workers(f, writes.NewQueues(s, m), base, log)
	if err != nil {
		return nil, err
	}
	hub, err := newHub(ctx, s, f.maxSockets)
	if err != nil {
		return nil, err
	}
	keys, err := f.db.keyring()
	if err != nil {
		return nil, err
	}
	vapidPrivate, vapidPublic := keys.VAPID()
	// Push endpoints are URLs that browsers choose: the webhooks' guard.
	contact := cmp.Or(f.pushContact, base)
	pusher := push.New(s, hub, push.Config{VAPIDPrivate: vapidPrivate, VAPIDPublic: vapidPublic, Subscriber: contact,
		Client: delivery.WebhookClient(f.transport.webhookTimeout, f.transport.allowPrivateWebhooks)}, log)
	w := writes.New(s, writes.Effects{Events: hub, Deliveries: links, Webhooks: webhooks, Push: pusher}, log)
	webhooks.SetBuiltin(demobot.New(w).Receive)
	f.pages.VAPIDPublic = vapidPublic
	handler, pages := c.handlers(f, s, w, hub, m, base, log)
	sv := &server{
		handler: handler,
		metrics: m,
		loops: []func(context.Context){
			links.Run,
			webhooks.Run,
			pusher.Run,
			func(ctx context.Context) { hub.Poll(ctx, revocationPoll) },
			func(ctx context.Context) { purgeExpired(ctx, s, c.now, log) },
			pages.Run,
		},
	}
	// Other servers' messages, read marks and revocations (PostgreSQL),
	// for this server's sockets; this server's sockets' users, for the
	// other servers' pushes.
	feed, err := s.FollowEvents(ctx)
	if err != nil {
		return nil, err
	}
	if feed != nil {
		sv.loops = append(sv.loops, realtime.NewBridge(hub, feed, log).Run,
			realtime.NewPresence(hub, s, serverName(), c.now, log).Run)
	}
	return sv, nil
}

// serverName names this server's rows among an installation's: its host
// and a random part, new on every start.
func serverName() string {
	host, _ := os.Hostname()
	return cmp.Or(host, "imbee") + "-" + rand.Text()[:8]
}

// workers are the link delivery worker, over the transports the flags
// name (it says on stdout where each sends), and the webhook worker.
func (c *cli) workers(f *serveFlags, queues *writes.Queues, base string, log *slog.Logger) (*delivery.Worker, *delivery.WebhookWorker, error) {
	senders, err := f.transport.senders(c.stdout, log)
	if err != nil {
		return nil, nil, err
	}
	links, hooks := f.transport.worker, f.transport.webhookConfig()
	links.Now, hooks.Now = c.now, c.now
	client := delivery.WebhookClient(f.transport.webhookTimeout, f.transport.allowPrivateWebhooks)
	return delivery.NewWorker(queues, senders, base, links, log), delivery.NewWebhookWorker(queues, hooks, client, log), nil
}

// newHub is the sockets' hub. Sockets end when access does: it follows
// the revocations log from here on.
func newHub(ctx context.Context, s *store.Store, maxSockets int) (*realtime.Hub, error) {
	hub := realtime.NewHub()
	hub.MaxSockets = maxSockets
	return hub, hub.Follow(ctx, s)
}

// handlers are the HTTP surface: the API, and the link pages (which have
// background work of their own, Run). Both read from s and change through
// w, with their sockets on hub.
func (c *cli) handlers(f *serveFlags, s *store.Store, w *writes.Runner, hub *realtime.Hub, m *metrics.Metrics, base string, log *slog.Logger) (http.Handler, *linkpage.Handler) {
	pagesCfg := f.pages
	pagesCfg.PublicURL, pagesCfg.Now, pagesCfg.Events = base, c.now, hub
	apiCfg := f.api
	apiCfg.PublicURL, apiCfg.Now, apiCfg.Events = base, c.now, hub
	apiCfg.Observe, apiCfg.Ready = m.ObserveRequest, s.Ready
	if s.SharesRateLimits() { // the installation's limits, not each server's
		apiCfg.Limits = ratelimit.NewLeased(s, c.now, 0)
		apiCfg.SharedFailures, pagesCfg.SharedFailures = s, s
	}
	pages := linkpage.New(s, w, pagesCfg, log)
	if f.metricsAddr == "" {
		apiCfg.Metrics = m.Handler() // on --addr, since it has no address of its own
	}
	return api.NewHandler(s, w, pages, apiCfg, log), pages
}

// start runs the background work until the returned stop is called: not
// when ctx ends, so that the work outlives the HTTP server's shutdown.
func (sv *server) start(ctx context.Context) (stop func()) {
	loopCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, loop := range sv.loops {
		wg.Go(func() { loop(loopCtx) })
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// serveMetrics serves /metrics on its own address, --metrics-addr.
func (c *cli) serveMetrics(f *serveFlags, m *metrics.Metrics, log *slog.Logger) (closeFn func(), err error) {
	mln, err := net.Listen("tcp", f.metricsAddr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Instrument("/metrics", m.Handler()))
	msrv := &http.Server{Handler: mux, ReadHeaderTimeout: f.timeouts.readHeader, WriteTimeout: f.timeouts.write,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go msrv.Serve(mln)
	log.Info("metrics listening", "addr", mln.Addr().String())
	fmt.Fprintf(c.stdout, "imbee metrics on http://%s/metrics\n", mln.Addr())
	return func() { msrv.Close() }, nil
}

// serveDebug serves Go's pprof profiles on addr, --debug-addr.
func serveDebug(addr string, log *slog.Logger) (closeFn func(), err error) {
	dbg, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	go http.Serve(dbg, mux)
	log.Info("pprof listening", "addr", dbg.Addr().String())
	return func() { dbg.Close() }, nil
}

// serveHTTP serves h on ln until ctx ends, then shuts down: the listener
// closes, open connections are drained (see connTracker), and requests
// on their way are answered.
func (c *cli) serveHTTP(ctx context.Context, f *serveFlags, ln net.Listener, base string, h http.Handler, log *slog.Logger) error {
	conns := newConnTracker()
	srv := &http.Server{
		Handler:           conns.handler(h),
		ConnState:         conns.track,
		ReadHeaderTimeout: f.timeouts.readHeader,
		ReadTimeout:       f.timeouts.read,
		WriteTimeout:      f.timeouts.write,
		IdleTimeout:       f.timeouts.idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
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

// purger is the storage purgeExpired cleans.
type purger interface {
	PurgeOnce(ctx context.Context, purge func(ctx context.Context) error) (ran bool, err error)
	PurgeIdempotencyKeys(ctx context.Context) (int64, error)
	PurgeRevocations(ctx context.Context, before time.Time) (int64, error)
	PurgeRateBuckets(ctx context.Context) (int64, error)
	PurgeEvents(ctx context.Context) (int64, error)
	PurgeAppSessions(ctx context.Context) (int64, error)
	PurgeLinkSessions(ctx context.Context) (int64, error)
	PurgePresence(ctx context.Context) (int64, error)
}

// purgeExpired deletes expired Idempotency-Keys, old revocations, idle
// rate limit buckets, old events, ended web app and link sessions and dead
// servers' presence now and then, one server of an
// installation at a time; until it does, an expired key is already treated
// as new.
func purgeExpired(ctx context.Context, s purger, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_, err := s.PurgeOnce(ctx, func(ctx context.Context) error {
			n, keysErr := s.PurgeIdempotencyKeys(ctx)
			if n > 0 {
				log.Info("purged idempotency keys", "count", n)
			}
			_, revErr := s.PurgeRevocations(ctx, now().Add(-keepRevocations))
			_, bucketsErr := s.PurgeRateBuckets(ctx)
			_, eventsErr := s.PurgeEvents(ctx)
			_, sessionsErr := s.PurgeAppSessions(ctx)
			_, linkSessionsErr := s.PurgeLinkSessions(ctx)
			_, presenceErr := s.PurgePresence(ctx)
			return errors.Join(keysErr, revErr, bucketsErr, eventsErr, sessionsErr, linkSessionsErr, presenceErr)
		})
		if err != nil && ctx.Err() == nil {
			log.Error("purge expired rows", "err", err)
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

// Package metrics gives the server's Prometheus metrics: HTTP requests,
// the delivery and webhook queues (read from the database at scrape time),
// the database pools, the Go runtime and the process, and the build.
package metrics

import (
	"database/sql"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/imbee/imbee"
)

// Build is what imbee_build_info says of the running binary.
type Build struct {
	Version, Revision, GoVersion string
}

// Metrics is the server's own registry (never the global one: tests start
// several servers in one process) and the request instruments.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// What this server sent, counted as it happens: counting the sent
	// rows at each scrape would cost more as the history grows.
	deliveriesSent *prometheus.CounterVec
	webhooksSent   prometheus.Counter

	// series is copied on write: a request reads it with one atomic load,
	// and a new label set, rare, copies it under mu.
	mu     sync.Mutex
	series atomic.Pointer[map[requestKey]requestSeries]
}

// requestKey is one label set of imbee_http_requests_total.
type requestKey struct {
	route    string
	status   int
	code     imbee.Code
	envelope bool
}

// requestSeries are a label set's resolved children, so that a request
// costs two atomic adds and no label hashing.
type requestSeries struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

// New makes the registry: the request metrics, the queue metrics read from
// stats, each database pool's (by name), the Go runtime's, the process's
// and the build's.
func New(build Build, stats Source, pools map[string]*sql.DB, log *slog.Logger) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imbee_http_requests_total",
			Help: "HTTP requests answered, by route pattern, envelope code (empty for pages and other non-envelope answers) and HTTP status.",
		}, []string{"route", "code", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imbee_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern (sockets: their whole life).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
	}
	m.deliveriesSent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imbee_deliveries_sent_total",
		Help: "Link deliveries this server sent, by channel.",
	}, []string{"channel"})
	m.webhooksSent = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "imbee_webhook_events_sent_total",
		Help: "Bot webhook events this server delivered.",
	})
	for _, ch := range channels {
		m.deliveriesSent.WithLabelValues(string(ch)) // reported from 0
	}
	m.series.Store(&map[requestKey]requestSeries{})
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "imbee_build_info",
		Help:        "Always 1; the labels say which imbee runs.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": build.GoVersion},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(m.requests, m.duration, m.deliveriesSent, m.webhooksSent, buildInfo, newQueueCollector(stats, log),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for name, db := range pools {
		m.reg.MustRegister(collectors.NewDBStatsCollector(db, name))
	}
	return m
}

// DeliverySent counts a link delivery sent on ch, once its record is
// committed (writes.Queues).
func (m *Metrics) DeliverySent(ch imbee.Channel) { m.deliveriesSent.WithLabelValues(string(ch)).Inc() }

// WebhookSent counts a webhook event delivered, once its record is
// committed (writes.Queues).
func (m *Metrics) WebhookSent() { m.webhooksSent.Inc() }

// Handler serves the registry in the Prometheus text format. A collector
// that fails does not fail the scrape: the others are still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// ObserveRequest counts an answered request and its duration. code is the
// envelope's when envelope is set; a status of 0 (nothing written) is 200.
func (m *Metrics) ObserveRequest(route string, status int, code imbee.Code, envelope bool, took time.Duration) {
	if status == 0 {
		status = http.StatusOK
	}
	k := requestKey{route: route, status: status, code: code, envelope: envelope}
	s, ok := (*m.series.Load())[k]
	if !ok {
		s = m.resolve(k)
	}
	s.count.Inc()
	s.duration.Observe(took.Seconds())
}

// resolve makes, once per label set, the children a request updates. Label
// sets are few: routes are patterns, codes and statuses small sets.
func (m *Metrics) resolve(k requestKey) requestSeries {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if s, ok := old[k]; ok {
		return s
	}
	code := ""
	if k.envelope {
		code = strconv.Itoa(int(k.code))
	}
	s := requestSeries{
		count:    m.requests.WithLabelValues(k.route, code, strconv.Itoa(k.status)),
		duration: m.duration.WithLabelValues(k.route),
	}
	series := make(map[requestKey]requestSeries, len(old)+1)
	maps.Copy(series, old)
	series[k] = s
	m.series.Store(&series)
	return s
}

// Instrument counts the requests h answers under route, for a handler
// outside the API's (the metrics listener's).
func (m *Metrics) Instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		m.ObserveRequest(route, sw.status, imbee.CodeOK, false, time.Since(start))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

package metrics

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the pools' driver

	"github.com/imbee/imbee"
)

// fakeSource answers the queue reads with fixed numbers or errors, and
// records the deadline it was given.
type fakeSource struct {
	queues   imbee.QueueStats
	queueErr error
	deadline time.Duration
}

func (f *fakeSource) Queues(ctx context.Context) (imbee.QueueStats, error) {
	if d, ok := ctx.Deadline(); ok {
		f.deadline = time.Until(d)
	}
	return f.queues, f.queueErr
}

// scrape gathers m's registry into "name{label="value",…}" → value, labels
// sorted by name; histograms give their _count and _sum.
func scrape(t *testing.T, m *Metrics) map[string]float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+`"`+l.GetValue()+`"`)
			}
			sort.Strings(labels)
			key := "{" + strings.Join(labels, ",") + "}"
			switch {
			case mt.GetCounter() != nil:
				out[f.GetName()+key] = mt.GetCounter().GetValue()
			case mt.GetGauge() != nil:
				out[f.GetName()+key] = mt.GetGauge().GetValue()
			case mt.GetHistogram() != nil:
				out[f.GetName()+"_count"+key] = float64(mt.GetHistogram().GetSampleCount())
				out[f.GetName()+"_sum"+key] = mt.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

func newTestMetrics(t *testing.T, src Source, log *slog.Logger) *Metrics {
	t.Helper()
	db, err := sql.Open("sqlite", "file::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(Build{Version: "v1.2.3", Revision: "abc123", GoVersion: "go1.26.8"}, src, map[string]*sql.DB{"read": db}, log)
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestObserveRequest(t *testing.T) {
	m := newTestMetrics(t, &fakeSource{}, discard())
	m.ObserveRequest("/token/new", 200, imbee.CodeOK, true, 3*time.Millisecond)
	m.ObserveRequest("/token/new", 200, imbee.CodeOK, true, 2*time.Millisecond)
	m.ObserveRequest("/token/new", 400, imbee.CodeParam, true, time.Millisecond)
	m.ObserveRequest("/l/{token}", 0, imbee.CodeOK, false, 20*time.Millisecond) // nothing written: 200
	m.ObserveRequest("unknown", 404, imbee.CodeGeneric, true, 100*time.Microsecond)

	got := scrape(t, m)
	for series, want := range map[string]float64{
		`imbee_http_requests_total{code="0",route="/token/new",status="200"}`: 2,
		`imbee_http_requests_total{code="6",route="/token/new",status="400"}`: 1,
		`imbee_http_requests_total{code="",route="/l/{token}",status="200"}`:  1,
		`imbee_http_requests_total{code="1",route="unknown",status="404"}`:    1,
		`imbee_http_request_duration_seconds_count{route="/token/new"}`:       3,
		`imbee_http_request_duration_seconds_count{route="/l/{token}"}`:       1,
		`imbee_http_request_duration_seconds_count{route="unknown"}`:          1,
	} {
		if got[series] != want {
			t.Errorf("%s = %v, want %v", series, got[series], want)
		}
	}
	if sum := got[`imbee_http_request_duration_seconds_sum{route="/token/new"}`]; math.Abs(sum-0.006) > 1e-9 {
		t.Errorf("duration sum of /token/new = %v s, want 0.006", sum)
	}
	var total float64
	for series, v := range got {
		if strings.HasPrefix(series, "imbee_http_requests_total{") {
			total += v
		}
	}
	if total != 5 {
		t.Errorf("%v requests counted in all, want 5: %v", total, got)
	}
}

func TestInstrument(t *testing.T) {
	m := newTestMetrics(t, &fakeSource{}, discard())
	h := m.Instrument("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("fail") {
			http.Error(w, "no", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	}))
	for _, target := range []string{"/metrics", "/metrics", "/metrics?fail"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", target, nil))
	}
	got := scrape(t, m)
	if got[`imbee_http_requests_total{code="",route="/metrics",status="200"}`] != 2 ||
		got[`imbee_http_requests_total{code="",route="/metrics",status="500"}`] != 1 {
		t.Errorf("instrumented handler counts: %v", got)
	}
}

func TestQueueMetrics(t *testing.T) {
	src := &fakeSource{
		queues: imbee.QueueStats{
			Deliveries: map[imbee.QueueKey]int64{
				{Channel: imbee.ChannelMail, Status: imbee.DeliveryQueued}: 2,
				{Channel: imbee.ChannelMail, Status: imbee.DeliveryFailed}: 1,
				{Channel: imbee.ChannelSMS, Status: imbee.DeliverySending}: 1,
				{Channel: imbee.ChannelSMS, Status: imbee.DeliveryDead}:    3,
			},
			Webhooks:       map[imbee.DeliveryStatus]int64{imbee.DeliveryQueued: 4, imbee.DeliveryDead: 1},
			OldestDelivery: 120,
			OldestWebhook:  30,
		},
	}
	m := newTestMetrics(t, src, discard())
	// What was sent is counted as it happens, not read from the database.
	for range 10 {
		m.DeliverySent(imbee.ChannelMail)
	}
	for range 7 {
		m.WebhookSent()
	}
	got := scrape(t, m)
	want := map[string]float64{
		`imbee_stats_up{}`: 1,
		`imbee_deliveries{channel="mail",state="queued"}`:                           2,
		`imbee_deliveries{channel="mail",state="sending"}`:                          0,
		`imbee_deliveries{channel="mail",state="failed"}`:                           1,
		`imbee_deliveries{channel="mail",state="dead"}`:                             0,
		`imbee_deliveries_sent_total{channel="mail"}`:                               10,
		`imbee_deliveries_sent_total{channel="sms"}`:                                0,
		`imbee_webhook_events_sent_total{}`:                                         7,
		`imbee_deliveries{channel="sms",state="queued"}`:                            0,
		`imbee_deliveries{channel="sms",state="sending"}`:                           1,
		`imbee_deliveries{channel="sms",state="failed"}`:                            0,
		`imbee_deliveries{channel="sms",state="dead"}`:                              3,
		`imbee_webhook_events{state="queued"}`:                                      4,
		`imbee_webhook_events{state="sending"}`:                                     0,
		`imbee_webhook_events{state="failed"}`:                                      0,
		`imbee_webhook_events{state="dead"}`:                                        1,
		`imbee_queue_depth{queue="deliveries"}`:                                     4, // the dead do not wait
		`imbee_queue_depth{queue="webhooks"}`:                                       4,
		`imbee_queue_oldest_age_seconds{queue="deliveries"}`:                        120,
		`imbee_queue_oldest_age_seconds{queue="webhooks"}`:                          30,
		`imbee_build_info{goversion="go1.26.8",revision="abc123",version="v1.2.3"}`: 1,
		`go_sql_max_open_connections{db_name="read"}`:                               0,
	}
	for series, v := range want {
		if g, ok := got[series]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", series, g, ok, v)
		}
	}
	for series := range got {
		if strings.HasPrefix(series, "imbee_deliveries{") || strings.HasPrefix(series, "imbee_webhook_events{") {
			if _, ok := want[series]; !ok {
				t.Errorf("unexpected series %s", series)
			}
		}
	}
	for _, family := range []string{"go_goroutines{}", "process_cpu_seconds_total{}"} {
		if _, ok := got[family]; !ok {
			t.Errorf("%s missing", family)
		}
	}
	if src.deadline <= 0 || src.deadline > statsTimeout {
		t.Errorf("queues read with %v left, want a deadline within %v", src.deadline, statsTimeout)
	}
}

// TestQueueMetricsFailure: a failed read shows as imbee_stats_up 0 and in
// the log, drops only what it would have read, and the scrape still
// serves everything else.
func TestQueueMetricsFailure(t *testing.T) {
	var logs bytes.Buffer
	src := &fakeSource{
		queueErr: errors.New("database is locked"),
	}
	m := newTestMetrics(t, src, slog.New(slog.NewTextHandler(&logs, nil)))
	m.ObserveRequest("/healthz", 200, imbee.CodeOK, true, time.Millisecond)
	for range 5 {
		m.DeliverySent(imbee.ChannelSMS)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if rec.Code != 200 {
		t.Fatalf("scrape: HTTP %d\n%s", rec.Code, body)
	}
	for _, want := range []string{
		"imbee_stats_up 0\n",
		`imbee_deliveries_sent_total{channel="sms"} 5` + "\n",
		`imbee_http_requests_total{code="0",route="/healthz",status="200"} 1` + "\n",
		"imbee_build_info{",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, absent := range []string{"imbee_queue_depth{", "imbee_queue_oldest_age_seconds{", `state="queued"`} {
		if strings.Contains(body, absent) {
			t.Errorf("scrape has %q, read by the failed query", absent)
		}
	}
	if !strings.Contains(logs.String(), "database is locked") {
		t.Errorf("the failure is not logged: %s", logs.String())
	}

}

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/imbee/imbee/internal/testkit"
)

// scrape GETs a /metrics URL and returns its samples as
// `name{label="value",…}` (labels sorted) → value; histograms give their
// _count and _sum.
func scrape(t testing.TB, url string) map[string]float64 {
	t.Helper()
	resp, err := (&http.Client{Transport: validated(t, http.DefaultTransport)}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: HTTP %d, %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: not the Prometheus text format: %v", url, err)
	}
	out := map[string]float64{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.GetCounter() != nil:
				out[name+key] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				out[name+key] = m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				out[name+"_count"+key] = float64(m.GetHistogram().GetSampleCount())
				out[name+"_sum"+key] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// TestOps: /metrics counts each request under its route, code and status,
// times it, and reads the delivery queue and the database pools; /healthz
// and /readyz answer in the envelope; /readyz turns 503 when the schema
// falls behind the server.
func TestOps(t *testing.T) { testkit.ForEachBackend(t, testOps) }

func testOps(t *testing.T) {
	box := newMailbox(t, "", "") // never up: the mail server refuses connections
	s := startServer(t, box.flags()...)
	c := s.newCorporate(t, "Acme")
	metrics := s.URL + "/metrics"

	before := scrape(t, metrics)
	expect(t, s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "ana"}), 200, 0)
	expect(t, s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": ""}), 400, 6)
	expect(t, s.call(t, "GET", "/no/such/endpoint", nil, ""), 404, 1)
	after := scrape(t, metrics)
	for series, delta := range map[string]float64{
		`imbee_http_requests_total{code="0",route="/third_parties/user/new",status="200"}`: 1,
		`imbee_http_requests_total{code="6",route="/third_parties/user/new",status="400"}`: 1,
		`imbee_http_requests_total{code="1",route="unknown",status="404"}`:                 1,
		`imbee_http_request_duration_seconds_count{route="/third_parties/user/new"}`:       2,
		`imbee_http_request_duration_seconds_count{route="unknown"}`:                       1,
	} {
		if got := after[series] - before[series]; got != delta {
			t.Errorf("%s went up by %v, want %v", series, got, delta)
		}
	}
	if after[`imbee_http_request_duration_seconds_sum{route="/third_parties/user/new"}`] <= before[`imbee_http_request_duration_seconds_sum{route="/third_parties/user/new"}`] {
		t.Error("the duration of /third_parties/user/new did not add up")
	}
	// The first scrape is counted too, as a page: no envelope code.
	if after[`imbee_http_requests_total{code="",route="/metrics",status="200"}`] < 1 {
		t.Errorf("scrapes are not counted: %v", after[`imbee_http_requests_total{code="",route="/metrics",status="200"}`])
	}

	// Health, in the envelope, and counted.
	h := s.call(t, "GET", "/healthz", nil, "")
	expect(t, h, 200, 0)
	r := s.call(t, "GET", "/readyz", nil, "")
	expect(t, r, 200, 0)
	if h.str("status") != "ok" || r.str("status") != "ready" {
		t.Errorf("/healthz %s, /readyz %s", h.Raw, r.Raw)
	}
	expect(t, s.call(t, "POST", "/healthz", map[string]string{"Content-Type": "application/json"}, "{}"), 405, 1)
	got := scrape(t, metrics)
	for _, series := range []string{
		`imbee_http_requests_total{code="0",route="/healthz",status="200"}`,
		`imbee_http_requests_total{code="0",route="/readyz",status="200"}`,
		`imbee_http_requests_total{code="1",route="/healthz",status="405"}`,
	} {
		if got[series] != 1 {
			t.Errorf("%s = %v, want 1", series, got[series])
		}
	}

	// The database pools, the build, the runtime.
	pools := []string{"read", "write"}
	if s.postgres() {
		pools = []string{"postgres"}
	}
	for _, p := range pools {
		if _, ok := got[`go_sql_max_open_connections{db_name="`+p+`"}`]; !ok {
			t.Errorf("no metrics of the %s pool", p)
		}
	}
	if !s.postgres() && got[`go_sql_max_open_connections{db_name="write"}`] != 1 {
		t.Errorf("SQLite's writer pool has %v connections, want 1", got[`go_sql_max_open_connections{db_name="write"}`])
	}
	out, _, err := runCLI(t, nil, "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Version, Revision, Go string }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if info := fmt.Sprintf(`imbee_build_info{goversion=%q,revision=%q,version=%q}`, v.Go, v.Revision, v.Version); got[info] != 1 {
		t.Errorf("%s missing", info)
	}
	for _, series := range []string{"go_goroutines{}", "process_resident_memory_bytes{}"} {
		if got[series] <= 0 {
			t.Errorf("%s = %v", series, got[series])
		}
	}

	// A link whose mail cannot go out waits in the queue, and ages there.
	expect(t, s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com"}), 200, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = scrape(t, metrics)
		if got[`imbee_queue_oldest_age_seconds{queue="deliveries"}`] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the waiting delivery did not age: %v", got[`imbee_queue_oldest_age_seconds{queue="deliveries"}`])
		}
		time.Sleep(250 * time.Millisecond)
	}
	waiting := got[`imbee_deliveries{channel="mail",state="queued"}`] + got[`imbee_deliveries{channel="mail",state="sending"}`] +
		got[`imbee_deliveries{channel="mail",state="failed"}`]
	if waiting != 1 || got[`imbee_queue_depth{queue="deliveries"}`] != 1 || got[`imbee_deliveries_sent_total{channel="mail"}`] != 0 {
		t.Errorf("one mail waits: mail queued+sending+failed %v, depth %v, sent %v", waiting,
			got[`imbee_queue_depth{queue="deliveries"}`], got[`imbee_deliveries_sent_total{channel="mail"}`])
	}
	if got["imbee_stats_up{}"] != 1 || got[`imbee_queue_depth{queue="webhooks"}`] != 0 {
		t.Errorf("imbee_stats_up %v, webhook queue depth %v", got["imbee_stats_up{}"], got[`imbee_queue_depth{queue="webhooks"}`])
	}

	// A schema behind the server (an old backup restored under it): not
	// ready, and the message says what to do.
	db := s.openDB(t, false)
	var latest, previous int64
	if err := db.QueryRow(`SELECT MAX(version_id) FROM goose_db_version`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf(`DELETE FROM goose_db_version WHERE version_id = %d`, latest)); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT MAX(version_id) FROM goose_db_version`).Scan(&previous); err != nil {
		t.Fatal(err)
	}
	r = s.call(t, "GET", "/readyz", nil, "")
	expect(t, r, 503, 1)
	if want := fmt.Sprintf("database schema at version %d, this server needs %d: run imbee migrate", previous, latest); r.Message != want {
		t.Errorf("/readyz message %q, want %q", r.Message, want)
	}
	expect(t, s.call(t, "GET", "/healthz", nil, ""), 200, 0) // alive all the same
}

// TestSentCounted: what a server sends is counted as it is sent
// (imbee_deliveries_sent_total), not by counting the database's history at
// each scrape; the backlog's gauges carry no "sent" state any more.
func TestSentCounted(t *testing.T) { testkit.ForEachBackend(t, testSentCounted) }

func testSentCounted(t *testing.T) {
	s := startServer(t) // the logging transport: every mail and SMS "goes out"
	c := s.newCorporate(t, "Acme")
	expect(t, s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com", "celullar": "+34612345678"}), 200, 0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := scrape(t, s.URL+"/metrics")
		if got[`imbee_deliveries_sent_total{channel="mail"}`] == 1 && got[`imbee_deliveries_sent_total{channel="sms"}`] == 1 {
			for series := range got {
				if strings.Contains(series, `state="sent"`) {
					t.Errorf("%s: the history is still counted at scrape time", series)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sent deliveries not counted: mail %v, sms %v", got[`imbee_deliveries_sent_total{channel="mail"}`], got[`imbee_deliveries_sent_total{channel="sms"}`])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestMetricsAddr: with --metrics-addr, /metrics is served there only, and
// the scrapes there are counted.
func TestMetricsAddr(t *testing.T) {
	s := startServer(t, "--metrics-addr", "127.0.0.1:0")
	m := regexp.MustCompile(`imbee metrics on (http://\S+)`).FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("the metrics address is not announced:\n%s", s.stdout.String())
	}
	// docs/openapi.json: with --metrics-addr, /metrics here is an unknown path.
	resp, err := (&http.Client{Transport: validated(t, http.DefaultTransport)}).Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || !envelopeShape.Match(body) || !strings.Contains(string(body), `"code":1,`) {
		t.Errorf("/metrics on the main address: HTTP %d %s, want the envelope's 404", resp.StatusCode, body)
	}
	scrape(t, m[1])
	got := scrape(t, m[1])
	if got[`imbee_http_requests_total{code="",route="/metrics",status="200"}`] < 1 {
		t.Error("scrapes on --metrics-addr are not counted")
	}
	if got[`imbee_http_requests_total{code="1",route="unknown",status="404"}`] != 1 {
		t.Error("the main address's 404 for /metrics is not counted as an unknown route")
	}
	resp, err = http.Get(strings.TrimSuffix(m[1], "/metrics") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("the metrics address serves /healthz: HTTP %d", resp.StatusCode)
	}
}

// TestAttackMetricsFromOutside: /metrics on the main address answers only
// the allowed networks (loopback by default), never a request a proxy
// forwarded (a proxy on this host makes every visitor look local), and
// refuses exactly as an unknown path does.
func TestAttackMetricsFromOutside(t *testing.T) {
	get := func(t *testing.T, url string, header map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", url, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := (&http.Client{Transport: validated(t, http.DefaultTransport)}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	unknown := func(t *testing.T, status int, body string) {
		t.Helper()
		if status != 404 || !envelopeShape.MatchString(body) || !strings.Contains(body, `"code":1,`) || strings.Contains(body, "imbee_") {
			t.Errorf("want the unknown path's 404 envelope, got HTTP %d %.200s", status, body)
		}
	}
	s := startServer(t)
	if status, body := get(t, s.URL+"/metrics", nil); status != 200 || !strings.Contains(body, "imbee_") {
		t.Fatalf("loopback scrape: HTTP %d %.200s", status, body)
	}
	for _, h := range []map[string]string{
		{"X-Forwarded-For": "203.0.113.7"},
		{"Forwarded": "for=203.0.113.7"},
		{"X-Real-IP": "203.0.113.7"},
		{"X-Forwarded-For": "127.0.0.1"}, // a forged local origin is still forwarded
	} {
		status, body := get(t, s.URL+"/metrics", h)
		unknown(t, status, body)
	}
	// Behind a trusted proxy, the forwarded client is the one checked.
	proxied := startServer(t, "--trusted-proxies", "127.0.0.1")
	status, body := get(t, proxied.URL+"/metrics", map[string]string{"X-Forwarded-For": "203.0.113.7"})
	unknown(t, status, body)
	if status, body := get(t, proxied.URL+"/metrics", map[string]string{"X-Forwarded-For": "127.0.0.5"}); status != 200 || !strings.Contains(body, "imbee_") {
		t.Errorf("a loopback client through a trusted proxy: HTTP %d %.200s", status, body)
	}
	// A network list without loopback shuts this client out.
	other := startServer(t, "--metrics-allow", "10.0.0.0/8, 192.0.2.1")
	status, body = get(t, other.URL+"/metrics", nil)
	unknown(t, status, body)
	if _, _, err := runCLI(t, nil, "serve", "--metrics-allow", "not-a-network", "--db", "sqlite:"+t.TempDir()+"/x.db"); err == nil {
		t.Error("a malformed --metrics-allow was accepted")
	}
}

// TestVersion: imbee version says the version, revision, Go version and
// platform, as text and as one JSON object; --version is the same.
func TestVersion(t *testing.T) {
	out, _, err := runCLI(t, nil, "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version --json: %v: %s", err, out)
	}
	var keys []string
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "go,modified,platform,revision,time,version" {
		t.Errorf("version --json keys %v: %s", keys, out)
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	if v["go"] != runtime.Version() || v["platform"] != platform {
		t.Errorf("version --json: go %v, platform %v; want %s %s", v["go"], v["platform"], runtime.Version(), platform)
	}
	version, _ := v["version"].(string)
	if version == "" {
		t.Errorf("version --json: no version: %s", out)
	}
	if _, ok := v["modified"].(bool); !ok {
		t.Errorf("version --json: modified is not a boolean: %s", out)
	}

	text, _, err := runCLI(t, nil, "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"imbee " + version + "\n", "go:       " + runtime.Version() + "\n", "platform: " + platform + "\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("imbee version lacks %q:\n%s", want, text)
		}
	}
	if alias, _, err := runCLI(t, nil, "--version"); err != nil || alias != text {
		t.Errorf("imbee --version = %q, %v; want imbee version's output", alias, err)
	}
	if usage, _, _ := runCLI(t, nil, "help"); !strings.Contains(usage, "imbee version") {
		t.Error("the usage does not list imbee version")
	}
}

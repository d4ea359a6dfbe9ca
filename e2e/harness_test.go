// Package e2e runs the real imbee command (serve and the admin commands,
// through cli.Run as main does) on a temporary SQLite file and talks to it
// over HTTP like an integrator and a person with a browser would.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/cli"
	"github.com/imbee/imbee/internal/pgtest"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/testkit"
)

// syncBuffer is an io.Writer that tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is a running "imbee serve".
type server struct {
	t testing.TB
	dbSpec
	URL    string
	stdout *syncBuffer
	logs   *syncBuffer
	stop   func() error
	kill   func() // processes only (startProcess): SIGKILL, and wait for the exit

	// The demo corporate and bot that a first start creates.
	auth, token, bot string
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// dbSpec is where a server keeps its data: the --db and --key-file flags.
type dbSpec struct {
	db      string
	keyFile string
}

func (d dbSpec) postgres() bool { return strings.HasPrefix(d.db, "postgres") }

func (d dbSpec) flags() []string { return []string{"--db", d.db, "--key-file", d.keyFile} }

// openDB opens the database directly, for what no command does; readOnly
// keeps a test from changing what it inspects. It is closed with the test.
func (d dbSpec) openDB(t testing.TB, readOnly bool) *sql.DB {
	t.Helper()
	driver, dsn := "pgx", d.db
	if !d.postgres() {
		pragmas := []string{"busy_timeout=10000"}
		if readOnly {
			pragmas = append(pragmas, "query_only=1")
		}
		driver, dsn = store.SQLiteDriver, store.SQLiteDSN(strings.TrimPrefix(d.db, "sqlite:"), pragmas...)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// newDB makes a new, empty database of the backend t runs under. With
// IMBEE_TEST_PG_PARTITIONED set, the suite runs on PostgreSQL only, on
// databases whose schema is migrated and then hash-partitioned by tenant
// (pgtest.Partition), as a distributed engine would hold it.
func newDB(t testing.TB) dbSpec {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "imbee.key")
	if !pgtest.Partitioned() {
		return dbSpec{db: testkit.DSN(t), keyFile: keyFile}
	}
	if !testkit.Postgres(t) {
		t.Skipf("%s: PostgreSQL only", pgtest.EnvPartitioned)
	}
	return dbSpec{db: pgtest.PartitionedURL(t, migrateSchema), keyFile: keyFile}
}

func migrateSchema(url string) error {
	_, err := store.Migrate(context.Background(), url)
	return err
}

// startServer runs "imbee serve" on a free port and a new database, and
// waits until it listens.
func startServer(t testing.TB, args ...string) *server {
	t.Helper()
	return startServerOn(t, newDB(t), args...)
}

func startServerOn(t testing.TB, d dbSpec, args ...string) *server {
	t.Helper()
	s := &server{t: t, dbSpec: d, stdout: &syncBuffer{}, logs: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	argv := append(append([]string{"serve", "--addr", "127.0.0.1:0", "--rate-limit", "0", "--recipient-limit", "0", "--probe-limit", "0", "--auth-fail-limit", "0", "--web-send-limit", "0", "--allow-private-webhooks"}, d.flags()...), args...)
	go func() { done <- cli.Run(ctx, argv, noEnv, s.stdout, s.logs) }()
	s.stop = func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			return fmt.Errorf("server did not stop within 20 s")
		}
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			if err := s.stop(); err != nil {
				t.Errorf("server stop: %v", err)
			}
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	re := regexp.MustCompile(`imbee listening on (http://\S+)`)
	for {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			s.URL = m[1]
			break
		}
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("server exited early: %v\nlogs:\n%s", err, s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start; logs:\n%s", s.logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	s.auth = field(s.stdout.String(), "Authorization:")
	s.token = field(s.stdout.String(), "X-WOOS-KEY:")
	s.bot = field(s.stdout.String(), "bot_idsha:")
	origStop := s.stop
	s.stop = func() error { stopped = true; return origStop() }
	return s
}

func noEnv(string) string { return "" }

// field returns the word after label on the first line that has it.
func field(out, label string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if i := strings.Index(line, label); i >= 0 {
			if f := strings.Fields(line[i+len(label):]); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

// imbee runs an admin command against the server's database.
func (s *server) imbee(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	argv := append(append([]string{}, args...), s.flags()...)
	err := cli.Run(context.Background(), argv, noEnv, &out, &errOut)
	if err != nil {
		return out.String(), fmt.Errorf("%v: %s", err, errOut.String())
	}
	return out.String(), nil
}

// corporate is a tenant's credentials and one of its bots.
type corporate struct {
	id          int64
	auth, token string
	bot         string
}

// newCorporate creates a corporate and a bot with the CLI while the server runs.
func (s *server) newCorporate(t testing.TB, name string) corporate {
	t.Helper()
	out, err := s.imbee("corporate", "create", "--name", name, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID             int64  `json:"id"`
		Auth           string `json:"auth"`
		CorporateToken string `json:"corporate_token"`
	}
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("corporate create --json: %v: %s", err, out)
	}
	out, err = s.imbee("bot", "create", "--corporate", fmt.Sprint(c.ID), "--name", name+" Bot", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var b struct {
		BotIDSha string `json:"bot_idsha"`
	}
	if err := json.Unmarshal([]byte(out), &b); err != nil || b.BotIDSha == "" {
		t.Fatalf("bot create --json: %v: %s", err, out)
	}
	return corporate{id: c.ID, auth: c.Auth, token: c.CorporateToken, bot: b.BotIDSha}
}

func (s *server) demo() corporate {
	return corporate{id: 1, auth: s.auth, token: s.token, bot: s.bot}
}

// envelope is a decoded API response.
type envelope struct {
	Status  int
	Header  http.Header
	Raw     string
	Time    float64        `json:"time"`
	Code    int            `json:"code"`
	Message string         `json:"message"`
	Body    map[string]any `json:"body"`
}

func (e envelope) str(key string) string {
	v, _ := e.Body[key].(string)
	return v
}

// envelopeShape is the document's format, keys in its order.
var envelopeShape = regexp.MustCompile(`^\{"time":[0-9]+\.[0-9]+,"code":[0-9]+,"message":"(?:[^"\\]|\\.)*","body":\{.*\}\}\n?$`)

// call sends a request with exact headers and body and decodes the envelope.
func (s *server) call(t testing.TB, method, path string, headers map[string]string, body string) envelope {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: validated(t, http.DefaultTransport)}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	e := envelope{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if !envelopeShape.Match(raw) {
		t.Fatalf("%s %s: response is not the envelope: %d %q", method, path, resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		t.Fatalf("%s %s: %v: %q", method, path, err, raw)
	}
	if e.Body == nil {
		t.Fatalf("%s %s: body is not an object: %q", method, path, raw)
	}
	return e
}

// post calls the API as an integrator: JSON, with the given credentials.
func (s *server) post(t testing.TB, path, auth, key string, body any) envelope {
	t.Helper()
	b, ok := body.(string)
	if !ok {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		b = string(j)
	}
	h := map[string]string{"Content-Type": "application/json"}
	if auth != "" {
		h["Authorization"] = auth
	}
	if key != "" {
		h["X-WOOS-KEY"] = key
	}
	return s.call(t, "POST", path, h, b)
}

func expect(t testing.TB, e envelope, status, code int) {
	t.Helper()
	if e.Status != status || e.Code != code {
		t.Fatalf("got HTTP %d code %d, want HTTP %d code %d: %s", e.Status, e.Code, status, code, e.Raw)
	}
}

type user struct {
	idsha, pass, apikey string
}

func (s *server) newUser(t testing.TB, c corporate, uniqueID string) user {
	t.Helper()
	u, err := s.client(t, c).NewUser(t.Context(), client.NewUserRequest{UniqueIDSha: uniqueID})
	if err != nil {
		t.Fatalf("new user %q: %v", uniqueID, err)
	}
	return user{idsha: u.VirtualUser, pass: u.Pass, apikey: u.APIKey}
}

// browser is a person's browser: it keeps cookies and does not follow
// redirects, so tests see each step.
func browser(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Transport: validated(t, http.DefaultTransport), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// page fetches a human page and returns its status and HTML.
func page(t testing.TB, c *http.Client, method, url string) (int, string, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp
}

// storedData returns everything the database holds, as bytes to search:
// for SQLite its files (main, WAL and shared-memory index), for PostgreSQL
// every row of every table as text.
func (s *server) storedData(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	if !s.postgres() {
		base := strings.TrimPrefix(s.db, "sqlite:")
		for _, p := range []string{base, base + "-wal", base + "-shm"} {
			if b, err := os.ReadFile(p); err == nil {
				out[p] = b
			}
		}
		return out
	}
	db, err := sql.Open("pgx", s.db)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables, err := db.Query(`SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	for _, n := range names {
		var rows sql.NullString
		if err := db.QueryRow(`SELECT string_agg(t::text, E'\n') FROM ` + n + ` t`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		out[n] = []byte(rows.String)
	}
	return out
}

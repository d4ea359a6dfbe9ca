// Package pgtest gives tests a PostgreSQL database. It uses the server that
// IMBEE_TEST_POSTGRES names (a URL), or else starts a throwaway one from the
// installed PostgreSQL binaries (Debian's postgresql package): initdb into a
// temporary directory, loopback only, a free port, stopped and removed when
// the package's tests end. Without PostgreSQL, tests that need it are
// skipped with a loud line, except in CI (CI set), where that is a failure.
// PartitionedURL gives a database whose schema is hash-partitioned by tenant,
// as a distributed engine would hold it (partition.go).
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// EnvURL names an existing server to use instead of a throwaway one.
const EnvURL = "IMBEE_TEST_POSTGRES"

var (
	once    sync.Once
	admin   string // URL of the server's maintenance database
	startEr error
	stop    func()
	dbSeq   atomic.Int64
)

// Main runs a package's tests and then stops the throwaway server, if one
// was started. Use it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if stop != nil {
		stop()
	}
	return code
}

// URL returns the URL of a new, empty database for tb.
func URL(tb testing.TB) string {
	tb.Helper()
	return database(tb, "")
}

// database creates a database for tb, a copy of template when one is named.
func database(tb testing.TB, template string) string {
	tb.Helper()
	u, err := createDatabase(server(tb), fmt.Sprintf("imbee_test_%d_%d", os.Getpid(), dbSeq.Add(1)), template)
	if err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	return u
}

// server returns the maintenance URL of the server the package's tests
// use, started on first use.
func server(tb testing.TB) string {
	tb.Helper()
	once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			admin = u
			return
		}
		admin, stop, startEr = Start(false)
	})
	if startEr != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("PostgreSQL is required in CI: %v", startEr)
		}
		fmt.Fprintf(os.Stderr, "\n*** skipped: PostgreSQL (%v) ***\n\n", startEr)
		tb.Skipf("skipped: PostgreSQL: %v", startEr)
	}
	return admin
}

// CreateDatabase creates the database name on the server of adminURL and
// returns its URL.
func CreateDatabase(adminURL, name string) (string, error) {
	return createDatabase(adminURL, name, "")
}

func createDatabase(adminURL, name, template string) (string, error) {
	db, err := sql.Open("pgx", adminURL)
	if err != nil {
		return "", err
	}
	defer db.Close()
	create := "CREATE DATABASE " + name
	if template != "" {
		create += " TEMPLATE " + template
	}
	if _, err := db.Exec(create); err != nil {
		return "", err
	}
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// Start starts a throwaway server and returns the URL of its maintenance
// database and a function that stops and removes it. A durable server
// syncs its writes as a production one does (for benchmarks); otherwise
// fsync is off, which tests do not need.
func Start(durable bool) (adminURL string, stop func(), err error) {
	adminURL, stop, _, err = start(durable)
	return adminURL, stop, err
}

// Own starts a throwaway server for tb alone, stopped when tb ends, and
// returns the URL of a new database on it and a function that restarts
// the server (a fast shutdown: every connection is cut; then the same
// port and data). It is for a test that restarts PostgreSQL under load,
// which a server shared with other tests must not see.
func Own(tb testing.TB) (dbURL string, restart func()) {
	tb.Helper()
	admin, stop, restartFn, err := start(false)
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("PostgreSQL is required in CI: %v", err)
		}
		tb.Skipf("skipped: PostgreSQL: %v", err)
	}
	tb.Cleanup(stop)
	u, err := CreateDatabase(admin, "imbee_own")
	if err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	return u, func() {
		tb.Helper()
		if err := restartFn(); err != nil {
			tb.Fatalf("restart PostgreSQL: %v", err)
		}
	}
}

func start(durable bool) (adminURL string, stop func(), restart func() error, err error) {
	bin, err := binDir()
	if err != nil {
		return "", nil, nil, err
	}
	dir, err := os.MkdirTemp("", "imbee-pg-")
	if err != nil {
		return "", nil, nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	run := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %v: %s", name, err, out)
		}
		return nil
	}
	data := filepath.Join(dir, "data")
	if err := run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	// Loopback only; enough connections for several servers at once.
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c max_connections=300", port, dir)
	if !durable {
		opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	if err := run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "start"); err != nil {
		os.RemoveAll(dir)
		return "", nil, nil, err
	}
	stopFn := func() {
		run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	}
	// pg_ctl restart starts it again with the options it was started with.
	restartFn := func() error {
		return run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-m", "fast", "-w", "-t", "60", "restart")
	}
	u := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	db, err := sql.Open("pgx", u)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = db.PingContext(ctx)
		cancel()
		db.Close()
	}
	if err != nil {
		stopFn()
		return "", nil, nil, err
	}
	return u, stopFn, restartFn, nil
}

// binDir finds the PostgreSQL server binaries: on PATH, or where Debian
// puts them (/usr/lib/postgresql/VERSION/bin), newest version first.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no initdb found: install Debian's postgresql package, or set %s", EnvURL)
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// credential is who runs the server. PostgreSQL refuses to run as root, so
// as root the server runs as the postgres user, owning dir.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run PostgreSQL as")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

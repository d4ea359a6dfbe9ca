// Package store keeps imbee's data. All SQL lives here, one file per
// aggregate; exported methods run one transaction each over unexported
// helpers that take a querier.
//
// On SQLite, writes go through one writer goroutine that commits concurrent
// requests together (group commit): each request runs inside its own
// SAVEPOINT of a shared transaction, so a refused request rolls back alone,
// and every caller gets its own result only after the one fsync that makes
// the whole batch durable. Reads go to a separate pool of read-only
// connections, which WAL mode lets run alongside the writer.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

//go:embed migrations
var migrations embed.FS

// querier is what the SQL helpers need: a transaction or a pool.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Options tune a store.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: "full" (the default: an
	// acknowledged write survives a power loss) or "normal" (survives a
	// process crash; a power loss may lose the last commits).
	Synchronous string
	// Now is the clock; time.Now when nil. Tests set it to move through time.
	Now func() time.Time
}

// Store is imbee's storage.
type Store struct {
	read  *sql.DB
	reads *stmtCache // over read
	write *sql.DB
	w     *writer
	keys  *secret.Keyring
	now   func() time.Time
}

// ParseDSN splits a --db value into its backend and location.
// "sqlite:PATH" (or "sqlite://PATH") selects SQLite.
func ParseDSN(dsn string) (backend, location string, err error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		return "sqlite", strings.TrimPrefix(dsn, "sqlite://"), nil
	case strings.HasPrefix(dsn, "sqlite:"):
		return "sqlite", strings.TrimPrefix(dsn, "sqlite:"), nil
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", dsn, nil
	}
	return "", "", fmt.Errorf("unsupported --db %q: use sqlite:PATH", redactDSN(dsn))
}

// redactDSN hides a password in a database URL before it is shown anywhere.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

// Open opens the database named by dsn, applies pending migrations and checks
// that keys is the key the database was first used with.
func Open(ctx context.Context, dsn string, keys *secret.Keyring, opts Options) (*Store, error) {
	backend, path, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if backend != "sqlite" {
		return nil, errors.New("PostgreSQL is not supported yet: use sqlite:PATH")
	}
	if path == "" {
		return nil, errors.New("--db sqlite: needs a file path")
	}
	sync := strings.ToLower(opts.Synchronous)
	switch sync {
	case "":
		sync = "full"
	case "full", "normal":
	default:
		return nil, fmt.Errorf("synchronous must be full or normal, not %q", opts.Synchronous)
	}
	// busy_timeout first, so that switching to WAL waits for other processes.
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(" + sync + ")&_pragma=foreign_keys(1)&_pragma=temp_store(memory)"
	wdb, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&"+pragmas)
	if err != nil {
		return nil, err
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	rdb, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=query_only(1)")
	if err != nil {
		wdb.Close()
		return nil, err
	}
	rdb.SetMaxOpenConns(8)
	rdb.SetMaxIdleConns(8)

	s := &Store{read: rdb, reads: newStmtCache(rdb), write: wdb, keys: keys, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.migrate(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	if err := s.checkKey(ctx); err != nil {
		s.closeDBs()
		return nil, err
	}
	if s.w, err = newWriter(ctx, wdb); err != nil {
		s.closeDBs()
		return nil, err
	}
	return s, nil
}

// Migrate applies pending migrations to the database named by dsn and
// reports what it applied.
func Migrate(ctx context.Context, dsn string) ([]string, error) {
	_, path, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return migrateDB(ctx, db)
}

func migrateDB(ctx context.Context, db *sql.DB) ([]string, error) {
	fsys, err := fs.Sub(migrations, "migrations/sqlite")
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	if current > target {
		return nil, fmt.Errorf("the database schema is version %d, newer than this imbee knows (%d): upgrade imbee", current, target)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var applied []string
	for _, r := range res {
		applied = append(applied, r.Source.Path)
	}
	return applied, nil
}

func (s *Store) migrate(ctx context.Context) error {
	_, err := migrateDB(ctx, s.write)
	return err
}

// checkKey records the key's fingerprint on first use and refuses a
// different key afterwards: secrets derived with it would not match the
// ones already handed out.
func (s *Store) checkKey(ctx context.Context) error {
	check := s.keys.Check()
	if _, err := s.write.ExecContext(ctx,
		`INSERT INTO meta (name, value) VALUES ('key_check', ?) ON CONFLICT (name) DO NOTHING`, check); err != nil {
		return fmt.Errorf("check server key: %w", err)
	}
	var stored string
	if err := s.write.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'key_check'`).Scan(&stored); err != nil {
		return fmt.Errorf("check server key: %w", err)
	}
	if !secret.Equal([]byte(stored), []byte(check)) {
		return errors.New("the server key does not match this database: start imbee with the key file it was created with (--key-file)")
	}
	return nil
}

// Close finishes pending writes and closes the database.
func (s *Store) Close() error {
	s.w.close()
	return s.closeDBs()
}

func (s *Store) closeDBs() error {
	return errors.Join(s.reads.close(), s.read.Close(), s.write.Close())
}

// inWrite runs fn as one atomic unit of a write transaction and returns
// once it is durable (or has failed). fn's effects are rolled back when it
// returns an error.
func (s *Store) inWrite(ctx context.Context, fn func(q querier) error) error {
	return s.w.do(ctx, fn)
}

// unix is how times are stored.
func unix(t time.Time) int64 { return t.Unix() }

// isUniqueViolation classifies a driver error by its extended code.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// internal wraps an unexpected storage error: code 1, nothing shown to clients.
func internal(op string, err error) error {
	var e *imbee.Error
	if errors.As(err, &e) {
		return err // already classified
	}
	return imbee.Internal(op, err)
}

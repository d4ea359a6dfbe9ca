// Package store keeps imbee's data. All SQL lives here, one file per
// aggregate; exported methods run one transaction each over unexported
// helpers that take a querier. The SQL is written once, with ? placeholders,
// for both backends; the few differences are asked of the store's dialect.
//
// On SQLite, writes go through one writer goroutine that commits concurrent
// requests together (group commit): each request runs inside its own
// SAVEPOINT of a shared transaction, so a refused request rolls back alone,
// and every caller gets its own result only after the one fsync that makes
// the whole batch durable. Reads go to a separate pool of read-only
// connections, which WAL mode lets run alongside the writer.
//
// On PostgreSQL, each write is its own transaction on a pgx pool, and the
// server commits concurrent transactions together itself. Several imbee
// servers may share the database: every invariant is kept by a constraint
// or a conditional statement, never by a check in Go.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

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
	// MaxConns bounds PostgreSQL's connection pool (0: 16).
	MaxConns int
	// StatementTimeout bounds each PostgreSQL statement (0: 10 s).
	StatementTimeout time.Duration
	// Now is the clock; time.Now when nil. Tests set it to move through time.
	Now func() time.Time
}

// Store is imbee's storage.
type Store struct {
	dialect  dialect
	db       *sql.DB       // SQLite: the read-only pool; PostgreSQL: the pool
	pool     *pgxpool.Pool // PostgreSQL
	reads    querier       // reads that need no transaction
	sqlite   *sqliteWriter
	keys     *secret.Keyring
	now      func() time.Time
	instance string // this process's id: a server skips its own events
	// announcer NOTIFYs the other servers of committed events (PostgreSQL).
	announcer *announcer
}

// ParseDSN splits a --db value into its backend ("sqlite" or "postgres")
// and location. "sqlite:PATH" (or "sqlite://PATH") selects SQLite,
// "postgres://…" PostgreSQL.
func ParseDSN(dsn string) (backend, location string, err error) {
	switch {
	case strings.HasPrefix(dsn, "sqlite://"):
		backend, location = "sqlite", strings.TrimPrefix(dsn, "sqlite://")
	case strings.HasPrefix(dsn, "sqlite:"):
		backend, location = "sqlite", strings.TrimPrefix(dsn, "sqlite:")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return "postgres", dsn, nil
	default:
		return "", "", fmt.Errorf("unsupported --db %q: use sqlite:PATH or postgres://…", Redact(dsn))
	}
	if location == "" {
		return "", "", errors.New("--db sqlite: needs a file path")
	}
	return backend, location, nil
}

// Redact hides a password in a database URL before it is shown anywhere.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

// Open opens the database named by dsn, applies pending migrations and checks
// that keys is the key the database was first used with.
func Open(ctx context.Context, dsn string, keys *secret.Keyring, opts Options) (*Store, error) {
	backend, loc, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	s := &Store{keys: keys, now: opts.Now, instance: secret.NewID()}
	if s.now == nil {
		s.now = time.Now
	}
	if backend == "postgres" {
		err = s.openPostgres(ctx, loc, opts)
	} else {
		err = s.openSQLite(ctx, loc, opts)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Migrate applies pending migrations to the database named by dsn and
// reports what it applied.
func Migrate(ctx context.Context, dsn string) ([]string, error) {
	backend, loc, err := ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if backend == "postgres" {
		db, pool, err := openPostgresDB(ctx, loc, Options{MaxConns: 2})
		if err != nil {
			return nil, err
		}
		defer pool.Close()
		defer db.Close()
		return postgresDialect.migrate(ctx, db)
	}
	db, err := sql.Open(SQLiteDriver, SQLiteDSN(loc, "busy_timeout=10000", "journal_mode=WAL", "foreign_keys=1"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // a migration's pragmas hold for its connection only
	return sqliteDialect.migrate(ctx, db)
}

// checkKey records the key's fingerprint on first use and refuses a
// different key afterwards: secrets derived with it would not match the
// ones already handed out.
func (s *Store) checkKey(ctx context.Context, q querier) error {
	check := s.keys.Check()
	if _, err := q.ExecContext(ctx,
		`INSERT INTO meta (name, value) VALUES ('key_check', ?) ON CONFLICT (name) DO NOTHING`, check); err != nil {
		return fmt.Errorf("check server key: %w", err)
	}
	var stored string
	if err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'key_check'`).Scan(&stored); err != nil {
		return fmt.Errorf("check server key: %w", err)
	}
	if !secret.Equal([]byte(stored), []byte(check)) {
		return errors.New("the server key does not match this database: start imbee with the key file it was created with (--key-file)")
	}
	return nil
}

// Close finishes pending writes and closes the database.
func (s *Store) Close() error {
	if s.sqlite != nil {
		return s.sqlite.close()
	}
	return s.closePostgres()
}

// inWrite runs fn as one atomic unit of a write transaction and returns
// once it is durable (or has failed). fn's effects are rolled back when it
// returns an error. fn may run more than once (PostgreSQL retries
// serialization failures), so it must only assign its results.
func (s *Store) inWrite(ctx context.Context, fn func(q querier) error) error {
	if s.sqlite != nil {
		return s.sqlite.w.do(ctx, fn)
	}
	return s.pgWrite(ctx, fn)
}

// unix is how times are stored.
func unix(t time.Time) int64 { return t.Unix() }

// internal wraps an unexpected storage error: code 1, nothing shown to clients.
func internal(op string, err error) error {
	var e *imbee.Error
	if errors.As(err, &e) {
		return err // already classified
	}
	return imbee.Internal(op, err)
}

// boolInt stores a flag as 0 or 1, the same on both backends.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
)

func (s *Store) openPostgres(ctx context.Context, dsn string, opts Options) error {
	db, pool, err := openPostgresDB(ctx, dsn, opts)
	if err != nil {
		return err
	}
	s.dialect, s.db, s.pool, s.reads = postgresDialect, db, pool, rebinder{db}
	s.announcer = startAnnouncer(pool, s.instance)
	if _, err := s.dialect.migrate(ctx, db); err != nil {
		s.closePostgres()
		return err
	}
	if err := s.checkKey(ctx, s.reads); err != nil {
		s.closePostgres()
		return err
	}
	return nil
}

// pgTracer, when a test sets it before Open, sees every statement of the
// pools opened then (partition_test.go).
var pgTracer pgx.QueryTracer

// openPostgresDB opens a pgx pool behind database/sql. pgx prepares and
// caches each distinct statement per connection by itself.
func openPostgresDB(ctx context.Context, dsn string, opts Options) (*sql.DB, *pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("--db %s: %w", Redact(dsn), err)
	}
	cfg.MaxConns = int32(opts.MaxConns)
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 16
	}
	timeout := opts.StatementTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(timeout.Milliseconds(), 10)
	cfg.ConnConfig.RuntimeParams["application_name"] = "imbee"
	cfg.ConnConfig.Tracer = pgTracer
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", Redact(dsn), err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("connect to %s: %w", Redact(dsn), err)
	}
	return stdlib.OpenDBFromPool(pool), pool, nil
}

// closePostgres closes the *sql.DB and then the pgx pool behind it, which
// closing the *sql.DB does not do.
func (s *Store) closePostgres() error {
	s.announcer.close()
	err := s.db.Close()
	s.pool.Close()
	return err
}

// pgWrite runs fn in its own transaction, retrying a few times when
// PostgreSQL reports a serialization failure or a deadlock.
func (s *Store) pgWrite(ctx context.Context, fn func(q querier) error) error {
	for attempt := 1; ; attempt++ {
		err := s.pgTx(ctx, fn)
		if err == nil || attempt == 3 || !retryable(err) {
			return err
		}
	}
}

func (s *Store) pgTx(ctx context.Context, fn func(q querier) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return internal("begin", err)
	}
	t := &pgTxn{rebinder: rebinder{tx}}
	if err := fn(t); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return internal("commit", err)
	}
	if t.announce {
		s.announcer.kick()
	}
	return nil
}

// retryable classifies a PostgreSQL error by its SQLSTATE.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// uniqueViolation: a statement inserted a row a unique key already holds.
func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// rebinder turns the shared SQL's ? placeholders into PostgreSQL's $n.
type rebinder struct{ q querier }

var rebound sync.Map // query → rewritten query

func rebind(query string) string {
	if r, ok := rebound.Load(query); ok {
		return r.(string)
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	r := b.String()
	rebound.Store(query, r)
	return r
}

func (r rebinder) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return r.q.ExecContext(ctx, rebind(query), args...)
}

func (r rebinder) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.q.QueryContext(ctx, rebind(query), args...)
}

func (r rebinder) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return r.q.QueryRowContext(ctx, rebind(query), args...)
}

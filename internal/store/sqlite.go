package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// sqliteWriter is SQLite's write side: its own one-connection pool and the
// group-commit writer on it.
type sqliteWriter struct {
	write *sql.DB // one connection, the writer's
	read  *sql.DB // read-only connections
	reads *stmtCache
	w     *writer
}

func (s *Store) openSQLite(ctx context.Context, path string, opts Options) error {
	sync := strings.ToLower(opts.Synchronous)
	switch sync {
	case "":
		sync = "full"
	case "full", "normal":
	default:
		return fmt.Errorf("synchronous must be full or normal, not %q", opts.Synchronous)
	}
	// busy_timeout first, so that switching to WAL waits for other processes.
	// temp_store stays on file: in memory, the savepoint sub-journal of a
	// large transaction (migrate-data, the bulk load) grows slower than
	// linearly; 100,000 bulk rows took over 10 minutes instead of 16 s.
	pragmas := []string{"busy_timeout=10000", "journal_mode=WAL", "synchronous=" + sync, "foreign_keys=1"}
	wdb, err := sql.Open(SQLiteDriver, SQLiteDSN(path, append(pragmas, "txlock=immediate")...))
	if err != nil {
		return err
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxIdleTime(0)
	if err := wdb.PingContext(ctx); err != nil {
		wdb.Close()
		return fmt.Errorf("open %s: %w", path, err)
	}
	rdb, err := sql.Open(SQLiteDriver, SQLiteDSN(path, append(pragmas, "query_only=1")...))
	if err != nil {
		wdb.Close()
		return err
	}
	rdb.SetMaxOpenConns(8)
	rdb.SetMaxIdleConns(8)
	sw := &sqliteWriter{write: wdb, read: rdb, reads: newStmtCache(rdb)}
	s.dialect, s.db, s.reads, s.sqlite = sqliteDialect, rdb, sw.reads, sw
	fail := func(err error) error {
		errors.Join(rdb.Close(), wdb.Close())
		return err
	}
	if _, err := s.dialect.migrate(ctx, wdb); err != nil {
		return fail(err)
	}
	if err := s.checkKey(ctx, wdb); err != nil {
		return fail(err)
	}
	if sw.w, err = newWriter(ctx, wdb); err != nil {
		return fail(err)
	}
	return nil
}

func (sw *sqliteWriter) close() error {
	sw.w.close()
	return errors.Join(sw.reads.close(), sw.read.Close(), sw.write.Close())
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/imbee/imbee/internal/secret"
)

// ErrPostgresBackup is the answer of Backup and Restore on PostgreSQL,
// whose own tools do it better: they copy a database of any size while it
// serves, and restore it to a point in time.
var ErrPostgresBackup = errors.New("on PostgreSQL, back up and restore with PostgreSQL's own tools: pg_dump and pg_restore for a logical copy, pg_basebackup with WAL archiving for a point in time (docs/deployment.md)")

// BackupInfo describes a copy Backup wrote.
type BackupInfo struct {
	Bytes int64
	// Schema is the last migration applied to the copy.
	Schema int64
	// KeyFingerprint names the server key the copy's secrets were made
	// with: Restore refuses the copy under any other key.
	KeyFingerprint string
}

// Fingerprint is how a server key is named to operators: the start of the
// key check the database stores (an HMAC of a constant, so it reveals
// nothing of the key).
func Fingerprint(keys *secret.Keyring) string { return keys.Check()[:16] }

// Backup writes a consistent copy of the SQLite database at dsn to path
// while servers use it: VACUUM INTO, in one read transaction, so that
// every write committed before it began is in the copy and writers go on
// meanwhile (WAL). The copy is written to a temporary file beside path
// (mode 0600), checked (integrity_check), synced, and renamed over path.
// keys must be the database's. progress, if not nil, is called now and
// then with the bytes written so far and the database's size.
func Backup(ctx context.Context, dsn string, keys *secret.Keyring, path string, progress func(done, total int64)) (BackupInfo, error) {
	backend, loc, err := ParseDSN(dsn)
	if err != nil {
		return BackupInfo{}, err
	}
	if backend != "sqlite" {
		return BackupInfo{}, ErrPostgresBackup
	}
	if _, err := os.Stat(loc); err != nil {
		return BackupInfo{}, fmt.Errorf("no database to back up: %w", err)
	}
	db, err := sql.Open(SQLiteDriver, SQLiteDSN(loc, "busy_timeout=10000"))
	if err != nil {
		return BackupInfo{}, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := checkCopyKey(ctx, db, keys, "the database"); err != nil {
		return BackupInfo{}, err
	}
	var total int64
	if err := db.QueryRowContext(ctx, `SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()`).Scan(&total); err != nil {
		return BackupInfo{}, fmt.Errorf("read the database's size: %w", err)
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return BackupInfo{}, err
	}
	tmpPath := tmp.Name()
	tmp.Close() // CreateTemp made it 0600 and empty, as VACUUM INTO wants
	defer os.Remove(tmpPath)
	stop := watchSize(tmpPath, total, progress)
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, tmpPath)
	stop()
	if err != nil {
		return BackupInfo{}, fmt.Errorf("copy the database: %w", err)
	}
	info, err := checkCopy(ctx, tmpPath)
	if err != nil {
		return BackupInfo{}, err
	}
	info.KeyFingerprint = Fingerprint(keys)
	if err := syncFile(tmpPath); err != nil {
		return BackupInfo{}, err
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return BackupInfo{}, err
	}
	return info, syncFile(filepath.Dir(path))
}

// Restore fills the empty SQLite database at dsn from a copy Backup made
// under the same key: the copy is checked, copied beside the database
// (VACUUM INTO, so the copy itself is only read), synced and renamed into
// place. It refuses a database that has tables, a copy that fails its
// integrity check, and a copy made under another key (its credentials,
// links and sessions would not work).
func Restore(ctx context.Context, dsn string, keys *secret.Keyring, from string) (BackupInfo, error) {
	backend, loc, err := ParseDSN(dsn)
	if err != nil {
		return BackupInfo{}, err
	}
	if backend != "sqlite" {
		return BackupInfo{}, ErrPostgresBackup
	}
	if err := checkEmpty(ctx, loc); err != nil {
		return BackupInfo{}, err
	}
	info, err := checkCopy(ctx, from)
	if err != nil {
		return BackupInfo{}, err
	}
	// Not query_only: that forbids VACUUM INTO, which writes only the new
	// file.
	src, err := sql.Open(SQLiteDriver, SQLiteDSN(from, "busy_timeout=10000"))
	if err != nil {
		return BackupInfo{}, err
	}
	defer src.Close()
	src.SetMaxOpenConns(1)
	if err := checkCopyKey(ctx, src, keys, "the copy"); err != nil {
		return BackupInfo{}, err
	}
	info.KeyFingerprint = Fingerprint(keys)
	tmp, err := os.CreateTemp(filepath.Dir(loc), "."+filepath.Base(loc)+".restore-*")
	if err != nil {
		return BackupInfo{}, err
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath)
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmpPath); err != nil {
		return BackupInfo{}, fmt.Errorf("copy the backup: %w", err)
	}
	if err := syncFile(tmpPath); err != nil {
		return BackupInfo{}, err
	}
	for _, leftover := range []string{loc, loc + "-wal", loc + "-shm"} {
		if err := os.Remove(leftover); err != nil && !errors.Is(err, os.ErrNotExist) {
			return BackupInfo{}, err
		}
	}
	if err := os.Rename(tmpPath, loc); err != nil {
		return BackupInfo{}, err
	}
	return info, syncFile(filepath.Dir(loc))
}

// checkCopyKey refuses a database whose secrets were made under another
// key than keys.
func checkCopyKey(ctx context.Context, db *sql.DB, keys *secret.Keyring, what string) error {
	var stored string
	err := db.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'key_check'`).Scan(&stored)
	if err != nil {
		return fmt.Errorf("%s is not an imbee database: %w", what, err)
	}
	if stored != keys.Check() {
		return fmt.Errorf("%s was made under another server key (fingerprint %s; this key file's is %s): use the key file it was made with", what, stored[:min(16, len(stored))], Fingerprint(keys))
	}
	return nil
}

// checkCopy opens a copy read-only and checks it whole: its integrity, and
// the schema it is at.
func checkCopy(ctx context.Context, path string) (BackupInfo, error) {
	st, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, err
	}
	db, err := sql.Open(SQLiteDriver, SQLiteDSN(path, "query_only=1"))
	if err != nil {
		return BackupInfo{}, err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&result); err != nil {
		return BackupInfo{}, fmt.Errorf("check %s: %w", path, err)
	}
	if result != "ok" {
		return BackupInfo{}, fmt.Errorf("%s fails SQLite's integrity check: %s", path, result)
	}
	info := BackupInfo{Bytes: st.Size()}
	if err := db.QueryRowContext(ctx, `SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&info.Schema); err != nil {
		return BackupInfo{}, fmt.Errorf("%s is not an imbee database: %w", path, err)
	}
	return info, nil
}

// checkEmpty refuses a SQLite database with any table in it: a restore
// replaces a database, it does not merge into one.
func checkEmpty(ctx context.Context, path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	db, err := sql.Open(SQLiteDriver, SQLiteDSN(path, "query_only=1"))
	if err != nil {
		return err
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&tables); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if tables > 0 {
		return fmt.Errorf("%s is not empty (%d tables): restore into a new database, then point the servers at it", path, tables)
	}
	return nil
}

// watchSize calls progress with the size of the file at path every 200 ms
// until stop is called.
func watchSize(path string, total int64, progress func(done, total int64)) (stop func()) {
	if progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if st, err := os.Stat(path); err == nil {
				progress(st.Size(), total)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-finished }
}

// syncFile makes a file's (or a directory's) contents durable.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

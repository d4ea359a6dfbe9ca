package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// dialect is what differs between the backends' SQL and capabilities. Open
// picks one; the rest of the store asks it about the difference it needs
// instead of testing which backend it runs on.
type dialect struct {
	name  string        // the backend, as ParseDSN names it; migrations/<name> holds its migrations
	goose goose.Dialect // how goose records the migrations
	// lockMigrations makes servers that start together on one database
	// migrate it once (nil: no lock is taken).
	lockMigrations func() (lock.SessionLocker, error)
	// concurrentWriters: transactions write at the same time (PostgreSQL),
	// so a read that decides a write locks its rows, and an order that
	// commits must keep takes a lock. SQLite has one writer.
	concurrentWriters bool
	// notifies: a committed write can tell the other servers at once
	// (LISTEN/NOTIFY).
	notifies bool
	// bindsArrays: a Go slice binds as an array, so a batch is one
	// statement over unnest or = ANY rather than chunks of VALUES.
	bindsArrays bool
	// noStatistics: the planner keeps no statistics (SQLite, never
	// analysed), so a statement that needs a given index names it.
	noStatistics bool
	// writableWith: a WITH may hold an INSERT, so a row and a row that
	// depends on it are written in one statement.
	writableWith bool
	// sequences: ids come from a sequence, which a copy that inserts ids
	// must move past them (SQLite takes the largest id plus one by itself).
	sequences bool
}

var (
	sqliteDialect = dialect{
		name: "sqlite", goose: goose.DialectSQLite3,
		noStatistics: true,
	}
	postgresDialect = dialect{
		name: "postgres", goose: goose.DialectPostgres,
		lockMigrations:    func() (lock.SessionLocker, error) { return lock.NewPostgresSessionLocker() },
		concurrentWriters: true, notifies: true, bindsArrays: true, sequences: true, writableWith: true,
	}
)

// forUpdate locks the rows a SELECT reads until the transaction ends, where
// other transactions could write them meanwhile.
func (d dialect) forUpdate() string {
	if d.concurrentWriters {
		return " FOR UPDATE"
	}
	return ""
}

// indexedBy pins a statement's table to an index, where the planner without
// statistics would pick a worse one; PostgreSQL plans from the statistics
// it keeps.
func (d dialect) indexedBy(index string) string {
	if d.noStatistics {
		return " INDEXED BY " + index
	}
	return ""
}

// byRowID keeps a statement that names its rows by id from scanning an
// index that also matches its other conditions: SQLite without statistics
// may prefer one, while the ids are a few lookups of its rowid.
func (d dialect) byRowID() string {
	if d.noStatistics {
		return " NOT INDEXED"
	}
	return ""
}

// continueIDs is the statement that makes table's new ids follow the ones
// copied into it, or "" when they do by themselves.
func (d dialect) continueIDs(table string) string {
	if !d.sequences {
		return ""
	}
	return `SELECT setval(pg_get_serial_sequence('` + table + `', 'id'), coalesce(max(id), 0) + 1, false) FROM ` + table
}

func (d dialect) migrationDir() string { return "migrations/" + d.name }

// migrations is the goose provider of the dialect's embedded migrations on db.
func (d dialect) migrations(db *sql.DB) (*goose.Provider, error) {
	var opts []goose.ProviderOption
	if d.lockMigrations != nil {
		locker, err := d.lockMigrations()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	fsys, err := fs.Sub(migrations, d.migrationDir())
	if err != nil {
		return nil, err
	}
	p, err := goose.NewProvider(d.goose, db, fsys, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

// migrate applies the dialect's pending migrations to db and reports what
// it applied. It refuses a schema newer than the migrations it embeds.
func (d dialect) migrate(ctx context.Context, db *sql.DB) ([]string, error) {
	p, err := d.migrations(db)
	if err != nil {
		return nil, err
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

// latestMigration is the version of the newest migration embedded for the
// dialect.
func (d dialect) latestMigration() (int64, error) {
	files, err := fs.Glob(migrations, d.migrationDir()+"/*.sql")
	if err != nil {
		return 0, err
	}
	var latest int64
	for _, f := range files {
		v, err := goose.NumericComponent(path.Base(f))
		if err != nil {
			return 0, err
		}
		latest = max(latest, v)
	}
	if latest == 0 {
		return 0, errors.New("no migrations in " + d.migrationDir())
	}
	return latest, nil
}

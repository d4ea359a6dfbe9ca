package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// EnvPartitioned, set to anything, makes the e2e suite run on partitioned
// databases (PartitionedURL) wherever it uses PostgreSQL.
const EnvPartitioned = "IMBEE_TEST_PG_PARTITIONED"

// Partitions is how many hash partitions each distributed table gets: the
// shards of a distributed engine, in one server.
const Partitions = 4

// routingSuffix names the routing tables: looked up by a hash across
// tenants (a credential or a token names its corporate), so a distributed
// engine spreads them by their own primary key, not by tenant.
const routingSuffix = "_routes"

// referenceTables have a corporate_id but are read whole by every server,
// so a distributed engine copies them to every node instead of spreading
// them by tenant.
var referenceTables = map[string]string{
	"revocations": "the installation's log of ended credentials, which every server reads past the last row it saw",
}

// Partitioned reports whether EnvPartitioned asks for partitioned databases.
func Partitioned() bool { return os.Getenv(EnvPartitioned) != "" }

var (
	partitionOnce     sync.Once
	partitioned       string // the template database PartitionedURL copies
	partitionedFailed error
	partitionedTold   atomic.Bool // the refusals are shown once, not by every test
)

// PartitionedURL returns the URL of a new database whose schema is the one
// migrate makes, then distributed by tenant (Partition). The schema is made
// once per test binary, in a template database that every call copies, so
// migrate must be the same function on every call. The test fails, naming
// every refusal, when the schema cannot be distributed.
func PartitionedURL(tb testing.TB, migrate func(url string) error) string {
	tb.Helper()
	admin := server(tb)
	partitionOnce.Do(func() {
		name := fmt.Sprintf("imbee_partitioned_%d", os.Getpid())
		u, err := CreateDatabase(admin, name)
		if err == nil {
			if err = migrate(u); err != nil {
				err = fmt.Errorf("migrate: %w", err)
			}
		}
		if err == nil {
			if err = Partition(context.Background(), u); err != nil {
				err = fmt.Errorf("the schema cannot be distributed by corporate_id:\n%w", err)
			}
		}
		partitioned, partitionedFailed = name, err
	})
	if partitionedFailed != nil {
		if partitionedTold.Swap(true) {
			tb.Fatal("no partitioned database: see the first test that asked for one")
		}
		tb.Fatal(partitionedFailed)
	}
	return database(tb, partitioned)
}

// Partition rewrites the tables of a freshly migrated (empty) database the
// way a distributed engine such as Citus would hold them, with PostgreSQL's
// hash partitions standing in for its shards, all read from the catalog:
//   - a tenant table (one with a corporate_id column, and corporates by its
//     id) becomes PARTITION BY HASH on that column, with its columns,
//     defaults, identities and checks, its primary, unique and foreign keys
//     and its indexes. PostgreSQL refuses a primary or unique key on a
//     partitioned table that lacks the partition column: Citus's rule for a
//     distributed table.
//   - a routing table (named *_routes) is partitioned by its own primary key.
//   - any other table (meta, goose's, and referenceTables) stays as it is:
//     a reference table, copied whole to every node.
//
// Citus also refuses a foreign key between two distributed tables unless it
// joins their distribution columns, and one from a reference table to a
// distributed one; PostgreSQL allows both, so Partition checks them itself.
// It changes nothing when anything is refused, and reports every refusal.
func Partition(ctx context.Context, url string) error {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()

	keys, err := distributionKeys(ctx, tx)
	if err != nil {
		return err
	}
	cons, indexes, err := dependents(ctx, tx, keys)
	if err != nil {
		return err
	}
	var refused []error
	for _, c := range cons {
		if c.kind == 'f' {
			refused = append(refused, c.colocated(keys))
			if _, err := tx.ExecContext(ctx, "ALTER TABLE "+ident(c.table)+" DROP CONSTRAINT "+ident(c.name)); err != nil {
				return err
			}
		}
	}
	for _, t := range sortedKeys(keys) {
		if err := partitionTable(ctx, tx, t, keys[t]); err != nil {
			return fmt.Errorf("partition %s: %w", t, err)
		}
	}
	// Keys before the indexes and foreign keys that need them; each in a
	// savepoint, so that one refusal does not hide the next.
	ddl := make([][]string, 4) // primary keys, unique keys, indexes, foreign keys
	for _, c := range cons {
		step := map[byte]int{'p': 0, 'u': 1, 'x': 1, 'f': 3}[c.kind]
		ddl[step] = append(ddl[step], "ALTER TABLE "+ident(c.table)+" ADD CONSTRAINT "+ident(c.name)+" "+c.def)
	}
	ddl[2] = indexes
	for _, stmt := range slices.Concat(ddl...) {
		if _, err := tx.ExecContext(ctx, "SAVEPOINT ddl"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			refused = append(refused, fmt.Errorf("%s: %w", stmt, err))
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT ddl"); err != nil {
				return err
			}
		}
	}
	if err := errors.Join(refused...); err != nil {
		return err
	}
	return tx.Commit()
}

// distributionKeys maps each table to distribute to its distribution column.
func distributionKeys(ctx context.Context, tx *sql.Tx) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT c.relname,
		       EXISTS (SELECT 1 FROM pg_attribute a
		               WHERE a.attrelid = c.oid AND a.attname = 'corporate_id' AND NOT a.attisdropped),
		       coalesce((SELECT a.attname FROM pg_index i
		                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		                 WHERE i.indrelid = c.oid AND i.indisprimary), '')
		FROM pg_class c
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	keys := map[string]string{}
	for rows.Next() {
		var table, pkFirst string
		var tenant bool
		if err := rows.Scan(&table, &tenant, &pkFirst); err != nil {
			return nil, err
		}
		switch {
		case referenceTables[table] != "":
		case strings.HasSuffix(table, routingSuffix):
			keys[table] = pkFirst
		case table == "corporates":
			keys[table] = "id"
		case tenant:
			keys[table] = "corporate_id"
		}
	}
	return keys, rows.Err()
}

// constraint is a primary, unique, exclusion or foreign key, as the catalog
// defines it.
type constraint struct {
	table, name string
	kind        byte // 'p', 'u', 'x' or 'f'
	def         string
	// A foreign key's columns and the referenced table's.
	cols, refTable, refCols string
}

// colocated is Citus's rule for a foreign key, which PostgreSQL's
// partitions do not enforce: nil when the key may stay.
func (c constraint) colocated(keys map[string]string) error {
	refKey, refDistributed := keys[c.refTable]
	key, distributed := keys[c.table]
	switch {
	case !refDistributed:
		return nil // to a reference table: always allowed
	case !distributed:
		return fmt.Errorf("%s.%s: the reference table %s refers to the distributed table %s", c.table, c.name, c.table, c.refTable)
	}
	cols, refCols := strings.Split(c.cols, ","), strings.Split(c.refCols, ",")
	if i := slices.Index(cols, key); i < 0 || refCols[i] != refKey {
		return fmt.Errorf("%s.%s: foreign key (%s) references %s (%s) without joining %s.%s to %s.%s: its rows may be on another shard",
			c.table, c.name, c.cols, c.refTable, c.refCols, c.table, key, c.refTable, refKey)
	}
	return nil
}

// dependents reads the keys of the distributed tables and those that refer
// to them, and the other indexes of the distributed tables, as statements
// that make them again.
func dependents(ctx context.Context, tx *sql.Tx, keys map[string]string) ([]constraint, []string, error) {
	tables := sortedKeys(keys)
	cols := func(rel, attnums string) string {
		return `coalesce((SELECT string_agg(a.attname, ',' ORDER BY k.i)
			FROM unnest(` + attnums + `) WITH ORDINALITY k(n, i)
			JOIN pg_attribute a ON a.attrelid = ` + rel + ` AND a.attnum = k.n), '')`
	}
	rows, err := tx.QueryContext(ctx, `
		SELECT t.relname, c.conname, c.contype, pg_get_constraintdef(c.oid),
		       `+cols("c.conrelid", "c.conkey")+`, coalesce(r.relname, ''), `+cols("c.confrelid", "c.confkey")+`
		FROM pg_constraint c
		JOIN pg_class t ON t.oid = c.conrelid
		LEFT JOIN pg_class r ON r.oid = c.confrelid
		WHERE c.connamespace = current_schema()::regnamespace AND c.contype IN ('p', 'u', 'x', 'f')
		  AND (t.relname = ANY ($1) OR r.relname = ANY ($1))
		ORDER BY t.relname, c.conname`, tables)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var cons []constraint
	for rows.Next() {
		var c constraint
		var kind string
		if err := rows.Scan(&c.table, &c.name, &kind, &c.def, &c.cols, &c.refTable, &c.refCols); err != nil {
			return nil, nil, err
		}
		c.kind = kind[0]
		cons = append(cons, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	rows, err = tx.QueryContext(ctx, `
		SELECT pg_get_indexdef(i.indexrelid)
		FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
		WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY ($1)
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
		ORDER BY 1`, tables)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var indexes []string
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			return nil, nil, err
		}
		indexes = append(indexes, def)
	}
	return cons, indexes, rows.Err()
}

// partitionTable replaces the (foreign-key free) table with a partitioned
// one of the same columns, defaults, identities and checks; keys and indexes
// are made again afterwards.
func partitionTable(ctx context.Context, tx *sql.Tx, table, key string) error {
	old := table + "_unpartitioned"
	stmts := []string{
		"ALTER TABLE " + ident(table) + " RENAME TO " + ident(old),
		"CREATE TABLE " + ident(table) + " (LIKE " + ident(old) +
			" INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING GENERATED INCLUDING CONSTRAINTS) PARTITION BY HASH (" + ident(key) + ")",
	}
	for i := range Partitions {
		stmts = append(stmts, fmt.Sprintf("CREATE TABLE %s PARTITION OF %s FOR VALUES WITH (MODULUS %d, REMAINDER %d)",
			ident(fmt.Sprintf("%s_p%d", table, i)), ident(table), Partitions, i))
	}
	stmts = append(stmts, "DROP TABLE "+ident(old))
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ident quotes an SQL identifier.
func ident(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

package store

import (
	"context"
	"database/sql"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/imbee/imbee/internal/testkit"
)

// notCopied are the tables CopyAll leaves behind on purpose, and why.
var notCopied = map[string]string{
	"goose_db_version": "the record of applied migrations: the target's own migrations write it",
	"meta":             "the key check is the target's (Open writes it); CopyAll copies the bootstrap mark itself",
	"revocations":      "ends the sockets of the source's servers, which stop before the move; the target's start with none open",
	"rate_buckets":     "rate limits' state, seconds long: every bucket starts full on the target",
	"events":           "hints for the source's servers' sockets, which close before the move",
	"presence":         "who has a socket open on the source's servers, which close them before the move",
}

// TestDialectSchemas: each dialect's migrations make exactly the tables
// migrate-data copies plus those it leaves on purpose, each copied table
// with exactly the columns the copy lists, and the two dialects make the
// same columns in every table.
func TestDialectSchemas(t *testing.T) {
	schemas := map[string]map[string][]string{}
	testkit.ForEachBackend(t, func(t *testing.T) {
		s := mustOpen(t, nil)
		schema := readSchema(t, s)
		schemas[s.dialect.name] = schema

		want := slices.Collect(maps.Keys(notCopied))
		for _, ct := range copiedTables {
			want = append(want, ct.name)
			cols := strings.Split(ct.columns, ", ")
			slices.Sort(cols)
			if !slices.Equal(cols, schema[ct.name]) {
				t.Errorf("copied columns of %s: %v, the schema's: %v", ct.name, cols, schema[ct.name])
			}
		}
		slices.Sort(want)
		if got := slices.Sorted(maps.Keys(schema)); !slices.Equal(got, want) {
			t.Errorf("tables %v, want the copied and the deliberately left ones: %v", got, want)
		}
	})
	lite, pg := schemas[sqliteDialect.name], schemas[postgresDialect.name]
	if lite == nil || pg == nil {
		return // a backend skipped; it said why
	}
	for table, cols := range lite {
		if !slices.Equal(cols, pg[table]) {
			t.Errorf("columns of %s: SQLite %v, PostgreSQL %v", table, cols, pg[table])
		}
	}
	for table := range pg {
		if _, ok := lite[table]; !ok {
			t.Errorf("table %s on PostgreSQL only", table)
		}
	}
}

// readSchema returns the store's tables and their columns, sorted by name.
func readSchema(t *testing.T, s *Store) map[string][]string {
	t.Helper()
	tablesSQL := `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`
	columnsSQL := `SELECT name FROM pragma_table_info(?)`
	if s.dialect.name == postgresDialect.name {
		tablesSQL = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`
		columnsSQL = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?`
	}
	names := func(query string, args ...any) []string {
		t.Helper()
		rows, err := s.reads.QueryContext(context.Background(), query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		slices.Sort(out)
		return out
	}
	schema := map[string][]string{}
	for _, table := range names(tablesSQL) {
		schema[table] = names(columnsSQL, table)
	}
	if len(schema) == 0 {
		t.Fatal("no tables")
	}
	return schema
}

// keyless are the tables not keyed by tenant, and why. Every other table
// is a tenant's: it carries corporate_id, and corporate_id leads each of
// its primary, unique and foreign keys (the key rules a distributed engine
// such as Citus enforces on a table distributed by corporate_id).
var keyless = map[string]string{
	"goose_db_version": "the record of applied migrations",
	"meta":             "the installation's settings (key check, bootstrap mark)",
	"corporates":       "the tenants themselves: keyed by id, which is their corporate_id",
	"revocations":      "the installation's log of ended access, read by every server in id order across tenants",
}

// routing are the tables that find a tenant's row from a credential or
// token hash before the corporate is known: keyed by the hash alone, they
// carry the corporate_id the tenant's row is then read with.
var routing = map[string]bool{"corporate_routes": true, "link_routes": true, "session_routes": true, "app_session_routes": true, "user_routes": true}

// TestSchemaKeyedByTenant reads each dialect's schema and fails on a tenant
// table without corporate_id, or a primary, unique or foreign key whose
// first column is not corporate_id. SQLite's INTEGER PRIMARY KEY is the
// row's address in its file, not a key (SQLite is one server, never
// distributed): there, an id alone may be the primary key.
func TestSchemaKeyedByTenant(t *testing.T) {
	testkit.ForEachBackend(t, func(t *testing.T) {
		s := mustOpen(t, nil)
		for table, cols := range readSchema(t, s) {
			if _, ok := keyless[table]; ok {
				continue
			}
			if !slices.Contains(cols, "corporate_id") {
				t.Errorf("%s has no corporate_id", table)
				continue
			}
			for _, k := range readKeys(t, s, table) {
				switch {
				case k.kind == "primary" && routing[table],
					k.kind == "primary" && s.dialect.name == sqliteDialect.name && slices.Equal(k.columns, []string{"id"}):
				case k.kind == "unique" && routing[table] && len(k.columns) == 1:
				case k.columns[0] != "corporate_id":
					t.Errorf("%s: %s key %v does not lead with corporate_id", table, k.kind, k.columns)
				case k.kind == "foreign" && k.parent != "corporates" && (len(k.parentColumns) == 0 || k.parentColumns[0] != "corporate_id"):
					t.Errorf("%s: foreign key %v references %s %v, not by corporate_id first", table, k.columns, k.parent, k.parentColumns)
				}
			}
		}
	})
}

// tableKey is a primary, unique or foreign key of a table, its columns in
// key order (a foreign key also names its parent and the parent's columns).
type tableKey struct {
	kind          string // primary, unique or foreign
	columns       []string
	parent        string
	parentColumns []string
}

// readKeys returns table's keys, as the database describes them: unique
// indexes as well as constraints.
func readKeys(t *testing.T, s *Store, table string) []tableKey {
	t.Helper()
	ctx := context.Background()
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	var keys []tableKey
	read := func(query string, scan func(rows *sql.Rows) (tableKey, error), args ...any) {
		t.Helper()
		rows, err := s.reads.QueryContext(ctx, query, args...)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			k, err := scan(rows)
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, k)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if s.dialect.name == postgresDialect.name {
		cols := func(rel, nums string) string {
			return `array_to_string(array(SELECT a.attname FROM unnest(` + nums + `) WITH ORDINALITY k (num, n)
				JOIN pg_attribute a ON a.attrelid = ` + rel + ` AND a.attnum = k.num ORDER BY k.n), ',')`
		}
		read(`SELECT CASE WHEN i.indisprimary THEN 'primary' ELSE 'unique' END, `+cols("i.indrelid", "i.indkey::int2[]")+`, '', ''
			FROM pg_index i WHERE i.indrelid = to_regclass(?) AND i.indisunique`, scanKey(split), table)
		read(`SELECT 'foreign', `+cols("c.conrelid", "c.conkey")+`, c.confrelid::regclass::text, `+cols("c.confrelid", "c.confkey")+`
			FROM pg_constraint c WHERE c.conrelid = to_regclass(?) AND c.contype = 'f'`, scanKey(split), table)
		return keys
	}
	read(`SELECT 'primary', group_concat(name, ','), '', '' FROM (SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk) HAVING count(*) > 0`,
		scanKey(split), table)
	read(`SELECT 'unique', (SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info(l.name) ORDER BY seqno)), '', ''
		FROM pragma_index_list(?) l WHERE l."unique" = 1 AND l.origin <> 'pk'`, scanKey(split), table)
	read(`SELECT 'foreign', group_concat("from", ','), max("table"), group_concat("to", ',')
		FROM (SELECT * FROM pragma_foreign_key_list(?) ORDER BY id, seq) GROUP BY id`, scanKey(split), table)
	return keys
}

func scanKey(split func(string) []string) func(rows *sql.Rows) (tableKey, error) {
	return func(rows *sql.Rows) (tableKey, error) {
		var k tableKey
		var cols, parentCols string
		err := rows.Scan(&k.kind, &cols, &k.parent, &parentCols)
		k.columns, k.parentColumns = split(cols), split(parentCols)
		return k, err
	}
}

package store

import (
	"context"
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

// Package testkit holds the fixtures that tests of several packages share:
// the loop that runs a test on each database backend, a clock tests move
// by hand, and a real SMTP server on loopback. Only tests import it, so
// nothing of it reaches the binary.
package testkit

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/imbee/imbee/internal/pgtest"
)

// ForEachBackend runs test once on SQLite and once on PostgreSQL, as the
// subtests "sqlite" and "postgres"; DSN gives each a new database of its
// backend. A package whose tests use it runs them from
// TestMain: os.Exit(pgtest.Main(m)).
func ForEachBackend(t *testing.T, test func(t *testing.T)) {
	t.Run("sqlite", test)
	t.Run("postgres", test)
}

// Postgres says whether tb runs under ForEachBackend's "postgres" subtest.
func Postgres(tb testing.TB) bool { return strings.Contains(tb.Name(), "/postgres") }

// DSN returns a new, empty database of the backend tb runs under: a
// PostgreSQL database (internal/pgtest) under ForEachBackend's "postgres"
// subtest, else a SQLite file in a temporary directory.
func DSN(tb testing.TB) string {
	tb.Helper()
	if Postgres(tb) {
		return pgtest.URL(tb)
	}
	return "sqlite:" + filepath.Join(tb.TempDir(), "imbee.db")
}

//go:build sqlite_cgo

package store

import (
	"strings"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" database/sql driver, SQLite's C library through cgo
)

// SQLiteDriver is the database/sql driver this build opens SQLite with.
const SQLiteDriver = "sqlite3"

// SQLiteDSN is the data source name of the SQLite file at path for
// SQLiteDriver, with pragmas, each "name=value" ("txlock=immediate" makes
// every transaction take the write lock first).
func SQLiteDSN(path string, pragmas ...string) string {
	q := make([]string, 0, len(pragmas))
	for _, p := range pragmas {
		q = append(q, "_"+p)
	}
	return "file:" + path + "?" + strings.Join(q, "&")
}

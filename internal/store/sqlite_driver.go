package store

import (
	"strings"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, pure Go
)

// SQLiteDriver is the database/sql driver the store opens SQLite with: the
// pure-Go one. (A cgo driver, measured against it on every scenario, was
// slower: docs/performance.md.)
const SQLiteDriver = "sqlite"

// SQLiteDSN is the data source name of the SQLite file at path for
// SQLiteDriver, with pragmas, each "name=value" ("txlock=immediate" makes
// every transaction take the write lock first).
func SQLiteDSN(path string, pragmas ...string) string {
	q := make([]string, 0, len(pragmas))
	for _, p := range pragmas {
		name, value, _ := strings.Cut(p, "=")
		if name == "txlock" {
			q = append(q, "_txlock="+value)
			continue
		}
		q = append(q, "_pragma="+name+"("+value+")")
	}
	return "file:" + path + "?" + strings.Join(q, "&")
}

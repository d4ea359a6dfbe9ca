package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/imbee/imbee/internal/store"
)

func (c *cli) backup(ctx context.Context, args []string) error {
	fs := c.flagSet("backup", "Write a consistent copy of a SQLite installation to a file, while its servers run: every write\nacknowledged before the backup began is in it. The server key is not: back up the key file apart.\nOn PostgreSQL, use PostgreSQL's own tools (pg_dump, pg_basebackup).")
	sf := c.addStoreFlags(fs)
	to := fs.String("to", "", "the file to write the copy to (required); replaced atomically if it exists")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return errors.New("--to is required")
	}
	if backend, _, err := store.ParseDSN(sf.db); err != nil {
		return err
	} else if backend != "sqlite" {
		return store.ErrPostgresBackup
	}
	keys, keyPath, err := sf.existingKeyring()
	if err != nil {
		return err
	}
	progress := c.progressLine("backing up")
	info, err := store.Backup(ctx, sf.db, keys, *to, progress)
	if progress != nil {
		fmt.Fprintln(c.stderr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "backed up %s to %s: %s, schema %d\n", sf.db, *to, megabytes(info.Bytes), info.Schema)
	fmt.Fprintf(c.stdout, "server key fingerprint: %s\n", info.KeyFingerprint)
	fmt.Fprintf(c.stdout, "The key is not in the backup: keep a copy of %s apart from it. Without that key the copy's\ncredentials, links and sessions cannot be used, and with it and the copy they all can.\n", keyPath)
	return nil
}

func (c *cli) restore(ctx context.Context, args []string) error {
	fs := c.flagSet("restore", "Fill an empty SQLite database (--db) from a copy \"imbee backup\" wrote, under the key file it\nwas made with. Start the servers on the restored database afterwards; they migrate it forward\nif the copy is from an older version. On PostgreSQL, use pg_restore.")
	sf := c.addStoreFlags(fs)
	from := fs.String("from", "", "the copy to restore (required)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *from == "" {
		return errors.New("--from is required")
	}
	if backend, _, err := store.ParseDSN(sf.db); err != nil {
		return err
	} else if backend != "sqlite" {
		return store.ErrPostgresBackup
	}
	keys, _, err := sf.existingKeyring()
	if err != nil {
		return err
	}
	info, err := store.Restore(ctx, sf.db, keys, *from)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "restored %s into %s: %s, schema %d, server key fingerprint %s\n", *from, sf.db, megabytes(info.Bytes), info.Schema, info.KeyFingerprint)
	return nil
}

// progressLine is a progress callback that rewrites one line on stderr
// when stderr is a terminal, else nil: a log or a pipe gets no noise.
func (c *cli) progressLine(what string) func(done, total int64) {
	f, ok := c.stderr.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return func(done, total int64) { progress(f, what, done, total) }
}

func progress(w io.Writer, what string, done, total int64) {
	pct := 100.0
	if total > 0 {
		pct = min(100, 100*float64(done)/float64(total))
	}
	fmt.Fprintf(w, "\r%s: %s of about %s (%.0f%%)   ", what, megabytes(done), megabytes(total), pct)
}

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

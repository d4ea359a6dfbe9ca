package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/writes"
)

type cli struct {
	getenv func(string) string
	stdout io.Writer
	stderr io.Writer
	// now is the clock of everything the command runs: the store, and a
	// server's API, pages and workers.
	now func() time.Time
}

// storeFlags are the flags every command that opens the database shares.
type storeFlags struct {
	db      string
	keyFile string
	now     func() time.Time // the command's clock, the store's
}

func (c *cli) flagSet(name, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: imbee %s [flags]\n\n%s\n\nFlags (each also read from IMBEE_<NAME>, e.g. --db is IMBEE_DB, then from the --config file):\n", name, summary)
		fs.PrintDefaults()
	}
	fs.String("config", "", "TOML file of settings named as the flags (e.g. rate-limit = 100); flags and IMBEE_* variables win over it")
	return fs
}

func (c *cli) addStoreFlags(fs *flag.FlagSet) *storeFlags {
	sf := &storeFlags{now: c.now}
	fs.StringVar(&sf.db, "db", "sqlite:imbee.db", "database: sqlite:PATH, or postgres://USER:PASSWORD@HOST/DB for PostgreSQL")
	fs.StringVar(&sf.keyFile, "key-file", "", "file holding the server key that secrets are derived from; created on first use (default: the SQLite file's path + \".key\"). Keep it outside database backups")
	return sf
}

// parse parses args, then fills each flag not given on the command line
// from its IMBEE_* environment variable, then from the config file.
func (c *cli) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		name := "IMBEE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := c.getenv(name); v != "" {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s: %w", name, serr)
			}
			given[f.Name] = true
		}
	})
	if err != nil {
		return err
	}
	if path := fs.Lookup("config").Value.String(); path != "" {
		return c.applyConfig(fs, path, given)
	}
	return nil
}

// keyPath is the server key file's path: --key-file, or the SQLite file's
// path + ".key".
func (sf *storeFlags) keyPath() (string, error) {
	if sf.keyFile != "" {
		return sf.keyFile, nil
	}
	backend, loc, err := store.ParseDSN(sf.db)
	if err != nil {
		return "", err
	}
	if backend != "sqlite" {
		return "", errors.New("--key-file is required with PostgreSQL: every server of the installation must use the same key file")
	}
	return loc + ".key", nil
}

// keyring loads (or creates) the server key.
func (sf *storeFlags) keyring() (*secret.Keyring, error) {
	path, err := sf.keyPath()
	if err != nil {
		return nil, err
	}
	k, _, err := secret.LoadOrCreateKeyFile(path)
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	return k, nil
}

// existingKeyring loads the server key, which must exist: a command that
// reads secrets made under it gains nothing from a new one.
func (sf *storeFlags) existingKeyring() (*secret.Keyring, string, error) {
	path, err := sf.keyPath()
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(path); err != nil {
		return nil, "", fmt.Errorf("server key: %w (--key-file names the key the installation's secrets were made with)", err)
	}
	k, err := sf.keyring()
	return k, path, err
}

// open opens the database, on the command's clock.
func (sf *storeFlags) open(ctx context.Context, opts store.Options) (*store.Store, error) {
	keys, err := sf.keyring()
	if err != nil {
		return nil, err
	}
	opts.Now = sf.now
	return store.Open(ctx, sf.db, keys, opts)
}

// commandWrites are a command's changes. A command has no sockets and no
// workers of its own: the servers learn of what it changes from the
// database (the revocations log, the queues' poll).
func commandWrites(s *store.Store) *writes.Runner { return writes.New(s, writes.Effects{}, nil) }

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

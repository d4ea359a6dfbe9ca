// Package cli is the imbee command: the server and its admin commands.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

const usage = `imbee: a self-hosted server for the third-party chat API.

Usage:
  imbee serve                 run the server
  imbee migrate               apply pending schema migrations and exit
  imbee migrate-data          move an installation to another database (SQLite to PostgreSQL)
  imbee backup                write a consistent copy of a SQLite installation while it serves
  imbee restore               fill an empty SQLite database from such a copy
  imbee corporate create      create a corporate (tenant) and print its credentials
  imbee corporate list        list corporates
  imbee corporate rotate      replace a corporate's credentials
  imbee corporate update      change a corporate's name, time zone, language or sender name
  imbee corporate disable     stop a corporate at once: credentials, links, sessions, sockets
  imbee corporate enable      let a disabled corporate work again
  imbee bot create            create a bot in a corporate
  imbee bot list              list a corporate's bots
  imbee link revoke           end a web access link, or all of a user's
  imbee bot webhook           set a bot's webhook and print its signing secret
  imbee bot revoke            retire a bot and end its links
  imbee user rotate           give a user a new pass and apikey
  imbee users import          create users from a CSV or JSONL file and write their credentials
  imbee deliveries list       the delivery ledger (mails and SMS), newest first
  imbee deliveries retry      queue dead deliveries again
  imbee webhooks list         the bots' webhook ledger, newest first
  imbee webhooks retry        queue dead webhook events again (replay)
  imbee version               print the version, the revision built from, and the Go version

Every flag can also be set with an IMBEE_* environment variable: --public-url
is IMBEE_PUBLIC_URL. "imbee COMMAND --help" lists a command's flags.
`

// Run is the whole program: main calls it with the process's arguments
// (without the program name), environment and output; tests call it the same way.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	c := &cli{getenv: getenv, stdout: stdout, stderr: stderr, now: time.Now}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cmd, rest := args[0], args[1:]
	sub := ""
	if len(rest) > 0 {
		sub = rest[0]
	}
	switch {
	case cmd == "serve":
		return c.serve(ctx, rest)
	case cmd == "migrate":
		return c.migrate(ctx, rest)
	case cmd == "migrate-data":
		return c.migrateData(ctx, rest)
	case cmd == "backup":
		return c.backup(ctx, rest)
	case cmd == "restore":
		return c.restore(ctx, rest)
	case cmd == "corporate" && sub == "create":
		return c.corporateCreate(ctx, rest[1:])
	case cmd == "corporate" && sub == "list":
		return c.corporateList(ctx, rest[1:])
	case cmd == "corporate" && sub == "rotate":
		return c.corporateRotate(ctx, rest[1:])
	case cmd == "corporate" && sub == "update":
		return c.corporateUpdate(ctx, rest[1:])
	case cmd == "corporate" && sub == "disable":
		return c.corporateDisable(ctx, rest[1:], true)
	case cmd == "corporate" && sub == "enable":
		return c.corporateDisable(ctx, rest[1:], false)
	case cmd == "bot" && sub == "revoke":
		return c.botRevoke(ctx, rest[1:])
	case cmd == "user" && sub == "rotate":
		return c.userRotate(ctx, rest[1:])
	case cmd == "users" && sub == "import":
		return c.usersImport(ctx, rest[1:])
	case cmd == "bot" && sub == "webhook":
		return c.botWebhook(ctx, rest[1:])
	case cmd == "webhooks" && sub == "list":
		return c.webhooksList(ctx, rest[1:])
	case cmd == "webhooks" && sub == "retry":
		return c.webhooksRetry(ctx, rest[1:])
	case cmd == "deliveries" && sub == "list":
		return c.deliveriesList(ctx, rest[1:])
	case cmd == "deliveries" && sub == "retry":
		return c.deliveriesRetry(ctx, rest[1:])
	case cmd == "bot" && sub == "create":
		return c.botCreate(ctx, rest[1:])
	case cmd == "bot" && sub == "list":
		return c.botList(ctx, rest[1:])
	case cmd == "link" && sub == "revoke":
		return c.linkRevoke(ctx, rest[1:])
	case cmd == "version", cmd == "--version":
		return c.version(rest)
	case cmd == "help", cmd == "-h", cmd == "--help", cmd == "-help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

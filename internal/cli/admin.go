package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/store"
)

func (c *cli) migrate(ctx context.Context, args []string) error {
	fs := c.flagSet("migrate", "Apply pending schema migrations and exit. \"imbee serve\" also does this at start.")
	sf := c.addStoreFlags(fs)
	if err := c.parse(fs, args); err != nil {
		return err
	}
	applied, err := store.Migrate(ctx, sf.db)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(c.stdout, "schema is up to date")
	}
	for _, m := range applied {
		fmt.Fprintln(c.stdout, "applied", m)
	}
	return nil
}

type corporateJSON struct {
	ID             int64  `json:"id"`
	Name           string `json:"name"`
	TimeZone       string `json:"timezone"`
	Auth           string `json:"auth,omitempty"`
	CorporateToken string `json:"corporate_token,omitempty"`
	CreatedAt      string `json:"created_at,omitempty"`
}

func (c *cli) corporateCreate(ctx context.Context, args []string) error {
	fs := c.flagSet("corporate create", "Create a corporate (a tenant) and print its credentials: Authorization (auth) and X-WOOS-KEY (corporate_token).\nThey are shown only now; \"imbee corporate rotate\" replaces lost ones.")
	sf := c.addStoreFlags(fs)
	name := fs.String("name", "", "the corporate's name (required)")
	tz := fs.String("timezone", "UTC", "IANA time zone in which links' date_limit days end, e.g. Europe/Madrid")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("--name is required")
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	corp, creds, err := s.CreateCorporate(ctx, *name, *tz)
	if err != nil {
		return err
	}
	return c.printCredentials(corp, creds, *asJSON)
}

func (c *cli) printCredentials(corp imbee.Corporate, creds imbee.CorporateCredentials, asJSON bool) error {
	if asJSON {
		return c.printJSON(corporateJSON{ID: corp.ID, Name: corp.Name, TimeZone: corp.TimeZone, Auth: creds.Auth, CorporateToken: creds.CorporateToken})
	}
	fmt.Fprintf(c.stdout, "corporate %d (%s)\n  Authorization: %s\n  X-WOOS-KEY:    %s\nKeep these secret: they are not shown again.\n",
		corp.ID, corp.Name, creds.Auth, creds.CorporateToken)
	return nil
}

func (c *cli) corporateList(ctx context.Context, args []string) error {
	fs := c.flagSet("corporate list", "List corporates. Credentials are never listed.")
	sf := c.addStoreFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	corps, err := s.ListCorporates(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]corporateJSON, 0, len(corps))
		for _, co := range corps {
			out = append(out, corporateJSON{ID: co.ID, Name: co.Name, TimeZone: co.TimeZone, CreatedAt: co.CreatedAt.Format(time.RFC3339)})
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTIMEZONE\tCREATED")
	for _, co := range corps {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", co.ID, co.Name, co.TimeZone, co.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func (c *cli) corporateRotate(ctx context.Context, args []string) error {
	fs := c.flagSet("corporate rotate", "Replace a corporate's Authorization and X-WOOS-KEY and print the new ones. The old ones stop working at once, on every server.")
	sf := c.addStoreFlags(fs)
	id := fs.Int64("id", 0, "the corporate's id (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *id <= 0 {
		return errors.New("--id is required")
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	creds, err := s.RotateCorporate(ctx, *id)
	if err != nil {
		return err
	}
	corps, err := s.ListCorporates(ctx)
	if err != nil {
		return err
	}
	for _, co := range corps {
		if co.ID == *id {
			return c.printCredentials(co, creds, *asJSON)
		}
	}
	return fmt.Errorf("corporate %d vanished", *id)
}

type botJSON struct {
	ID          int64  `json:"id"`
	CorporateID int64  `json:"corporate_id"`
	Name        string `json:"name"`
	BotIDSha    string `json:"bot_idsha"`
}

func (c *cli) botCreate(ctx context.Context, args []string) error {
	fs := c.flagSet("bot create", "Create a bot in a corporate and print its bot_idsha, which /token/new and /chat/create take.")
	sf := c.addStoreFlags(fs)
	corp := fs.Int64("corporate", 0, "the corporate's id (required)")
	name := fs.String("name", "", "the bot's name, shown to people on the link's page (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *corp <= 0 || strings.TrimSpace(*name) == "" {
		return errors.New("--corporate and --name are required")
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	b, err := s.CreateBot(ctx, *corp, *name)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(botJSON{ID: b.ID, CorporateID: b.CorporateID, Name: b.Name, BotIDSha: b.IDSha})
	}
	fmt.Fprintf(c.stdout, "bot %d (%s) of corporate %d\n  bot_idsha: %s\n", b.ID, b.Name, b.CorporateID, b.IDSha)
	return nil
}

func (c *cli) botList(ctx context.Context, args []string) error {
	fs := c.flagSet("bot list", "List a corporate's bots.")
	sf := c.addStoreFlags(fs)
	corp := fs.Int64("corporate", 0, "the corporate's id (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *corp <= 0 {
		return errors.New("--corporate is required")
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	bots, err := s.ListBots(ctx, *corp)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]botJSON, 0, len(bots))
		for _, b := range bots {
			out = append(out, botJSON{ID: b.ID, CorporateID: b.CorporateID, Name: b.Name, BotIDSha: b.IDSha})
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tBOT_IDSHA")
	for _, b := range bots {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", b.ID, b.Name, b.IDSha)
	}
	return tw.Flush()
}

func (c *cli) linkRevoke(ctx context.Context, args []string) error {
	fs := c.flagSet("link revoke", "End a web access link at once, and the chat sessions it opened.")
	sf := c.addStoreFlags(fs)
	u := fs.String("url", "", "the link's URL, as /token/new returned it (required)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	token := *u
	if i := strings.LastIndex(token, "/l/"); i >= 0 {
		token = token[i+len("/l/"):]
	}
	if token == "" {
		return errors.New("--url is required")
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.RevokeLink(ctx, token); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "link revoked")
	return nil
}

func (c *cli) migrateData(ctx context.Context, args []string) error {
	fs := c.flagSet("migrate-data", "Move a whole installation to another database, e.g. from SQLite to PostgreSQL: every corporate,\nbot, user, chat, link, session and delivery, with their ids. The target must be empty, and the\nsame server key (--key-file) serves both, so every credential and link keeps working.\nStop the servers on the source first.")
	from := fs.String("from", "", "the source database, e.g. sqlite:imbee.db (required)")
	to := fs.String("to", "", "the target database, e.g. postgres://imbee@db/imbee (required)")
	keyFile := fs.String("key-file", "", "the server key file (default: the SQLite source's path + \".key\")")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return errors.New("--from and --to are required")
	}
	keys, err := (&storeFlags{db: *from, keyFile: *keyFile}).keyring()
	if err != nil {
		return err
	}
	src, err := store.Open(ctx, *from, keys, store.Options{})
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	defer src.Close()
	dst, err := store.Open(ctx, *to, keys, store.Options{})
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	defer dst.Close()
	counts, err := store.CopyAll(ctx, src, dst)
	if err != nil {
		return err
	}
	for _, t := range []string{"corporates", "bots", "users", "devices", "conversations", "conversation_members", "links", "sessions", "deliveries"} {
		fmt.Fprintf(c.stdout, "%-22s %d rows\n", t, counts[t])
	}
	fmt.Fprintf(c.stdout, "moved %s to %s\n", store.Redact(*from), store.Redact(*to))
	return nil
}

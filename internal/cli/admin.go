package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
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
	ID             int64    `json:"id"`
	Name           string   `json:"name"`
	TimeZone       string   `json:"timezone"`
	Language       string   `json:"language"`
	SenderName     string   `json:"sender_name"`
	RateLimit      *float64 `json:"rate_limit,omitempty"`
	RateBurst      *int     `json:"rate_burst,omitempty"`
	Auth           string   `json:"auth,omitempty"`
	CorporateToken string   `json:"corporate_token,omitempty"`
	CreatedAt      string   `json:"created_at,omitempty"`
	Disabled       bool     `json:"disabled"`
}

func (c *cli) corporateCreate(ctx context.Context, args []string) error {
	fs := c.flagSet("corporate create", "Create a corporate (a tenant) and print its credentials: Authorization (auth) and X-WOOS-KEY (corporate_token).\nThey are shown only now; \"imbee corporate rotate\" replaces lost ones.")
	sf := c.addStoreFlags(fs)
	name := fs.String("name", "", "the corporate's name (required)")
	tz := fs.String("timezone", "UTC", "IANA time zone in which links' date_limit days end, e.g. Europe/Madrid")
	lang := fs.String("language", imbee.Languages[0], "language of the mails and SMS that carry its links: "+strings.Join(imbee.Languages, " or "))
	sender := fs.String("sender-name", "", "the From name of its mails (default: the corporate's name)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("--name is required")
	}
	corp, err := imbee.NewCorporate(*name, *tz)
	if err == nil {
		err = imbee.CorporateSettings{Language: lang}.Check()
	}
	if err != nil {
		return flagError(err, settingFlags)
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	w := commandWrites(s)
	corp, creds, err := w.CreateCorporate(ctx, corp.Name, corp.TimeZone)
	if err != nil {
		return err
	}
	if *lang != corp.Language || *sender != "" {
		if corp, err = w.UpdateCorporate(ctx, corp.ID, imbee.CorporateSettings{Language: lang, SenderName: sender}); err != nil {
			return err
		}
	}
	return c.printCredentials(corp, creds, *asJSON)
}

func (c *cli) corporateUpdate(ctx context.Context, args []string) error {
	fs := c.flagSet("corporate update", "Change a corporate's settings; flags not given stay as they are.")
	sf := c.addStoreFlags(fs)
	id := fs.Int64("id", 0, "the corporate's id (required)")
	name := fs.String("name", "", "new name")
	tz := fs.String("timezone", "", "new IANA time zone")
	lang := fs.String("language", "", "new language of its mails and SMS: "+strings.Join(imbee.Languages, " or "))
	sender := fs.String("sender-name", "", "new From name of its mails")
	rateLimit := fs.String("rate-limit", "", `its own rate limit, requests per second, instead of the server's --rate-limit; "default" goes back to the server's`)
	rateBurst := fs.Int("rate-burst", 0, "its own burst above the rate limit")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *id <= 0 {
		return errors.New("--id is required")
	}
	var set imbee.CorporateSettings
	switch *rateLimit {
	case "":
	case "default":
		set.ResetRateLimit = true
	default:
		n, err := strconv.ParseFloat(*rateLimit, 64)
		if err != nil || !(n > 0) {
			return errors.New(`--rate-limit must be a number of requests per second above 0, or "default"`)
		}
		set.RateLimit = &n
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "name":
			set.Name = name
		case "timezone":
			set.TimeZone = tz
		case "language":
			set.Language = lang
		case "sender-name":
			set.SenderName = sender
		case "rate-burst":
			set.RateBurst = rateBurst
		}
	})
	if err := set.Check(); err != nil {
		return flagError(err, settingFlags)
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	corp, err := commandWrites(s).UpdateCorporate(ctx, *id, set)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(toCorporateJSON(corp))
	}
	limit := "the server's"
	if corp.RateLimit != nil {
		limit = strconv.FormatFloat(*corp.RateLimit, 'f', -1, 64) + "/s"
		if corp.RateBurst != nil {
			limit += fmt.Sprintf(", burst %d", *corp.RateBurst)
		}
	}
	fmt.Fprintf(c.stdout, "corporate %d (%s): timezone %s, language %s, sender name %q, rate limit %s\n", corp.ID, corp.Name, corp.TimeZone, corp.Language, corp.SenderName, limit)
	return nil
}

// settingFlags names the subjects of a corporate's settings by the flags
// that set them.
var settingFlags = map[string]string{
	imbee.SubjectName: "--name", imbee.SubjectTimeZone: "--timezone", imbee.SubjectLanguage: "--language",
	imbee.SubjectRateLimit: "--rate-limit",
}

// flagError says what a domain rule refused in the CLI's terms: the flag
// (flags names them by subject) and why.
func flagError(err error, flags map[string]string) error {
	var e *imbee.Error
	if errors.As(err, &e) && flags[e.Field] != "" {
		return fmt.Errorf("%s: %s", flags[e.Field], e.Message)
	}
	return err
}

func toCorporateJSON(co imbee.Corporate) corporateJSON {
	return corporateJSON{ID: co.ID, Name: co.Name, TimeZone: co.TimeZone, Language: co.Language, SenderName: co.SenderName,
		RateLimit: co.RateLimit, RateBurst: co.RateBurst, CreatedAt: co.CreatedAt.Format(time.RFC3339), Disabled: co.Disabled}
}

func (c *cli) printCredentials(corp imbee.Corporate, creds imbee.CorporateCredentials, asJSON bool) error {
	if asJSON {
		out := toCorporateJSON(corp)
		out.Auth, out.CorporateToken = creds.Auth, creds.CorporateToken
		return c.printJSON(out)
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
			out = append(out, toCorporateJSON(co))
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTIMEZONE\tLANGUAGE\tSENDER NAME\tCREATED\tSTATE")
	for _, co := range corps {
		state := "enabled"
		if co.Disabled {
			state = "disabled"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", co.ID, co.Name, co.TimeZone, co.Language, co.SenderName, co.CreatedAt.Format(time.RFC3339), state)
	}
	return tw.Flush()
}

// corporateDisable is "imbee corporate disable" (disable true) and
// "imbee corporate enable".
func (c *cli) corporateDisable(ctx context.Context, args []string, disable bool) error {
	name, help := "corporate enable", "Let a disabled corporate work again: its credentials, links and new sessions work as before."
	if disable {
		name, help = "corporate disable", "Stop a corporate at once, on every server: its credentials answer code 2, its links' pages answer 410,\nits web sessions end and its sockets close. \"imbee corporate enable\" restores it."
	}
	fs := c.flagSet(name, help)
	sf := c.addStoreFlags(fs)
	id := fs.Int64("id", 0, "the corporate's id (required)")
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
	co, err := commandWrites(s).SetCorporateDisabled(ctx, *id, disable)
	if err != nil {
		return err
	}
	state := "enabled"
	if co.Disabled {
		state = "disabled"
	}
	fmt.Fprintf(c.stdout, "corporate %d (%s) %s\n", co.ID, co.Name, state)
	return nil
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
	creds, err := commandWrites(s).RotateCorporate(ctx, *id)
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
	b, err := commandWrites(s).CreateBot(ctx, *corp, *name)
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
	fs := c.flagSet("link revoke", "End a web access link at once, and the chat sessions it opened; or, with --corporate and --user, every link of a user.")
	sf := c.addStoreFlags(fs)
	u := fs.String("url", "", "the link's URL, as /token/new returned it")
	corp := fs.Int64("corporate", 0, "with --user: the corporate's id")
	user := fs.String("user", "", "with --corporate: the user's id (uniqueIdSha / virtual_user): revoke all of their links")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if (*u == "") == (*user == "") || *user != "" && *corp <= 0 {
		return errors.New("give --url, or --corporate and --user")
	}
	var token string
	if *u != "" {
		var err error
		if token, err = imbee.ParseLinkToken(*u); err != nil {
			return flagError(err, map[string]string{imbee.SubjectLink: "--url"})
		}
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	w := commandWrites(s)
	if *user != "" {
		n, err := w.RevokeUserLinks(ctx, *corp, *user)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "%d links revoked\n", n)
		return nil
	}
	if _, err := w.RevokeLink(ctx, 0, token); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, "link revoked")
	return nil
}

func (c *cli) botRevoke(ctx context.Context, args []string) error {
	fs := c.flagSet("bot revoke", "Retire a bot: it takes no new links, chats or messages, its links stop working and its webhook is removed. It cannot be undone.")
	sf := c.addStoreFlags(fs)
	corp := fs.Int64("corporate", 0, "the corporate's id (required)")
	bot := fs.String("bot", "", "the bot's bot_idsha (required)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *corp <= 0 || strings.TrimSpace(*bot) == "" {
		return errors.New("--corporate and --bot are required")
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	n, err := commandWrites(s).RevokeBot(ctx, *corp, strings.TrimSpace(*bot))
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "bot revoked; %d links ended\n", n)
	return nil
}

func (c *cli) userRotate(ctx context.Context, args []string) error {
	fs := c.flagSet("user rotate", "Give a user a new pass and apikey and print them. The old ones stop working at once, on every server.")
	sf := c.addStoreFlags(fs)
	corp := fs.Int64("corporate", 0, "the corporate's id (required)")
	user := fs.String("user", "", "the user's id: uniqueIdSha / virtual_user (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *corp <= 0 || *user == "" {
		return errors.New("--corporate and --user are required")
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	u, err := commandWrites(s).RotateUser(ctx, *corp, *user)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(map[string]string{"virtualUser": u.IDSha, "pass": u.Pass, "apikey": u.APIKey})
	}
	fmt.Fprintf(c.stdout, "user %s\n  pass:   %s\n  apikey: %s\nThe old ones no longer work.\n", u.IDSha, u.Pass, u.APIKey)
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
	for _, t := range counts {
		fmt.Fprintf(c.stdout, "%-22s %d rows\n", t.Table, t.Rows)
	}
	fmt.Fprintf(c.stdout, "moved %s to %s\n", store.Redact(*from), store.Redact(*to))
	return nil
}

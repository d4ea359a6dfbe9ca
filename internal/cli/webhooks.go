package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/writes"
)

func (c *cli) botWebhook(ctx context.Context, args []string) error {
	fs := c.flagSet("bot webhook", "Set a bot's webhook: every message in its conversations is POSTed there, signed.\nPrints the new signing secret, shown only now; the previous one stops being valid. --url \"\" removes the webhook.")
	sf := c.addStoreFlags(fs)
	corp := fs.Int64("corporate", 0, "the corporate's id (required)")
	bot := fs.String("bot", "", "the bot's bot_idsha (required)")
	hook := fs.String("url", "", "the webhook URL (http or https); empty removes it")
	allowPrivate := fs.Bool("allow-private-webhooks", false, "accept a loopback or private address (as imbee serve --allow-private-webhooks does)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *corp <= 0 || strings.TrimSpace(*bot) == "" {
		return errors.New("--corporate and --bot are required")
	}
	var err error
	if *hook, err = imbee.CheckWebhookURL(*hook, *allowPrivate); err != nil {
		return flagError(err, map[string]string{imbee.SubjectWebhookURL: "--url"})
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	secret, err := commandWrites(s).SetBotWebhook(ctx, *corp, strings.TrimSpace(*bot), *hook)
	if err != nil {
		return err
	}
	if *asJSON {
		return c.printJSON(map[string]string{"bot_idsha": *bot, "url": *hook, "secret": secret})
	}
	if *hook == "" {
		fmt.Fprintln(c.stdout, "webhook removed")
		return nil
	}
	fmt.Fprintf(c.stdout, "webhook set: %s\n  secret: %s\nKeep the secret: it is not shown again.\n", *hook, secret)
	return nil
}

func (c *cli) webhooksList(ctx context.Context, args []string) error {
	fs := c.flagSet("webhooks list", "The webhook ledger: one row per event per bot, newest first.")
	sf := c.addStoreFlags(fs)
	status := fs.String("status", "", "only this status: queued, sending, sent, failed (will be retried) or dead")
	limit := fs.Int("limit", 50, "at most this many rows")
	asJSON := fs.Bool("json", false, "print JSON (with the payloads)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	es, err := s.WebhookEvents(ctx, imbee.DeliveryStatus(*status), max(*limit, 1))
	if err != nil {
		return err
	}
	if *asJSON {
		type row struct {
			ID          int64  `json:"id"`
			CorporateID int64  `json:"corporate_id"`
			Bot         string `json:"bot_idsha"`
			EventID     string `json:"event_id"`
			Status      string `json:"status"`
			Attempts    int    `json:"attempts"`
			LastError   string `json:"last_error"`
			Payload     string `json:"payload"`
			UpdatedAt   string `json:"updated_at"`
		}
		out := make([]row, 0, len(es))
		for _, e := range es {
			out = append(out, row{e.ID, e.CorporateID, e.BotIDSha, e.EventID, string(e.Status), e.Attempts, e.LastError, string(e.Payload), e.UpdatedAt.Format(time.RFC3339)})
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCORPORATE\tBOT\tEVENT\tSTATUS\tATTEMPTS\tUPDATED\tLAST ERROR")
	for _, e := range es {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", e.ID, e.CorporateID, e.BotIDSha, e.EventID, e.Status, e.Attempts,
			e.UpdatedAt.Format(time.RFC3339), oneLine(e.LastError, 80))
	}
	return tw.Flush()
}

func (c *cli) webhooksRetry(ctx context.Context, args []string) error {
	return c.retryDead(ctx, args, "webhooks retry",
		"Queue dead webhook events again (replay), with a fresh set of attempts: the ones named by --id, or every dead one with --all.\nThey keep their event id, so a receiver that saw one already can dedupe it.",
		"event row ids", "events", (*writes.Runner).RetryWebhookEvents)
}

// retryDead is the retry command of a queue: --id or --all, then retry.
func (c *cli) retryDead(ctx context.Context, args []string, name, summary, idsHelp, noun string,
	retry func(*writes.Runner, context.Context, []int64) (int64, error)) error {
	fs := c.flagSet(name, summary)
	sf := c.addStoreFlags(fs)
	ids := fs.String("id", "", "comma-separated "+idsHelp)
	all := fs.Bool("all", false, "every dead one")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	list, err := idList(*ids, *all)
	if err != nil {
		return err
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	n, err := retry(commandWrites(s), ctx, list)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%d %s queued again\n", n, noun)
	return nil
}

// idList reads --id (comma-separated row ids) against --all: one of the
// two, not both.
func idList(ids string, all bool) ([]int64, error) {
	var list []int64
	for f := range strings.SplitSeq(ids, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("--id: %q is not an id", f)
		}
		list = append(list, id)
	}
	switch {
	case len(list) == 0 && !all:
		return nil, errors.New("name rows with --id, or retry every dead one with --all")
	case len(list) > 0 && all:
		return nil, errors.New("--id and --all do not go together")
	}
	return list, nil
}

package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/delivery"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/writes"
)

type deliveryJSON struct {
	ID            int64  `json:"id"`
	CorporateID   int64  `json:"corporate_id"`
	LinkID        int64  `json:"link_id"`
	Channel       string `json:"channel"`
	To            string `json:"to"`
	Status        string `json:"status"`
	Attempts      int    `json:"attempts"`
	LastError     string `json:"last_error"`  // the whole error
	LastReason    string `json:"last_reason"` // its class, as the corporate sees it
	ProviderID    string `json:"provider_id"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
	NextAttemptAt string `json:"next_attempt_at"`
}

func (c *cli) deliveriesList(ctx context.Context, args []string) error {
	fs := c.flagSet("deliveries list", "The delivery ledger: one row per mail or SMS of a link, newest first. Addresses are masked unless --json.")
	sf := c.addStoreFlags(fs)
	status := fs.String("status", "", "only this status: queued, sending, sent, failed (will be retried) or dead")
	limit := fs.Int("limit", 50, "at most this many rows")
	asJSON := fs.Bool("json", false, "print JSON (with whole addresses)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	switch imbee.DeliveryStatus(*status) {
	case "", imbee.DeliveryQueued, imbee.DeliverySending, imbee.DeliverySent, imbee.DeliveryFailed, imbee.DeliveryDead:
	default:
		return fmt.Errorf("--status must be queued, sending, sent, failed or dead, not %q", *status)
	}
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	ds, err := s.Deliveries(ctx, imbee.DeliveryStatus(*status), max(*limit, 1))
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]deliveryJSON, 0, len(ds))
		for _, d := range ds {
			out = append(out, deliveryJSON{ID: d.ID, CorporateID: d.CorporateID, LinkID: d.LinkID, Channel: string(d.Recipient.Channel),
				To: d.Recipient.Address, Status: string(d.Status), Attempts: d.Attempts, LastError: d.LastError, LastReason: d.LastReason, ProviderID: d.ProviderID,
				CreatedAt: d.CreatedAt.Format(time.RFC3339), UpdatedAt: d.UpdatedAt.Format(time.RFC3339), NextAttemptAt: d.NextAttemptAt.Format(time.RFC3339)})
		}
		return c.printJSON(out)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCORPORATE\tLINK\tCHANNEL\tTO\tSTATUS\tATTEMPTS\tUPDATED\tLAST ERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.CorporateID, d.LinkID, d.Recipient.Channel,
			delivery.Mask(d.Recipient.Address), d.Status, d.Attempts, d.UpdatedAt.Format(time.RFC3339), oneLine(d.LastError, 80))
	}
	return tw.Flush()
}

func (c *cli) deliveriesRetry(ctx context.Context, args []string) error {
	return c.retryDead(ctx, args, "deliveries retry",
		"Queue dead deliveries again, with a fresh set of attempts: the ones named by --id, or every dead one with --all.\nA running server sends them within a second.",
		"delivery ids", "deliveries", (*writes.Runner).RetryDeliveries)
}

// oneLine shortens s to one line of at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

package api

import (
	"context"
	"strings"
	"time"

	"github.com/imbee/imbee"
)

type linkRef struct {
	URL         string `json:"url"`
	VirtualUser string `json:"virtual_user"`
}

// linkView is a link as /token/status and /token/revoke show it.
type linkView struct {
	URL        string         `json:"url"`
	UserIDSha  string         `json:"user_idsha"`
	BotIDSha   string         `json:"bot_idsha"`
	State      string         `json:"state"` // active, used_up, expired or revoked
	MaxRetries int            `json:"max_retries"`
	Uses       int            `json:"uses"`
	UsesLeft   int            `json:"uses_left"`
	DateLimit  string         `json:"date_limit"`
	Revoked    bool           `json:"revoked"`
	Deliveries []deliveryView `json:"deliveries"`
	Attempts   []attemptView  `json:"attempts"`
}

// attemptTime is RFC 3339 with milliseconds: attempts come in quick
// succession (a scanner's GET, then the person's POST).
const attemptTime = "2006-01-02T15:04:05.000Z07:00"

// attemptView is one entry of a link's audit trail.
type attemptView struct {
	Time   string `json:"time"`
	Method string `json:"method"`
	Result string `json:"result"` // viewed, spent, used_up, expired or revoked
	Client string `json:"client"` // keyed hash of the client's address
	Agent  string `json:"agent"`  // browser, mobile, scanner, bot or unknown
}

// deliveryView is one row of a link's delivery ledger.
type deliveryView struct {
	ID            int64  `json:"id"`
	Channel       string `json:"channel"` // mail or sms
	To            string `json:"to"`
	Status        string `json:"status"` // queued, sending, sent, failed (will be retried) or dead
	Attempts      int    `json:"attempts"`
	LastError     string `json:"last_error"`
	ProviderID    string `json:"provider_id"`
	CreatedAt     string `json:"created_at"`
	UpdatedAt     string `json:"updated_at"`
	NextAttemptAt string `json:"next_attempt_at,omitempty"` // while it will be tried again
}

type linkRevokeResponse struct {
	linkView
	PreviouslyRevoked bool `json:"previously_revoked"`
}

// userLinksRevokeResponse is /token/revoke's answer to {"virtual_user"}.
type userLinksRevokeResponse struct {
	RevokedLinks int64  `json:"revoked_links"`
	VirtualUser  string `json:"virtual_user"`
}

// tokenStatus is POST /token/status: a link's state and its deliveries.
func (s *Server) tokenStatus(ctx context.Context, c *call) (any, error) {
	token, err := linkToken(c.body)
	if err != nil {
		return nil, err
	}
	l, ds, err := s.store.LinkStatus(ctx, c.corporate.ID, token)
	if err != nil {
		return nil, err
	}
	as, err := s.store.LinkAttempts(ctx, l.CorporateID, l.ID)
	if err != nil {
		return nil, err
	}
	return s.linkView(l, ds, as), nil
}

// tokenRevoke is POST /token/revoke: the link stops working at once, and the
// web sessions it opened end. Revoking a revoked link is not an error. With
// {"virtual_user"} instead of {"url"}, every link of that user ends.
func (s *Server) tokenRevoke(ctx context.Context, c *call) (any, error) {
	var ref linkRef
	if err := decode(c.body, &ref); err != nil {
		return nil, err
	}
	if err := imbee.CheckLinkURL(ref.URL); err != nil {
		return nil, err
	}
	if strings.TrimSpace(ref.URL) == "" && ref.VirtualUser != "" {
		user, err := imbee.CheckID(imbee.SubjectUser, ref.VirtualUser)
		if err != nil {
			return nil, err
		}
		n, err := s.writes.RevokeUserLinks(ctx, c.corporate.ID, user)
		if err != nil {
			return nil, err
		}
		return userLinksRevokeResponse{RevokedLinks: n, VirtualUser: user}, nil
	}
	token, err := linkToken(c.body)
	if err != nil {
		return nil, err
	}
	l, err := s.writes.RevokeLink(ctx, c.corporate.ID, token)
	if err != nil {
		return nil, err
	}
	_, ds, err := s.store.LinkStatus(ctx, c.corporate.ID, token)
	if err != nil {
		return nil, err
	}
	as, err := s.store.LinkAttempts(ctx, l.CorporateID, l.ID)
	if err != nil {
		return nil, err
	}
	return linkRevokeResponse{linkView: s.linkView(l, ds, as), PreviouslyRevoked: l.Existing}, nil
}

// linkToken takes the token out of {"url": …} (imbee.ParseLinkToken).
func linkToken(body []byte) (string, error) {
	var req struct {
		URL string `json:"url"` // virtual_user is /token/revoke's alone
	}
	if err := decode(body, &req); err != nil {
		return "", err
	}
	return imbee.ParseLinkToken(req.URL)
}

func (s *Server) linkView(l imbee.Link, ds []imbee.Delivery, as []imbee.LinkAttempt) linkView {
	v := linkView{
		URL:        s.cfg.PublicURL + "/l/" + l.Token,
		UserIDSha:  l.UserIDSha,
		BotIDSha:   l.BotIDSha,
		State:      l.State(s.cfg.Now()).String(),
		MaxRetries: l.MaxUses,
		Uses:       l.Uses,
		UsesLeft:   max(0, l.MaxUses-l.Uses),
		DateLimit:  l.DateLimit,
		Revoked:    l.Revoked,
		Deliveries: []deliveryView{},
		Attempts:   []attemptView{},
	}
	for _, a := range as {
		v.Attempts = append(v.Attempts, attemptView{Time: a.At.UTC().Format(attemptTime), Method: a.Method, Result: a.Result, Client: a.Client, Agent: a.Agent})
	}
	for _, d := range ds {
		dv := deliveryView{
			ID: d.ID, Channel: string(d.Recipient.Channel), To: d.Recipient.Address, Status: string(d.Status),
			Attempts: d.Attempts, LastError: d.LastReason, ProviderID: d.ProviderID,
			CreatedAt: d.CreatedAt.Format(time.RFC3339), UpdatedAt: d.UpdatedAt.Format(time.RFC3339),
		}
		if d.Status == imbee.DeliveryQueued || d.Status == imbee.DeliveryFailed {
			dv.NextAttemptAt = d.NextAttemptAt.Format(time.RFC3339)
		}
		v.Deliveries = append(v.Deliveries, dv)
	}
	return v
}

package client

import (
	"context"
	"time"
)

// NewTokenRequest is the body of /token/new: a web access link for a user
// and a bot, sent by mail, SMS or both (at least one of Mail and Cellular).
type NewTokenRequest struct {
	VirtualUser string `json:"virtual_user"` // the integrator's id of the user, as NewUserRequest.UniqueIDSha
	BotIDSha    string `json:"bot_idsha"`
	Mail        string `json:"mail,omitempty"`
	Cellular    string `json:"celullar,omitempty"`    // the API's spelling; international: "+34 612 34 56 78"
	MaxRetries  int    `json:"max_retries,omitempty"` // times the link can be opened; 0: the server's default (10)
	DateLimit   string `json:"date_limit,omitempty"`  // YYYY-MM-DD, last day the link works; "": today + 30 days
}

// Link is a link that NewToken issued.
type Link struct {
	URL        string `json:"url"`
	UserIDSha  string `json:"user_idsha"`
	DateLimit  string `json:"date_limit"`
	MaxRetries int    `json:"max_retries"`
	// PreviouslyCreated is true when the user's active link with the bot
	// was returned (and sent again) instead of a new one.
	PreviouslyCreated bool `json:"previously_created"`
}

// NewToken issues a web access link and sends it (POST /token/new). While
// the user's link with the bot is active, it is returned again.
func (c *Client) NewToken(ctx context.Context, req NewTokenRequest, opts ...CallOption) (*Link, error) {
	var out Link
	if err := c.call(ctx, "/token/new", changing, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// TokenStatusRequest is the body of /token/status.
type TokenStatusRequest struct {
	URL string `json:"url"` // as NewToken returned it, or just its token
}

// Link states.
const (
	StateActive  = "active"
	StateUsedUp  = "used_up"
	StateExpired = "expired"
	StateRevoked = "revoked"
)

// LinkStatus is a link's state, its delivery ledger and its audit trail.
type LinkStatus struct {
	URL        string     `json:"url"`
	UserIDSha  string     `json:"user_idsha"`
	BotIDSha   string     `json:"bot_idsha"`
	State      string     `json:"state"` // one of the State constants
	MaxRetries int        `json:"max_retries"`
	Uses       int        `json:"uses"`
	UsesLeft   int        `json:"uses_left"`
	DateLimit  string     `json:"date_limit"`
	Revoked    bool       `json:"revoked"`
	Deliveries []Delivery `json:"deliveries"` // oldest first
	Attempts   []Attempt  `json:"attempts"`   // newest first, the last 100
}

// Delivery is one send of a link to one channel.
type Delivery struct {
	ID         int64     `json:"id"`
	Channel    string    `json:"channel"` // mail or sms
	To         string    `json:"to"`
	Status     string    `json:"status"` // queued, sending, sent, failed (to be retried) or dead
	Attempts   int       `json:"attempts"`
	LastError  string    `json:"last_error"`
	ProviderID string    `json:"provider_id"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	// NextAttemptAt is when the next try is due; zero unless queued or failed.
	NextAttemptAt time.Time `json:"next_attempt_at"`
}

// Attempt is one opening (GET, HEAD) or submission (POST) of a link's page.
type Attempt struct {
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Result string    `json:"result"` // viewed, spent, used_up, expired or revoked
	Client string    `json:"client"` // a keyed hash of the client's address
	Agent  string    `json:"agent"`  // browser, mobile, scanner, bot or unknown
}

// TokenStatus returns a link's state, deliveries and attempts
// (POST /token/status).
func (c *Client) TokenStatus(ctx context.Context, req TokenStatusRequest, opts ...CallOption) (*LinkStatus, error) {
	var out LinkStatus
	if err := c.call(ctx, "/token/status", reading, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// RevokeTokenRequest names what /token/revoke ends: one link by URL, or
// every link of a user by VirtualUser.
type RevokeTokenRequest struct {
	URL         string `json:"url,omitempty"`
	VirtualUser string `json:"virtual_user,omitempty"`
}

// RevokeTokenResponse is, for a URL, the link as TokenStatus shows it and
// PreviouslyRevoked; for a VirtualUser, VirtualUser and RevokedLinks.
type RevokeTokenResponse struct {
	LinkStatus
	PreviouslyRevoked bool   `json:"previously_revoked"`
	VirtualUser       string `json:"virtual_user"`
	RevokedLinks      int64  `json:"revoked_links"`
}

// RevokeToken ends a link, or every link of a user, at once
// (POST /token/revoke). Revoking twice is not an error.
func (c *Client) RevokeToken(ctx context.Context, req RevokeTokenRequest, opts ...CallOption) (*RevokeTokenResponse, error) {
	var out RevokeTokenResponse
	if err := c.call(ctx, "/token/revoke", changing, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

package delivery

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/imbee/imbee/internal/secret"
)

// SMSConfig is how to reach the SMS provider.
type SMSConfig struct {
	// Provider is "twilio" (the Twilio Messages API, or any provider that
	// speaks it) or "webhook" (a signed JSON POST to URL).
	Provider string
	URL      string // twilio: the API base (default https://api.twilio.com); webhook: the endpoint
	Account  string // twilio: the account SID
	Token    string // twilio: the auth token; webhook: the signing secret
	From     string // the sender number or name
}

// DefaultTwilioURL is the Twilio API's base URL.
const DefaultTwilioURL = "https://api.twilio.com"

// NewSMSSender returns the sender cfg names, rendering with t.
func NewSMSSender(cfg SMSConfig, t *Templates, client *http.Client) (Sender, error) {
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	switch cfg.Provider {
	case "twilio":
		if cfg.URL == "" {
			cfg.URL = DefaultTwilioURL
		}
		if cfg.Account == "" || cfg.Token == "" || cfg.From == "" {
			return nil, errors.New("--sms-provider twilio needs --sms-account, --sms-token and --sms-from")
		}
		if _, err := url.ParseRequestURI(cfg.URL); err != nil {
			return nil, fmt.Errorf("--sms-url: %w", err)
		}
		return &TwilioSender{cfg: cfg, templates: t, client: client}, nil
	case "webhook":
		if cfg.URL == "" || cfg.Token == "" {
			return nil, errors.New("--sms-provider webhook needs --sms-url and --sms-token (the signing secret)")
		}
		if _, err := url.ParseRequestURI(cfg.URL); err != nil {
			return nil, fmt.Errorf("--sms-url: %w", err)
		}
		return &WebhookSender{cfg: cfg, templates: t, client: client, now: time.Now}, nil
	}
	return nil, fmt.Errorf("--sms-provider must be twilio or webhook, not %q", cfg.Provider)
}

// TwilioSender sends SMS with the Twilio Messages API: a form POST to
// {base}/2010-04-01/Accounts/{account}/Messages.json with basic auth.
type TwilioSender struct {
	cfg       SMSConfig
	templates *Templates
	client    *http.Client
}

// Describe says where SMS go, without secrets.
func (s *TwilioSender) Describe() string {
	return fmt.Sprintf("Twilio API at %s, account %s, from %s", s.cfg.URL, s.cfg.Account, s.cfg.From)
}

// Send posts the message and returns Twilio's message SID.
func (s *TwilioSender) Send(ctx context.Context, m Message) (string, error) {
	r, err := s.templates.Render(m.Language, TemplateData{URL: m.URL, BotName: m.BotName, CorporateName: m.CorporateName, SenderName: m.SenderName})
	if err != nil {
		return "", Permanent(renderError{err})
	}
	form := url.Values{"To": {m.Recipient.Address}, "From": {s.cfg.From}, "Body": {r.SMS}}
	endpoint := strings.TrimRight(s.cfg.URL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(s.cfg.Account) + "/Messages.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", Permanent(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(s.cfg.Account, s.cfg.Token)
	var out struct {
		SID     string `json:"sid"`
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := postJSON(s.client, req, &out); err != nil {
		if out.Message != "" {
			err = fmt.Errorf("%w: Twilio error %d: %s", err, out.Code, out.Message)
		}
		return "", err
	}
	return out.SID, nil
}

// WebhookSender sends SMS through the operator's own gateway: a JSON POST
// signed in the Standard Webhooks style (webhook-id, webhook-timestamp and
// webhook-signature "v1,<base64 HMAC-SHA256 of id.timestamp.body>"). The
// id is the delivery's, the same on every retry, so the gateway can dedupe.
type WebhookSender struct {
	cfg       SMSConfig
	templates *Templates
	client    *http.Client
	now       func() time.Time
}

// Describe says where SMS go, without secrets.
func (s *WebhookSender) Describe() string {
	return fmt.Sprintf("signed webhook %s, from %s", s.cfg.URL, s.cfg.From)
}

// WebhookPayload is the body of an SMS webhook.
type WebhookPayload struct {
	Type string `json:"type"` // "sms"
	To   string `json:"to"`   // E.164
	From string `json:"from"`
	Body string `json:"body"`
}

// Send posts the message; the gateway's answer may carry {"id": "..."}.
func (s *WebhookSender) Send(ctx context.Context, m Message) (string, error) {
	r, err := s.templates.Render(m.Language, TemplateData{URL: m.URL, BotName: m.BotName, CorporateName: m.CorporateName, SenderName: m.SenderName})
	if err != nil {
		return "", Permanent(renderError{err})
	}
	body, err := json.Marshal(WebhookPayload{Type: "sms", To: m.Recipient.Address, From: s.cfg.From, Body: r.SMS})
	if err != nil {
		return "", Permanent(err)
	}
	id := "dlv_" + strconv.FormatInt(m.DeliveryID, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return "", Permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	SignWebhook(req.Header, secret.WebhookKey(s.cfg.Token), id, s.now(), body)
	var out struct {
		ID string `json:"id"`
	}
	if err := postJSON(s.client, req, &out); err != nil {
		return "", err
	}
	if out.ID == "" {
		out.ID = id
	}
	return out.ID, nil
}

// SignWebhook sets the Standard Webhooks headers of a request with body,
// signed with secret.
func SignWebhook(h http.Header, secret []byte, id string, at time.Time, body []byte) {
	ts := strconv.FormatInt(at.Unix(), 10)
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+WebhookSignature(secret, id, ts, body))
}

// WebhookSignature is base64(HMAC-SHA256(secret, id "." timestamp "." body)).
func WebhookSignature(secret []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%s.%s.", id, timestamp)
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// postJSON sends req and decodes a JSON answer (best effort) into out. It
// classifies failures the way providers mean them: 2xx is success; 429 is
// retried after its Retry-After; 408 and 5xx are retried; any other 4xx is
// permanent (a refused number, a bad request); no answer is retried.
func postJSON(client *http.Client, req *http.Request, out any) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = json.Unmarshal(b, out) // errors carry JSON too; a bad body is not our failure
	err = &StatusError{Code: resp.StatusCode, Status: resp.Status}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests:
		return RetryAfter(err, retryAfter(resp.Header.Get("Retry-After"), time.Now()))
	case code == http.StatusRequestTimeout || code >= 500:
		return err
	default:
		return Permanent(err)
	}
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date. Zero
// means none (the backoff applies).
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

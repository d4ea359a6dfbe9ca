package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"

	"github.com/imbee/imbee"
)

// Link limits, documented in docs/api.md.
const (
	DefaultMaxRetries = 10
	MaxMaxRetries     = 1000
	DefaultLinkDays   = 30  // a link without date_limit works through today + 30 days
	MaxLinkDays       = 365 // date_limit may be at most this many days from today
	maxMailLength     = 254
	maxPhoneLength    = 32
	// maxFlexIntString bounds an integer sent as a string, blanks included:
	// any int64 fits in 20 characters.
	maxFlexIntString = 32
)

// flexInt is an integer that may also arrive as a string of digits ("10").
type flexInt struct {
	set bool
	n   int64
	bad bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	f.set = true
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if len(s) > maxFlexIntString {
			f.bad = true
			return nil
		}
		b = []byte(strings.TrimSpace(s))
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		f.bad = true
		return nil
	}
	f.n = n
	return nil
}

type tokenNewRequest struct {
	VirtualUser string  `json:"virtual_user"`
	VirutalUser string  `json:"virutal_user"` // the document's own spelling
	BotIDSha    string  `json:"bot_idsha"`
	Mail        string  `json:"mail"`
	Celullar    string  `json:"celullar"` // the document's own spelling
	Cellular    string  `json:"cellular"`
	MaxRetries  flexInt `json:"max_retries"`
	DateLimit   string  `json:"date_limit"`
}

type tokenNewResponse struct {
	URL               string `json:"url"`
	UserIDSha         string `json:"user_idsha"`
	DateLimit         string `json:"date_limit"`
	MaxRetries        int    `json:"max_retries"`
	PreviouslyCreated bool   `json:"previously_created"`
}

// tokenNew is POST /token/new.
func (s *Server) tokenNew(ctx context.Context, c *call) (any, error) {
	var req tokenNewRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	lr, err := s.linkRequest(c.corporate, &req)
	if err != nil {
		return nil, err
	}
	link, err := s.writes.IssueLink(ctx, lr)
	if err != nil {
		return nil, err
	}
	return tokenNewResponse{
		URL:               s.cfg.PublicURL + "/l/" + link.Token,
		UserIDSha:         link.UserIDSha,
		DateLimit:         link.DateLimit,
		MaxRetries:        link.MaxUses,
		PreviouslyCreated: link.Existing,
	}, nil
}

// linkRequest validates a /token/new in the document's parameter order.
func (s *Server) linkRequest(corp imbee.Corporate, req *tokenNewRequest) (imbee.LinkRequest, error) {
	lr := imbee.LinkRequest{CorporateID: corp.ID, SendsPerHour: s.cfg.RecipientLimit}
	var err error
	field, user := "virtual_user", req.VirtualUser
	if user == "" && req.VirutalUser != "" {
		field, user = "virutal_user", req.VirutalUser
	}
	if lr.UniqueID, err = requiredID(field, user); err != nil {
		return lr, err
	}
	if lr.BotIDSha, err = requiredID("bot_idsha", req.BotIDSha); err != nil {
		return lr, err
	}
	phone, phoneField := req.Celullar, "celullar"
	if phone == "" && req.Cellular != "" {
		phone, phoneField = req.Cellular, "cellular"
	}
	if strings.TrimSpace(req.Mail) == "" && strings.TrimSpace(phone) == "" {
		return lr, imbee.ParamError("mail", "mail or celullar is required: where should the link be sent?")
	}
	if strings.TrimSpace(req.Mail) != "" {
		addr, err := validMail(req.Mail)
		if err != nil {
			return lr, err
		}
		lr.Recipients = append(lr.Recipients, imbee.Recipient{Channel: imbee.ChannelMail, Address: addr})
	}
	if strings.TrimSpace(phone) != "" {
		num, err := validPhone(phoneField, phone)
		if err != nil {
			return lr, err
		}
		lr.Recipients = append(lr.Recipients, imbee.Recipient{Channel: imbee.ChannelSMS, Address: num})
	}

	lr.MaxUses = DefaultMaxRetries
	if req.MaxRetries.set {
		switch n := req.MaxRetries.n; {
		case req.MaxRetries.bad:
			return lr, imbee.ParamError("max_retries", "max_retries must be an integer")
		case n < 1:
			return lr, imbee.ParamError("max_retries", "max_retries must be at least 1")
		case n > MaxMaxRetries:
			return lr, imbee.ParamError("max_retries", "max_retries is at most %d", MaxMaxRetries)
		default:
			lr.MaxUses = int(n)
		}
	}

	loc, err := time.LoadLocation(corp.TimeZone)
	if err != nil {
		loc = time.UTC
	}
	now := s.cfg.Now().In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	last := today.AddDate(0, 0, DefaultLinkDays)
	if d := strings.TrimSpace(req.DateLimit); d != "" {
		day, err := time.ParseInLocation(time.DateOnly, d, loc)
		switch {
		case err != nil, len(req.DateLimit) > len(time.DateOnly):
			return lr, imbee.ParamError("date_limit", "date_limit must be a date as YYYY-MM-DD")
		case day.Before(today):
			return lr, imbee.ParamError("date_limit", "date_limit %s is in the past (today is %s in %s)", d, today.Format(time.DateOnly), loc)
		case day.After(today.AddDate(0, 0, MaxLinkDays)):
			return lr, imbee.ParamError("date_limit", "date_limit is at most %d days from today (%s)", MaxLinkDays, today.AddDate(0, 0, MaxLinkDays).Format(time.DateOnly))
		}
		last = day
	}
	lr.DateLimit = last.Format(time.DateOnly)
	lr.ExpiresAt = last.AddDate(0, 0, 1) // the link works through the end of that day
	return lr, nil
}

func validMail(s string) (string, error) {
	sent := utf8.RuneCountInString(s) // blanks included
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || sent > maxMailLength || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", imbee.ParamError("mail", "mail must be an e-mail address such as ana@example.com")
	}
	return s, nil
}

// validPhone accepts an international number ("+34 600 11 12 22", "0034…")
// and returns it in E.164.
func validPhone(field, s string) (string, error) {
	bad := imbee.ParamError(field, "%s must be an international phone number such as +34600111222", field)
	if len(s) > maxPhoneLength { // as sent, blanks included
		return "", bad
	}
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "00") {
		s = "+" + s[2:]
	}
	if !strings.HasPrefix(s, "+") {
		return "", bad
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", bad
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

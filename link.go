package imbee

import (
	"net/mail"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Link limits, documented in docs/api.md.
const (
	DefaultMaxUses  = 10
	MaxMaxUses      = 1000
	DefaultLinkDays = 30  // a link without a date limit works through today + 30 days
	MaxLinkDays     = 365 // a date limit is at most this many days from today
	MaxMailLength   = 254 // characters, as sent
	MaxPhoneLength  = 32  // bytes, as sent
	MaxLinkURL      = 2048
	maxLinkToken    = 128
)

// LinkInput is a link request as its sender wrote it, before the rules.
type LinkInput struct {
	UniqueID string
	BotIDSha string
	Mail     string
	Phone    string
	// MaxUses is nil when it was not sent; MaxUsesNotInteger when what
	// was sent is not an integer.
	MaxUses           *int64
	MaxUsesNotInteger bool
	DateLimit         string // YYYY-MM-DD, or "" for the default
	SendsPerHour      int
}

// NewLinkRequest is the rule for a link request of corp at now, checked
// in the document's order: the user and the bot as CheckID takes them; a
// mail address, a phone number or both (normalised: CheckMail,
// CheckPhone); how many times it opens, DefaultMaxUses unless given (1 to
// MaxMaxUses); and its date limit, a day from today to today +
// MaxLinkDays in the corporate's time zone (today + DefaultLinkDays
// unless given). The link works through the end of that day in that zone:
// ExpiresAt is the next midnight there.
func NewLinkRequest(corp Corporate, in LinkInput, now time.Time) (LinkRequest, error) {
	lr := LinkRequest{CorporateID: corp.ID, SendsPerHour: in.SendsPerHour}
	var err error
	if lr.UniqueID, err = CheckID(SubjectUser, in.UniqueID); err != nil {
		return lr, err
	}
	if lr.BotIDSha, err = CheckID(SubjectBot, in.BotIDSha); err != nil {
		return lr, err
	}
	if lr.Recipients, err = recipients(in.Mail, in.Phone); err != nil {
		return lr, err
	}
	if lr.MaxUses, err = maxUses(in); err != nil {
		return lr, err
	}
	lr.DateLimit, lr.ExpiresAt, err = LinkEnd(corp.Location(), in.DateLimit, now)
	return lr, err
}

// recipients checks a link's mail address and phone number: one of them,
// or both, is needed.
func recipients(mail, phone string) ([]Recipient, error) {
	if strings.TrimSpace(mail) == "" && strings.TrimSpace(phone) == "" {
		return nil, ParamError(SubjectMail, "{%s} or {%s} is required: where should the link be sent?", SubjectMail, SubjectPhone)
	}
	var rs []Recipient
	if strings.TrimSpace(mail) != "" {
		addr, err := CheckMail(mail)
		if err != nil {
			return nil, err
		}
		rs = append(rs, Recipient{Channel: ChannelMail, Address: addr})
	}
	if strings.TrimSpace(phone) != "" {
		num, err := CheckPhone(phone)
		if err != nil {
			return nil, err
		}
		rs = append(rs, Recipient{Channel: ChannelSMS, Address: num})
	}
	return rs, nil
}

// CheckMail is the rule for a link's e-mail address: a bare address (no
// display name) whose domain has a dot, at most MaxMailLength characters
// as sent. It returns the address trimmed.
func CheckMail(s string) (string, error) {
	sent := utf8.RuneCountInString(s) // blanks included
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || sent > MaxMailLength || !strings.Contains(s[strings.LastIndexByte(s, '@')+1:], ".") {
		return "", ParamError(SubjectMail, "{%s} must be an e-mail address such as ana@example.com", SubjectMail)
	}
	return s, nil
}

// CheckPhone is the rule for a link's phone number: international ("+34
// 600 11 12 22", "0034…"), valid, at most MaxPhoneLength bytes as sent. It
// returns the number in E.164.
func CheckPhone(s string) (string, error) {
	bad := ParamError(SubjectPhone, "{%s} must be an international phone number such as +34600111222", SubjectPhone)
	if len(s) > MaxPhoneLength { // as sent, blanks included
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

func maxUses(in LinkInput) (int, error) {
	switch {
	case in.MaxUsesNotInteger:
		return 0, ParamError(SubjectMaxUses, "{%s} must be an integer", SubjectMaxUses)
	case in.MaxUses == nil:
		return DefaultMaxUses, nil
	case *in.MaxUses < 1:
		return 0, ParamError(SubjectMaxUses, "{%s} must be at least 1", SubjectMaxUses)
	case *in.MaxUses > MaxMaxUses:
		return 0, ParamError(SubjectMaxUses, "{%s} is at most %d", SubjectMaxUses, MaxMaxUses)
	}
	return int(*in.MaxUses), nil
}

// Location is the corporate's time zone: the one its links' days end in
// (UTC when its name is not known here).
func (c Corporate) Location() *time.Location {
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// LinkEnd is the rule for a link's last day, in loc at now: dateLimit
// (YYYY-MM-DD, from today to today + MaxLinkDays), or today +
// DefaultLinkDays when it is blank. It returns that day and the instant
// the link stops working: the midnight that ends it, in loc.
func LinkEnd(loc *time.Location, dateLimit string, now time.Time) (day string, expires time.Time, err error) {
	now = now.In(loc)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	last := today.AddDate(0, 0, DefaultLinkDays)
	if d := strings.TrimSpace(dateLimit); d != "" {
		t, err := time.ParseInLocation(time.DateOnly, d, loc)
		switch {
		case err != nil, len(dateLimit) > len(time.DateOnly):
			return "", time.Time{}, ParamError(SubjectDateLimit, "{%s} must be a date as YYYY-MM-DD", SubjectDateLimit)
		case t.Before(today):
			return "", time.Time{}, ParamError(SubjectDateLimit, "{%s} %s is in the past (today is %s in %s)", SubjectDateLimit, d, today.Format(time.DateOnly), loc)
		case t.After(today.AddDate(0, 0, MaxLinkDays)):
			return "", time.Time{}, ParamError(SubjectDateLimit, "{%s} is at most %d days from today (%s)", SubjectDateLimit, MaxLinkDays, today.AddDate(0, 0, MaxLinkDays).Format(time.DateOnly))
		}
		last = t
	}
	return last.Format(time.DateOnly), last.AddDate(0, 0, 1), nil
}

// CheckLinkURL bounds a link's URL as given back to /token/status and
// /token/revoke: at most MaxLinkURL characters as sent.
func CheckLinkURL(raw string) error {
	if utf8.RuneCountInString(raw) > MaxLinkURL {
		return ParamError(SubjectLink, "{%s} is longer than %d characters", SubjectLink, MaxLinkURL)
	}
	return nil
}

// ParseLinkToken is the rule for naming a link by its URL: a URL of it
// (as /token/new returns, or any URL whose path ends in its token), or
// the token alone, as CheckLinkURL bounds it. It returns the token.
func ParseLinkToken(raw string) (string, error) {
	if err := CheckLinkURL(raw); err != nil {
		return "", err
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", ParamError(SubjectLink, "{%s} can not be null or empty", SubjectLink)
	}
	path := raw
	if u, err := url.Parse(raw); err == nil && u.Path != "" {
		path = u.Path
	}
	token := path[strings.LastIndexByte(path, '/')+1:]
	if CheckLinkToken(token) != nil {
		return "", ParamError(SubjectLink, "{%s} must be a link returned by /token/new", SubjectLink)
	}
	return token, nil
}

// CheckLinkToken is the rule for a link's token, the last part of its
// URL: present, at most 128 bytes, text as CheckText takes it. A token
// that breaks it names no link.
func CheckLinkToken(token string) error {
	if token == "" || len(token) > maxLinkToken || CheckText(SubjectLink, token) != nil {
		return NotFound(SubjectLink, "no such link")
	}
	return nil
}

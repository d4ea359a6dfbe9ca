package imbee_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee"
)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantErr checks that err is an error of code about subject whose
// message, in the domain's words, is message.
func wantErr(t *testing.T, err error, code imbee.Code, subject, message string) {
	t.Helper()
	e, ok := err.(*imbee.Error)
	if !ok || e.Code != code || e.Field != subject || e.Message != message {
		t.Errorf("error %v, want code %d about %q: %q", err, code, subject, message)
	}
}

// TestLinkEnd: a link works through the end of its last day in the
// corporate's zone, wherever that midnight falls in UTC: around the
// zone's own midnight, across DST changes (days of 23 and 25 hours), and
// for the default (today + 30 calendar days, not 720 hours).
func TestLinkEnd(t *testing.T) {
	for _, tc := range []struct {
		zone, now, dateLimit string
		day, expires         string // want; expires in UTC
	}{
		// Auckland, summer (UTC+13): its day ends at 11:00 UTC.
		{"Pacific/Auckland", "2026-01-15T10:59:59Z", "2026-01-15", "2026-01-15", "2026-01-15T11:00:00Z"},
		{"Pacific/Auckland", "2026-01-15T10:59:59Z", "", "2026-02-14", "2026-02-14T11:00:00Z"},
		{"Pacific/Auckland", "2026-01-15T11:00:00Z", "", "2026-02-15", "2026-02-15T11:00:00Z"},
		// The day before and the day of the end of DST (5 April 2026, 25 hours).
		{"Pacific/Auckland", "2026-04-01T00:00:00Z", "2026-04-04", "2026-04-04", "2026-04-04T11:00:00Z"},
		{"Pacific/Auckland", "2026-04-01T00:00:00Z", "2026-04-05", "2026-04-05", "2026-04-05T12:00:00Z"},
		// The start of DST (27 September 2026, 23 hours).
		{"Pacific/Auckland", "2026-09-01T00:00:00Z", "2026-09-26", "2026-09-26", "2026-09-26T12:00:00Z"},
		{"Pacific/Auckland", "2026-09-01T00:00:00Z", "2026-09-27", "2026-09-27", "2026-09-27T11:00:00Z"},
		// Los Angeles, winter (UTC-8): its day ends at 08:00 UTC the next day.
		{"America/Los_Angeles", "2026-03-08T07:59:59Z", "2026-03-07", "2026-03-07", "2026-03-08T08:00:00Z"},
		// The start of DST (8 March 2026): that day ends at 07:00 UTC.
		{"America/Los_Angeles", "2026-03-08T07:59:59Z", "2026-03-08", "2026-03-08", "2026-03-09T07:00:00Z"},
		{"America/Los_Angeles", "2026-03-08T08:00:00Z", "", "2026-04-07", "2026-04-08T07:00:00Z"},
		// The default across a DST change: 30 calendar days.
		{"America/Los_Angeles", "2026-02-20T12:00:00Z", "", "2026-03-22", "2026-03-23T07:00:00Z"},
		{"America/Los_Angeles", "2026-10-20T12:00:00Z", "", "2026-11-19", "2026-11-20T08:00:00Z"},
		// The most: today + 365 days.
		{"America/Los_Angeles", "2026-01-01T07:59:59Z", "2026-12-31", "2026-12-31", "2027-01-01T08:00:00Z"},
		{"UTC", "2026-01-15T23:59:59Z", "2026-01-15", "2026-01-15", "2026-01-16T00:00:00Z"},
		{"UTC", "2026-01-15T00:00:00Z", "2027-01-15", "2027-01-15", "2027-01-16T00:00:00Z"},
		{"UTC", "2026-01-15T00:00:00Z", "2026-02-01", "2026-02-01", "2026-02-02T00:00:00Z"},
		{"UTC", "2026-01-15T00:00:00Z", "   ", "2026-02-14", "2026-02-15T00:00:00Z"},
	} {
		loc, err := time.LoadLocation(tc.zone)
		if err != nil {
			t.Fatal(err)
		}
		day, expires, err := imbee.LinkEnd(loc, tc.dateLimit, at(t, tc.now))
		if err != nil || day != tc.day || !expires.Equal(at(t, tc.expires)) {
			t.Errorf("%s at %s, date limit %q: %s, %s, %v; want %s, %s", tc.zone, tc.now, tc.dateLimit, day, expires.UTC().Format(time.RFC3339), err, tc.day, tc.expires)
		}
		// The link works until that instant, not at it.
		l := imbee.Link{MaxUses: 1, ExpiresAt: expires}
		if l.State(expires.Add(-time.Nanosecond)) != imbee.LinkActive || l.State(expires) != imbee.LinkExpired {
			t.Errorf("%s %s: the link is not active until %s and expired from then", tc.zone, day, tc.expires)
		}
	}
}

// TestLinkEndRefused: a date limit before today or past today + 365 days
// in the corporate's zone, or not YYYY-MM-DD, is refused, naming today
// there.
func TestLinkEndRefused(t *testing.T) {
	for _, tc := range []struct {
		zone, now, dateLimit, message string
	}{
		// 11:00 UTC is already tomorrow in Auckland, not yet in Los Angeles.
		{"Pacific/Auckland", "2026-01-15T11:00:00Z", "2026-01-15", "date limit 2026-01-15 is in the past (today is 2026-01-16 in Pacific/Auckland)"},
		{"America/Los_Angeles", "2026-01-16T07:59:59Z", "2026-01-14", "date limit 2026-01-14 is in the past (today is 2026-01-15 in America/Los_Angeles)"},
		{"America/Los_Angeles", "2026-01-16T07:59:59Z", "2027-01-16", "date limit is at most 365 days from today (2027-01-15)"},
		{"UTC", "2026-01-15T00:00:00Z", "2027-01-16", "date limit is at most 365 days from today (2027-01-15)"},
		{"UTC", "2026-01-15T00:00:00Z", "2026-1-20", "date limit must be a date as YYYY-MM-DD"},
		{"UTC", "2026-01-15T00:00:00Z", "2026-02-30", "date limit must be a date as YYYY-MM-DD"},
		{"UTC", "2026-01-15T00:00:00Z", " 2026-01-20", "date limit must be a date as YYYY-MM-DD"}, // 11 characters as sent
		{"UTC", "2026-01-15T00:00:00Z", "20/01/2026", "date limit must be a date as YYYY-MM-DD"},
	} {
		loc, _ := time.LoadLocation(tc.zone)
		_, _, err := imbee.LinkEnd(loc, tc.dateLimit, at(t, tc.now))
		wantErr(t, err, imbee.CodeParam, imbee.SubjectDateLimit, tc.message)
	}
}

// TestCorporateLocation: a corporate's links end in its zone, or in UTC
// when the zone is not known.
func TestCorporateLocation(t *testing.T) {
	if got := (imbee.Corporate{TimeZone: "Pacific/Auckland"}).Location().String(); got != "Pacific/Auckland" {
		t.Errorf("Auckland: %s", got)
	}
	if got := (imbee.Corporate{TimeZone: "Mars/Olympus"}).Location(); got != time.UTC {
		t.Errorf("unknown zone: %s, want UTC", got)
	}
}

func ptr[T any](v T) *T { return &v }

// TestNewLinkRequest: the parameters of a link request are checked in the
// document's order and normalised; the date limit is the corporate's.
func TestNewLinkRequest(t *testing.T) {
	corp := imbee.Corporate{ID: 7, TimeZone: "Pacific/Auckland"}
	now := at(t, "2026-01-15T11:00:00Z") // 16 January in Auckland
	ok := imbee.LinkInput{UniqueID: "ana", BotIDSha: "b1", Mail: " Ana@Example.com ", Phone: "0034 600 11 12 22", SendsPerHour: 3}
	lr, err := imbee.NewLinkRequest(corp, ok, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []imbee.Recipient{{Channel: imbee.ChannelMail, Address: "Ana@Example.com"}, {Channel: imbee.ChannelSMS, Address: "+34600111222"}}
	if lr.CorporateID != 7 || lr.UniqueID != "ana" || lr.BotIDSha != "b1" || lr.MaxUses != imbee.DefaultMaxUses || lr.SendsPerHour != 3 ||
		len(lr.Recipients) != 2 || lr.Recipients[0] != want[0] || lr.Recipients[1] != want[1] ||
		lr.DateLimit != "2026-02-15" || !lr.ExpiresAt.Equal(at(t, "2026-02-15T11:00:00Z")) {
		t.Errorf("request = %+v", lr)
	}
	for _, tc := range []struct {
		name    string
		edit    func(*imbee.LinkInput)
		subject string
		message string
		maxUses int
	}{
		{"mail only", func(in *imbee.LinkInput) { in.Phone = "" }, "", "", 10},
		{"max uses 1", func(in *imbee.LinkInput) { in.MaxUses = ptr[int64](1) }, "", "", 1},
		{"max uses 1000", func(in *imbee.LinkInput) { in.MaxUses = ptr[int64](1000) }, "", "", 1000},
		{"no user", func(in *imbee.LinkInput) { in.UniqueID = " " }, imbee.SubjectUser, "user can not be null or empty", 0},
		{"user too long", func(in *imbee.LinkInput) { in.UniqueID = strings.Repeat("é", 256) }, imbee.SubjectUser, "user is longer than 255 characters", 0},
		{"user before bot", func(in *imbee.LinkInput) { in.UniqueID, in.BotIDSha = "", "" }, imbee.SubjectUser, "user can not be null or empty", 0},
		{"no bot", func(in *imbee.LinkInput) { in.BotIDSha = "" }, imbee.SubjectBot, "bot can not be null or empty", 0},
		{"bot with NUL", func(in *imbee.LinkInput) { in.BotIDSha = "b\x00" }, imbee.SubjectBot, "bot must not contain NUL characters", 0},
		{"no recipient", func(in *imbee.LinkInput) { in.Mail, in.Phone = " ", "\t" }, imbee.SubjectMail, "mail or phone is required: where should the link be sent?", 0},
		{"bad mail", func(in *imbee.LinkInput) { in.Mail = "ana@localhost" }, imbee.SubjectMail, "mail must be an e-mail address such as ana@example.com", 0},
		{"mail with a name", func(in *imbee.LinkInput) { in.Mail = "Ana <ana@example.com>" }, imbee.SubjectMail, "mail must be an e-mail address such as ana@example.com", 0},
		{"bad phone", func(in *imbee.LinkInput) { in.Phone = "600111222" }, imbee.SubjectPhone, "phone must be an international phone number such as +34600111222", 0},
		{"max uses 0", func(in *imbee.LinkInput) { in.MaxUses = ptr[int64](0) }, imbee.SubjectMaxUses, "max uses must be at least 1", 0},
		{"max uses 1001", func(in *imbee.LinkInput) { in.MaxUses = ptr[int64](1001) }, imbee.SubjectMaxUses, "max uses is at most 1000", 0},
		{"max uses not an integer", func(in *imbee.LinkInput) { in.MaxUsesNotInteger = true }, imbee.SubjectMaxUses, "max uses must be an integer", 0},
		{"date limit yesterday", func(in *imbee.LinkInput) { in.DateLimit = "2026-01-15" }, imbee.SubjectDateLimit, "date limit 2026-01-15 is in the past (today is 2026-01-16 in Pacific/Auckland)", 0},
	} {
		in := ok
		tc.edit(&in)
		lr, err := imbee.NewLinkRequest(corp, in, now)
		if tc.subject == "" {
			if err != nil || lr.MaxUses != tc.maxUses {
				t.Errorf("%s: %+v, %v", tc.name, lr, err)
			}
			continue
		}
		wantErr(t, err, imbee.CodeParam, tc.subject, tc.message)
	}
}

// TestCheckMail: a bare address whose domain has a dot, at most 254
// characters as sent (blanks included), returned trimmed.
func TestCheckMail(t *testing.T) {
	local := strings.Repeat("a", 64)
	long := local + "@" + strings.Repeat("b", 254-len(local)-1-4) + ".com" // 254
	for _, tc := range []struct {
		in, want string
	}{
		{"ana@example.com", "ana@example.com"},
		{"  ana@example.com\t", "ana@example.com"},
		{long, long},
		{" " + long, ""},
		{long[:len(long)-4] + "x.com", ""}, // 255
		{"ana@example", ""},
		{"ana", ""},
		{"<ana@example.com>", ""},
		{"", ""},
	} {
		got, err := imbee.CheckMail(tc.in)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestCheckPhone: an international number (+ or 00), valid, at most 32
// bytes as sent, returned in E.164.
func TestCheckPhone(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"+34600111222", "+34600111222"},
		{"+34 600 11 12 22", "+34600111222"},
		{"0034600111222", "+34600111222"},
		{" +1 202 456 1111 ", "+12024561111"},
		{"+34600111222" + strings.Repeat(" ", 20), "+34600111222"}, // 32
		{"+34600111222" + strings.Repeat(" ", 21), ""},             // 33
		{"600111222", ""},
		{"+34 123", ""},
		{"+", ""},
		{"", ""},
	} {
		got, err := imbee.CheckPhone(tc.in)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestParseLinkToken: a link is named by a URL of it or its token alone,
// at most 2048 characters as sent; the token is its last path segment.
func TestParseLinkToken(t *testing.T) {
	for _, tc := range []struct {
		in, want, message string
	}{
		{"https://chat.example.com/l/imbl_abc", "imbl_abc", ""},
		{"  https://chat.example.com/l/imbl_abc?x=1#y ", "imbl_abc", ""},
		{"imbl_abc", "imbl_abc", ""},
		{"/l/imbl_abc", "imbl_abc", ""},
		{"https://x.example/l/" + strings.Repeat("t", 128), strings.Repeat("t", 128), ""},
		{"https://x.example/l/" + strings.Repeat("t", 129), "", "link must be a link returned by /token/new"},
		{"https://chat.example.com/l/", "", "link must be a link returned by /token/new"},
		{"imbl_\x00", "", "link must be a link returned by /token/new"},
		{"   ", "", "link can not be null or empty"},
		{strings.Repeat("é", 2048), "", "link must be a link returned by /token/new"}, // 2048 characters: a token too long
		{strings.Repeat("a", 2049), "", "link is longer than 2048 characters"},
	} {
		got, err := imbee.ParseLinkToken(tc.in)
		if tc.message == "" {
			if err != nil || got != tc.want {
				t.Errorf("%.40q: %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		wantErr(t, err, imbee.CodeParam, imbee.SubjectLink, tc.message)
	}
}

// TestCheckLinkToken: what names no link is not found, without a lookup.
func TestCheckLinkToken(t *testing.T) {
	if err := imbee.CheckLinkToken("imbl_" + strings.Repeat("a", 123)); err != nil {
		t.Errorf("a token of 128 bytes: %v", err)
	}
	for _, bad := range []string{"", strings.Repeat("a", 129), "a\x00", "\xff"} {
		wantErr(t, imbee.CheckLinkToken(bad), imbee.CodeNotFound, imbee.SubjectLink, "no such link")
	}
}

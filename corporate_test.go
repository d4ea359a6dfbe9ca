package imbee_test

import (
	"testing"

	"github.com/imbee/imbee"
)

// TestCorporateSettings: the settings given are checked, those not given
// are not; a new corporate is in UTC unless told otherwise.
func TestCorporateSettings(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name    string
		set     imbee.CorporateSettings
		subject string
		message string
	}{
		{name: "nothing", set: imbee.CorporateSettings{}},
		{name: "all", set: imbee.CorporateSettings{Name: s("Acme"), TimeZone: s("Pacific/Auckland"), Language: s("es"), SenderName: s(""),
			RateLimit: ptr(0.5), RateBurst: ptr(1)}},
		{name: "reset", set: imbee.CorporateSettings{ResetRateLimit: true}},
		{name: "unknown zone", set: imbee.CorporateSettings{TimeZone: s("Mars/Olympus")}, subject: imbee.SubjectTimeZone, message: `unknown time zone "Mars/Olympus"`},
		{name: "empty zone", set: imbee.CorporateSettings{TimeZone: s("")}, subject: imbee.SubjectTimeZone, message: `unknown time zone ""`},
		{name: "language", set: imbee.CorporateSettings{Language: s("fr")}, subject: imbee.SubjectLanguage, message: "language must be one of en, es"},
		{name: "blank name", set: imbee.CorporateSettings{Name: s(" ")}, subject: imbee.SubjectName, message: "name can not be empty"},
		{name: "rate 0", set: imbee.CorporateSettings{RateLimit: ptr(0.0)}, subject: imbee.SubjectRateLimit,
			message: "a rate limit is a number of requests per second above 0, with a burst of at least 1"},
		{name: "burst 0", set: imbee.CorporateSettings{RateBurst: ptr(0)}, subject: imbee.SubjectRateLimit,
			message: "a rate limit is a number of requests per second above 0, with a burst of at least 1"},
	} {
		err := tc.set.Check()
		if tc.subject == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		wantErr(t, err, imbee.CodeParam, tc.subject, tc.message)
	}

	c, err := imbee.NewCorporate("Acme", "")
	if err != nil || c.Name != "Acme" || c.TimeZone != "UTC" || c.Language != "en" {
		t.Errorf("new corporate = %+v, %v", c, err)
	}
	_, err = imbee.NewCorporate("Acme", "Mars/Olympus")
	wantErr(t, err, imbee.CodeParam, imbee.SubjectTimeZone, `unknown time zone "Mars/Olympus"`)
	_, err = imbee.NewCorporate("", "UTC")
	wantErr(t, err, imbee.CodeParam, imbee.SubjectName, "name can not be empty")
}

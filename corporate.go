package imbee

import (
	"slices"
	"strings"
	"time"
)

// NewCorporate is the rule for a new corporate's settings: a name, and a
// time zone (UTC when blank) as Check takes it. It returns the corporate
// to create, in the first of Languages.
func NewCorporate(name, timeZone string) (Corporate, error) {
	if timeZone == "" {
		timeZone = "UTC"
	}
	c := Corporate{Name: name, TimeZone: timeZone, Language: Languages[0]}
	return c, CorporateSettings{Name: &c.Name, TimeZone: &c.TimeZone}.Check()
}

// Check is the rule for a change of a corporate's settings: those given
// are a name that is not blank, a time zone this server knows (IANA),
// one of Languages, and a rate limit above 0 with a burst of at least 1.
func (set CorporateSettings) Check() error {
	if set.TimeZone != nil {
		if _, err := time.LoadLocation(*set.TimeZone); err != nil || *set.TimeZone == "" {
			return ParamError(SubjectTimeZone, "unknown time zone %q", *set.TimeZone)
		}
	}
	if set.Language != nil && !slices.Contains(Languages, *set.Language) {
		return ParamError(SubjectLanguage, "language must be one of %s", strings.Join(Languages, ", "))
	}
	if set.Name != nil && strings.TrimSpace(*set.Name) == "" {
		return ParamError(SubjectName, "name can not be empty")
	}
	if set.RateLimit != nil && !(*set.RateLimit > 0) || set.RateBurst != nil && *set.RateBurst < 1 {
		return ParamError(SubjectRateLimit, "a rate limit is a number of requests per second above 0, with a burst of at least 1")
	}
	return nil
}

package imbee

import (
	"strings"
	"unicode/utf8"
)

// MaxIDLength bounds integrator-given ids and free text (device fields, a
// group's name), in characters.
const MaxIDLength = 255

// CheckID is the rule for an integrator-given id (a user's, a bot's, a
// conversation's): present, not blank, and as CheckText bounds it. It is
// kept exactly as sent: "a" and " a" are different ids.
func CheckID(subject, v string) (string, error) {
	if strings.TrimSpace(v) == "" {
		return "", ParamError(subject, "{%s} can not be null or empty", subject)
	}
	return v, CheckText(subject, v)
}

// CheckText bounds free text: at most MaxIDLength characters of valid
// UTF-8 without NUL (which PostgreSQL cannot store in text).
func CheckText(subject, v string) error {
	switch {
	case utf8.RuneCountInString(v) > MaxIDLength:
		return ParamError(subject, "{%s} is longer than %d characters", subject, MaxIDLength)
	case !utf8.ValidString(v):
		return ParamError(subject, "{%s} is not valid UTF-8", subject)
	case strings.ContainsRune(v, 0):
		return ParamError(subject, "{%s} must not contain NUL characters", subject)
	}
	return nil
}

// NewUserSpec is the rule for one user to provision (user/new, each item
// of user/bulk, each row of an import): its id as CheckID takes it, and
// device fields as CheckText bounds them. The device is nil when no
// device field is set.
func NewUserSpec(uniqueID string, dev Device) (UserSpec, error) {
	if _, err := CheckID(SubjectUser, uniqueID); err != nil {
		return UserSpec{}, err
	}
	fields := []struct{ subject, value string }{
		{SubjectPlatform, dev.Platform}, {SubjectDeviceName, dev.DeviceName},
		{SubjectHardwareID, dev.HardwareID}, {SubjectOSVersion, dev.OSVersion},
	}
	spec := UserSpec{UniqueID: uniqueID}
	for _, f := range fields {
		if err := CheckText(f.subject, f.value); err != nil {
			return UserSpec{}, err
		}
		if f.value != "" {
			spec.Device = &dev
		}
	}
	return spec, nil
}

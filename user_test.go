package imbee_test

import (
	"strings"
	"testing"

	"github.com/imbee/imbee"
)

// TestCheckID: an id is present, not blank, at most 255 characters of
// valid UTF-8 without NUL, and kept exactly as sent.
func TestCheckID(t *testing.T) {
	for _, tc := range []struct {
		in, message string
	}{
		{"a", ""},
		{" a ", ""},
		{strings.Repeat("ñ", 255), ""},
		{"", "bot can not be null or empty"},
		{" \t", "bot can not be null or empty"},
		{strings.Repeat("ñ", 256), "bot is longer than 255 characters"},
		{"a\xff", "bot is not valid UTF-8"},
		{"a\x00", "bot must not contain NUL characters"},
	} {
		got, err := imbee.CheckID(imbee.SubjectBot, tc.in)
		if tc.message != "" {
			wantErr(t, err, imbee.CodeParam, imbee.SubjectBot, tc.message)
		} else if err != nil || got != tc.in {
			t.Errorf("%q: %q, %v", tc.in, got, err)
		}
	}
	// Free text may be empty.
	if err := imbee.CheckText(imbee.SubjectPlatform, ""); err != nil {
		t.Errorf("empty text: %v", err)
	}
}

// TestNewUserSpec: a user's id as CheckID takes it, its device fields as
// CheckText does, and a device only when a field is given.
func TestNewUserSpec(t *testing.T) {
	spec, err := imbee.NewUserSpec("ana", imbee.Device{})
	if err != nil || spec.UniqueID != "ana" || spec.Device != nil {
		t.Errorf("no device: %+v, %v", spec, err)
	}
	spec, err = imbee.NewUserSpec(" ana", imbee.Device{OSVersion: "18"})
	if err != nil || spec.UniqueID != " ana" || spec.Device == nil || spec.Device.OSVersion != "18" {
		t.Errorf("a device field: %+v, %v", spec, err)
	}
	long := strings.Repeat("x", 256)
	for _, tc := range []struct {
		id      string
		dev     imbee.Device
		subject string
		message string
	}{
		{"", imbee.Device{}, imbee.SubjectUser, "user can not be null or empty"},
		{"", imbee.Device{Platform: long}, imbee.SubjectUser, "user can not be null or empty"},
		{"a", imbee.Device{Platform: long}, imbee.SubjectPlatform, "platform is longer than 255 characters"},
		{"a", imbee.Device{DeviceName: long}, imbee.SubjectDeviceName, "device name is longer than 255 characters"},
		{"a", imbee.Device{HardwareID: "h\x00"}, imbee.SubjectHardwareID, "hardware id must not contain NUL characters"},
		{"a", imbee.Device{OSVersion: "\xff"}, imbee.SubjectOSVersion, "OS version is not valid UTF-8"},
	} {
		_, err := imbee.NewUserSpec(tc.id, tc.dev)
		wantErr(t, err, imbee.CodeParam, tc.subject, tc.message)
	}
}

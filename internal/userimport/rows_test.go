package userimport

import (
	"bufio"
	"strings"
	"testing"
)

func TestImportCSVHeader(t *testing.T) {
	cases := map[string]string{
		"uniqueIdSha,platform,phone,email\n": `unknown columns "phone", "email"`,
		"platform,deviceName\n":              "no uniqueIdSha column",
		"uniqueIdSha,uniqueidsha\n":          "names uniqueIdSha twice",
	}
	for header, want := range cases {
		_, err := newCSVRows(bufio.NewReader(strings.NewReader(header)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("header %q: %v, want an error with %q", header, err, want)
		}
	}
	// A spreadsheet's byte order mark and any case are fine.
	rows, err := newCSVRows(bufio.NewReader(strings.NewReader("\ufeffUniqueIdSha, OSVersion\nana,18\n")))
	if err != nil {
		t.Fatal(err)
	}
	r, err := rows.next()
	if err != nil || r.bad != "" || r.spec.UniqueID != "ana" || r.spec.Device == nil || r.spec.Device.OSVersion != "18" || r.line != 2 {
		t.Errorf("row %+v, %v", r, err)
	}
}

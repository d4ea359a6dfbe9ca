package api

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestFlexIntStringLength: an integer sent as a string is read up to
// maxFlexIntString characters, blanks included (the document's FlexInt
// maxLength), and is a bad value past it, however valid once trimmed.
func TestFlexIntStringLength(t *testing.T) {
	for _, tc := range []struct {
		s    string
		bad  bool
		want int64
	}{
		{"10", false, 10},
		{strings.Repeat(" ", maxFlexIntString-2) + "10", false, 10},
		{strings.Repeat(" ", maxFlexIntString-1) + "10", true, 0},
		{"-9223372036854775808", false, -9223372036854775808},
		{"9223372036854775808", true, 0},
	} {
		var f flexInt
		b, _ := json.Marshal(tc.s)
		if err := f.UnmarshalJSON(b); err != nil {
			t.Fatal(err)
		}
		if !f.set || f.bad != tc.bad || f.n != tc.want {
			t.Errorf("%q (%d characters): set %v bad %v n %d, want bad %v n %d", tc.s, len(tc.s), f.set, f.bad, f.n, tc.bad, tc.want)
		}
	}
}

package cli

import (
	"bytes"
	"testing"
)

// TestProgressLine: the backup's progress rewrites one line (a carriage
// return, no newline) with what is done, of what, and the share, never
// past 100 % (the estimate is the database file's size, which writes still
// in the WAL can outgrow).
func TestProgressLine(t *testing.T) {
	for _, c := range []struct {
		done, total int64
		want        string
	}{
		{5_000_000, 10_000_000, "\rbacking up: 5.0 MB of about 10.0 MB (50%)   "},
		{12_000_000, 10_000_000, "\rbacking up: 12.0 MB of about 10.0 MB (100%)   "},
		{0, 0, "\rbacking up: 0.0 MB of about 0.0 MB (100%)   "},
	} {
		var b bytes.Buffer
		progress(&b, "backing up", c.done, c.total)
		if b.String() != c.want {
			t.Errorf("progress(%d, %d) = %q, want %q", c.done, c.total, b.String(), c.want)
		}
	}
}

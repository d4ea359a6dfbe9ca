package userimport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestImportProgressPlain checks that, on a stderr that is not a terminal
// (a file, here), the import's progress is plain lines: every 5 s, or every
// 100,000 rows when faster, counting from where a resumed import starts.
func TestImportProgressPlain(t *testing.T) {
	cases := []struct {
		name      string
		done      int64         // rows done before this run
		tick      time.Duration // per 1,000 rows
		wantLines []string
	}{
		{"every 5 s", 0, 100 * time.Millisecond, []string{
			"imported 50000 rows of 250000 (20%), 10000 rows/s, ETA 20s",
			"imported 100000 rows of 250000 (40%), 10000 rows/s, ETA 15s",
			"imported 150000 rows of 250000 (60%), 10000 rows/s, ETA 10s",
			"imported 200000 rows of 250000 (80%), 10000 rows/s, ETA 5s",
			"imported 250000 rows of 250000 (100%), 10000 rows/s",
		}},
		{"every 100,000 rows", 0, 10 * time.Millisecond, []string{
			"imported 100000 rows of 250000 (40%), 100000 rows/s, ETA 2s",
			"imported 200000 rows of 250000 (80%), 100000 rows/s, ETA 1s",
		}},
		{"resumed", 100000, 50 * time.Millisecond, []string{
			"imported 200000 rows of 250000 (80%), 20000 rows/s, ETA 3s",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p, ok := newProgress(f, 250000, tc.done).(*lineProgress)
			if !ok {
				t.Fatal("not plain lines on a file")
			}
			now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			p.start, p.last, p.now = now, now, func() time.Time { return now }
			for range (250000 - tc.done) / 1000 {
				now = now.Add(tc.tick)
				p.add(1000)
			}
			p.finish()
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			if strings.ContainsAny(string(b), "\r\x1b") {
				t.Errorf("control characters in %q", b)
			}
			got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.wantLines, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.wantLines, "\n"))
			}
		})
	}
}

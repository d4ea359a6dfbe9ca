package e2e

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// importSummary is what imbee users import prints at the end.
type importSummary struct {
	read, created, existing, invalid int
	lines                            []string // "line N: reason"
}

func parseImportSummary(t testing.TB, out string) importSummary {
	t.Helper()
	var s importSummary
	num := func(label string) int {
		m := regexp.MustCompile(`(?m)^` + label + `:\s+(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no %q in the summary:\n%s", label, out)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	s.read, s.created, s.existing, s.invalid = num("read"), num("created"), num("existing"), num("invalid")
	for _, m := range regexp.MustCompile(`(?m)^  (line \d+: .*)$`).FindAllStringSubmatch(out, -1) {
		s.lines = append(s.lines, m[1])
	}
	return s
}

// readCredentials reads a credentials file: its rows after the header.
func readCredentials(t testing.TB, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(rows) == 0 || strings.Join(rows[0], ",") != "uniqueIdSha,virtualUser,pass,apikey,previously_registered" {
		t.Fatalf("%s: header %v", path, rows[:min(1, len(rows))])
	}
	return rows[1:]
}

// sameCredentials compares two credentials files but for previously_registered.
func sameCredentials(t testing.TB, a, b [][]string) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d rows and %d rows", len(a), len(b))
	}
	for i := range a {
		if !slices.Equal(a[i][:4], b[i][:4]) {
			t.Fatalf("row %d: %v and %v", i+1, a[i][:4], b[i][:4])
		}
	}
}

// checkCredentials asks user/new for a sample of the users: each must be
// known, with the credentials the file gives.
func checkCredentials(t testing.TB, s *server, c corporate, rows [][]string, sample int) {
	t.Helper()
	for i := 0; i < len(rows); i += max(1, len(rows)/sample) {
		r := rows[i]
		e := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": r[0]})
		expect(t, e, 200, 0)
		if e.Body["previously_registered"] != true || e.str("virtualUser") != r[1] || e.str("pass") != r[2] || e.str("apikey") != r[3] {
			t.Fatalf("user/new for %q: %s; the file says %v", r[0], e.Raw, r)
		}
	}
}

// writeImportCSV writes n rows, every 997th invalid in one of three ways,
// and returns the valid rows' ids and the invalid rows' lines.
func writeImportCSV(t testing.TB, path string, n int) (valid []string, invalid map[int]string) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("uniqueIdSha,platform,deviceName\n")
	invalid = map[int]string{}
	for i := range n {
		line := i + 2
		id := fmt.Sprintf("imp-%06d", i)
		switch {
		case i%997 == 5 && i%3 == 0:
			fmt.Fprintf(&b, "  ,ios,phone\n")
			invalid[line] = "uniqueIdSha can not be null or empty"
		case i%997 == 5 && i%3 == 1:
			fmt.Fprintf(&b, "%s,ios\n", id)
			invalid[line] = "the header has 3 fields, this row 2"
		case i%997 == 5:
			fmt.Fprintf(&b, "%s,ios,%s\n", id, strings.Repeat("é", 256))
			invalid[line] = "deviceName is longer than 255 characters"
		default:
			fmt.Fprintf(&b, "%s,ios,phone %d\n", id, i%5)
			valid = append(valid, id)
		}
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return valid, invalid
}

func TestUsersImport(t *testing.T) { testkit.ForEachBackend(t, testUsersImport) }

func testUsersImport(t *testing.T) {
	s := startServer(t) // the import writes while a server runs
	c := s.newCorporate(t, "Import")
	corp := strconv.FormatInt(c.id, 10)
	dir := t.TempDir()
	file := filepath.Join(dir, "users.csv")
	valid, invalid := writeImportCSV(t, file, 20000)
	out := file + ".credentials.csv"

	stdout, err := s.imbee("users", "import", "--corporate", corp, file)
	if err != nil {
		t.Fatal(err)
	}
	sum := parseImportSummary(t, stdout)
	if sum.read != 20000 || sum.created != len(valid) || sum.existing != 0 || sum.invalid != len(invalid) {
		t.Fatalf("summary %+v, want 20000 read, %d created, %d invalid:\n%s", sum, len(valid), len(invalid), stdout)
	}
	if len(sum.lines) != 10 {
		t.Errorf("the summary lists %d invalid rows, want the first 10", len(sum.lines))
	}
	for _, l := range sum.lines {
		var n int
		var reason string
		fmt.Sscanf(l, "line %d:", &n)
		reason = strings.TrimPrefix(l, fmt.Sprintf("line %d: ", n))
		if invalid[n] != reason {
			t.Errorf("summary: %q, want line %d: %q", l, n, invalid[n])
		}
	}
	info, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("the credentials file has mode %04o, want 0600", info.Mode().Perm())
	}
	if _, err := os.Stat(out + ".state"); !os.IsNotExist(err) {
		t.Errorf("a finished import left its checkpoint: %v", err)
	}
	first := readCredentials(t, out)
	if len(first) != len(valid) {
		t.Fatalf("%d credentials rows, want %d", len(first), len(valid))
	}
	for i, r := range first {
		if r[0] != valid[i] || r[4] != "false" || len(r[1]) != 40 || !strings.HasPrefix(r[2], "imbp_") || !strings.HasPrefix(r[3], "imbk_") {
			t.Fatalf("row %d: %v, want %s, new", i+1, r, valid[i])
		}
	}
	checkCredentials(t, s, c, first, 20)
	if n := countUsers(t, s.dbSpec, c.id); n != len(valid) {
		t.Errorf("%d users stored, want %d", n, len(valid))
	}

	// Again: nothing new, the same credentials.
	stdout, err = s.imbee("users", "import", "--corporate", corp, "--batch", "5000", file)
	if err != nil {
		t.Fatal(err)
	}
	if sum := parseImportSummary(t, stdout); sum.created != 0 || sum.existing != len(valid) || sum.invalid != len(invalid) {
		t.Fatalf("re-run: %+v", sum)
	}
	again := readCredentials(t, out)
	sameCredentials(t, first, again)
	for _, r := range again {
		if r[4] != "true" {
			t.Fatalf("re-run: %v is not previously_registered", r)
		}
	}
	if n := countUsers(t, s.dbSpec, c.id); n != len(valid) {
		t.Errorf("after a re-run: %d users stored, want %d", n, len(valid))
	}

	// An output file that others can read is refused.
	if err := os.Chmod(out, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.imbee("users", "import", "--corporate", corp, file); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("output of mode 0644: %v, want a refusal", err)
	}

	t.Run("jsonl", func(t *testing.T) {
		var b bytes.Buffer
		var ids []string
		for i := range 300 {
			id := fmt.Sprintf("jl-%d", i)
			if i < 10 {
				id = valid[i] // already imported from the CSV
			}
			j, _ := json.Marshal(map[string]string{"uniqueIdSha": id, "platform": "android", "osVersion": "15"})
			b.Write(j)
			b.WriteString("\n")
			ids = append(ids, id)
		}
		b.WriteString("\n{\"uniqueIdSha\": \"jl-x\", \"plattform\": \"ios\"}\n[\"jl-y\"]\n{\"uniqueIdSha\": 7}\n")
		jfile := filepath.Join(dir, "users.jsonl")
		jout := filepath.Join(dir, "jsonl-credentials.csv")
		if err := os.WriteFile(jfile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, err := s.imbee("users", "import", "--corporate", corp, "--out", jout, jfile)
		if err != nil {
			t.Fatal(err)
		}
		sum := parseImportSummary(t, stdout)
		want := importSummary{read: 303, created: 290, existing: 10, invalid: 3,
			lines: []string{`line 302: unknown field "plattform"`, "line 303: not a JSON object", "line 304: uniqueIdSha must be a string"}}
		if sum.read != want.read || sum.created != want.created || sum.existing != want.existing || sum.invalid != want.invalid || !slices.Equal(sum.lines, want.lines) {
			t.Fatalf("summary %+v, want %+v", sum, want)
		}
		rows := readCredentials(t, jout)
		if len(rows) != 300 {
			t.Fatalf("%d rows, want 300", len(rows))
		}
		for i, r := range rows {
			if r[0] != ids[i] || r[4] != strconv.FormatBool(i < 10) {
				t.Fatalf("row %d: %v", i+1, r)
			}
		}
		sameCredentials(t, rows[:10], first[:10])
		checkCredentials(t, s, c, rows, 10)
	})
}

func TestUsersImportResume(t *testing.T) { testkit.ForEachBackend(t, testUsersImportResume) }

// testUsersImportResume kills an import (SIGKILL) twice along the way and
// runs it again each time: in the end the credentials file has one row per
// valid input row, in order, each with the user's credentials, and the
// database has each user once.
func testUsersImportResume(t *testing.T) {
	s := startServer(t)
	c := s.newCorporate(t, "Resume")
	dir := t.TempDir()
	file := filepath.Join(dir, "users.csv")
	valid, _ := writeImportCSV(t, file, 40000)
	out := file + ".credentials.csv"
	args := []string{"users", "import", "--corporate", strconv.FormatInt(c.id, 10), "--batch", "500", file}

	// checkpoint is the last checkpoint and the input rows it says are done.
	checkpoint := func() ([]byte, int) {
		b, err := os.ReadFile(out + ".state")
		if err != nil {
			return nil, 0
		}
		var st struct {
			Rows int `json:"rows"`
		}
		json.Unmarshal(b, &st)
		return b, st.Rows
	}
	for _, at := range []int{6000, 20000} {
		cmd := exec.Command(imbeeBinary(t), append(args, s.flags()...)...)
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		deadline := time.Now().Add(2 * time.Minute)
		var earlier []byte
		var earlierRows int
		for {
			st, rows := checkpoint()
			if earlier == nil && rows >= at-3000 {
				earlier, earlierRows = st, rows
			}
			if earlier != nil && rows >= max(at, earlierRows+2500) {
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("the import ended before row %d: %v\n%s", at, err, logs.String())
			case <-time.After(time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no checkpoint at row %d within 2 minutes", at)
			}
		}
		cmd.Process.Kill()
		<-exited
		// As if it had been killed after committing and writing more
		// batches, but before their checkpoints: their users exist, and the
		// file has their rows, the last one cut short.
		if err := os.WriteFile(out+".state", earlier, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("imp-999999,0123")
		f.Close()
	}

	stdout, err := s.imbee(args...)
	if err != nil {
		t.Fatal(err)
	}
	sum := parseImportSummary(t, stdout)
	if sum.read != 40000 || sum.created+sum.existing != len(valid) || sum.existing < 2000 || !strings.Contains(stdout, "resumed after row") {
		t.Fatalf("resumed import: %+v, want 40000 rows read, %d users, 2,000 or more of them found existing:\n%s", sum, len(valid), stdout)
	}
	rows := readCredentials(t, out)
	if len(rows) != len(valid) {
		t.Fatalf("%d credentials rows, want %d", len(rows), len(valid))
	}
	for i, r := range rows {
		if r[0] != valid[i] {
			t.Fatalf("row %d is %q, want %q", i+1, r[0], valid[i])
		}
	}
	if n := countUsers(t, s.dbSpec, c.id); n != len(valid) {
		t.Errorf("%d users stored, want %d", n, len(valid))
	}
	// Every row's credentials are the user's: a full run finds them all.
	if _, err := s.imbee(args...); err != nil {
		t.Fatal(err)
	}
	sameCredentials(t, rows, readCredentials(t, out))
	checkCredentials(t, s, c, rows, 10)
}

package userimport

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imbee/imbee"
)

// fakeStore registers users in memory; the call numbered failAt (from 1)
// fails.
type fakeStore struct {
	users  map[string]imbee.User
	calls  int
	failAt int
}

func (f *fakeStore) RegisterUsers(_ context.Context, _ int64, specs []imbee.UserSpec) ([]imbee.Registration, error) {
	f.calls++
	if f.calls == f.failAt {
		return nil, errors.New("the database is down")
	}
	regs := make([]imbee.Registration, 0, len(specs))
	for _, s := range specs {
		u, existed := f.users[s.UniqueID]
		if !existed {
			u = imbee.User{UniqueID: s.UniqueID, IDSha: "vu-" + s.UniqueID, Pass: "pass-" + s.UniqueID, APIKey: "key-" + s.UniqueID}
			f.users[s.UniqueID] = u
		}
		regs = append(regs, imbee.Registration{User: u, Existed: existed})
	}
	return regs, nil
}

// TestImportResume: an import stopped by a failing batch keeps its
// checkpoint; run again it continues after the last batch committed and
// writes the credentials a run without the failure writes; run with
// another corporate it refuses the checkpoint.
func TestImportResume(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "users.csv")
	var b strings.Builder
	b.WriteString("uniqueIdSha,platform\n")
	for i := range 7 {
		if i == 4 {
			b.WriteString(" ,ios\n") // invalid: no id
			continue
		}
		fmt.Fprintf(&b, "user-%d,ios\n", i)
	}
	if err := os.WriteFile(in, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(store Registrar, corporate int64, out string) (Summary, error) {
		t.Helper()
		imp, err := Open(Config{Store: store, Corporate: corporate, File: in, Format: "auto", Out: out, Batch: 2})
		if err != nil {
			return Summary{}, err
		}
		defer imp.Close()
		err = imp.Run(context.Background())
		return imp.Summary(), err
	}

	clean := filepath.Join(dir, "clean.csv")
	if sum, err := run(&fakeStore{users: map[string]imbee.User{}}, 1, clean); err != nil || sum.Rows != 7 || sum.Created != 6 || sum.Invalid != 1 {
		t.Fatalf("clean run: %+v, %v", sum, err)
	}

	out := filepath.Join(dir, "out.csv")
	store := &fakeStore{users: map[string]imbee.User{}, failAt: 3}
	sum, err := run(store, 1, out)
	if err == nil || sum.Rows != 4 || sum.Created != 4 {
		t.Fatalf("failing run: %+v, %v; want 4 rows done and an error", sum, err)
	}
	if _, err := os.Stat(out + ".state"); err != nil {
		t.Fatalf("no checkpoint after the failure: %v", err)
	}
	if _, err := run(store, 2, out); err == nil || !strings.Contains(err.Error(), "is the checkpoint of an import into corporate 1 (csv)") {
		t.Fatalf("another corporate: %v", err)
	}
	sum, err = run(store, 1, out)
	if err != nil || sum.ResumedAt != 4 || sum.Rows != 7 || sum.Created != 6 || sum.Existing != 0 || sum.Invalid != 1 ||
		len(sum.Examples) != 1 || sum.Examples[0] != (InvalidRow{Line: 6, Reason: "uniqueIdSha can not be null or empty"}) {
		t.Fatalf("resumed run: %+v, %v", sum, err)
	}
	if _, err := os.Stat(out + ".state"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the checkpoint is left after a finished import: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("credentials of the resumed import:\n%s\nwant, as without the failure:\n%s", got, want)
	}
	if info, err := os.Stat(out); err != nil {
		t.Error(err)
	} else if info.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode %v, want 0600", info.Mode())
	}
}

package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

func specs(ids ...string) []imbee.UserSpec {
	out := make([]imbee.UserSpec, len(ids))
	for i, id := range ids {
		out[i] = imbee.UserSpec{UniqueID: id}
	}
	return out
}

// sameUser reports how got differs from want in what an integrator sees.
func sameUser(got, want imbee.User) error {
	if got.ID != want.ID || got.IDSha != want.IDSha || got.Pass != want.Pass || got.APIKey != want.APIKey || got.UniqueID != want.UniqueID {
		return fmt.Errorf("got %+v, want %+v", got, want)
	}
	return nil
}

func countRows(t testing.TB, s *Store, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.reads.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRegisterUsers(t *testing.T) { testkit.ForEachBackend(t, testRegisterUsers) }

func testRegisterUsers(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "Acme")
	other := mustCorporate(t, s, "Globex")

	ana, _, err := s.RegisterUser(ctx, c.ID, "ana", nil)
	if err != nil {
		t.Fatal(err)
	}
	mustUser(t, s, other.ID, "bea") // another corporate's bea is not Acme's

	phone := &imbee.Device{Platform: "ios", DeviceName: "phone", HardwareID: "hw1", OSVersion: "18"}
	tablet := &imbee.Device{Platform: "ios", DeviceName: "tablet"}
	batch := []imbee.UserSpec{
		{UniqueID: "bea", Device: phone},
		{UniqueID: "ana"},
		{UniqueID: "bea", Device: tablet}, // the same user again, another device
		{UniqueID: " bea"},                // another id: kept exactly as sent
		{UniqueID: "bea", Device: phone},  // a device already in this batch
	}
	regs, err := s.RegisterUsers(ctx, c.ID, batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(regs) != len(batch) {
		t.Fatalf("%d registrations for %d specs", len(regs), len(batch))
	}
	wantExisted := []bool{false, true, true, false, true}
	for i, r := range regs {
		if r.Existed != wantExisted[i] {
			t.Errorf("item %d (%q): existed %v, want %v", i, batch[i].UniqueID, r.Existed, wantExisted[i])
		}
		if r.User.UniqueID != batch[i].UniqueID || r.User.CorporateID != c.ID || len(r.User.IDSha) != 40 {
			t.Errorf("item %d: user %+v", i, r.User)
		}
	}
	if err := sameUser(regs[1].User, ana); err != nil {
		t.Errorf("existing ana: %v", err)
	}
	for _, i := range []int{2, 4} {
		if err := sameUser(regs[i].User, regs[0].User); err != nil {
			t.Errorf("bea again (item %d): %v", i, err)
		}
	}
	if regs[3].User.IDSha == regs[0].User.IDSha {
		t.Error(`" bea" and "bea" are one user`)
	}
	// RegisterUser gives the users made in bulk the same credentials.
	for _, i := range []int{0, 3} {
		u, existed, err := s.RegisterUser(ctx, c.ID, batch[i].UniqueID, nil)
		if err != nil || !existed {
			t.Fatalf("user/new repeat of %q: existed %v, err %v", batch[i].UniqueID, existed, err)
		}
		if err := sameUser(u, regs[i].User); err != nil {
			t.Errorf("user/new repeat of %q: %v", batch[i].UniqueID, err)
		}
	}
	if n := countRows(t, s, `SELECT count(*) FROM users WHERE corporate_id = ?`, c.ID); n != 3 {
		t.Errorf("Acme has %d users, want 3 (ana, bea, \" bea\")", n)
	}

	// Devices are recorded once each; a repeat updates last_seen.
	devices := func() map[string][2]int64 {
		rows, err := s.reads.QueryContext(ctx, `SELECT device_name, first_seen, last_seen FROM devices WHERE user_id = ?`, regs[0].User.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string][2]int64{}
		for rows.Next() {
			var name string
			var first, last int64
			if err := rows.Scan(&name, &first, &last); err != nil {
				t.Fatal(err)
			}
			out[name] = [2]int64{first, last}
		}
		return out
	}
	first := clock.Now().Unix()
	if got := devices(); len(got) != 2 || got["phone"] != [2]int64{first, first} || got["tablet"] != [2]int64{first, first} {
		t.Errorf("devices = %v, want phone and tablet seen at %d", got, first)
	}
	clock.Advance(2 * time.Hour)
	if _, err := s.RegisterUsers(ctx, c.ID, []imbee.UserSpec{{UniqueID: "bea", Device: phone}}); err != nil {
		t.Fatal(err)
	}
	later := clock.Now().Unix()
	if got := devices(); got["phone"] != [2]int64{first, later} || got["tablet"] != [2]int64{first, first} {
		t.Errorf("after a repeat: devices = %v, want phone last seen at %d", got, later)
	}

	// A batch larger than a statement's chunk, half of it known.
	var ids []string
	for i := range 700 {
		ids = append(ids, fmt.Sprintf("u%03d", i))
	}
	half, err := s.RegisterUsers(ctx, c.ID, specs(ids[:350]...))
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.RegisterUsers(ctx, c.ID, specs(ids...))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range all {
		if r.Existed != (i < 350) || r.User.UniqueID != ids[i] {
			t.Fatalf("item %d: %q existed %v", i, r.User.UniqueID, r.Existed)
		}
		if i < 350 {
			if err := sameUser(r.User, half[i].User); err != nil {
				t.Fatalf("item %d: %v", i, err)
			}
		}
	}
	if n := countRows(t, s, `SELECT count(*) FROM users WHERE corporate_id = ?`, c.ID); n != 703 {
		t.Errorf("Acme has %d users, want 703", n)
	}

	// A batch that fails stores nothing: here the corporate does not exist.
	if _, err := s.RegisterUsers(ctx, 1<<40, specs("x", "y")); imbee.ErrorCode(err) != imbee.CodeGeneric {
		t.Errorf("unknown corporate: %v, want an internal error", err)
	}
	if n := countRows(t, s, `SELECT count(*) FROM users WHERE unique_id IN ('x', 'y')`); n != 0 {
		t.Errorf("a failed batch stored %d users", n)
	}
	if s.dialect.name == "postgres" {
		// PostgreSQL refuses NUL in text: the devices fail after the users
		// were inserted, and the users go too.
		_, err := s.RegisterUsers(ctx, c.ID, []imbee.UserSpec{{UniqueID: "z1"}, {UniqueID: "z2", Device: &imbee.Device{Platform: "a\x00b"}}})
		if err == nil {
			t.Error("NUL in a device: no error")
		}
		if n := countRows(t, s, `SELECT count(*) FROM users WHERE unique_id IN ('z1', 'z2')`); n != 0 {
			t.Errorf("a batch whose devices failed stored %d users", n)
		}
	}
	if regs, err := s.RegisterUsers(ctx, c.ID, nil); err != nil || len(regs) != 0 {
		t.Errorf("empty batch: %v, %v", regs, err)
	}
}

func TestRegisterUsersConcurrent(t *testing.T) {
	testkit.ForEachBackend(t, testRegisterUsersConcurrent)
}

// testRegisterUsersConcurrent runs bulk calls over overlapping ids, in
// different orders, beside single user/new calls: each id is created once,
// and every call sees the same user with the same credentials.
func testRegisterUsersConcurrent(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, nil)
	c := mustCorporate(t, s, "Acme")
	const ids, bulks, singles = 300, 8, 60
	var mu sync.Mutex
	seen := map[string]imbee.User{}
	created := map[string]int{}
	note := func(r imbee.Registration) {
		mu.Lock()
		defer mu.Unlock()
		if !r.Existed {
			created[r.User.UniqueID]++
		}
		if prev, ok := seen[r.User.UniqueID]; ok {
			if err := sameUser(r.User, prev); err != nil {
				t.Errorf("%q: %v", r.User.UniqueID, err)
			}
		}
		seen[r.User.UniqueID] = r.User
	}
	var wg sync.WaitGroup
	for g := range bulks {
		wg.Go(func() {
			// Two thirds of the ids, shuffled, some twice.
			var batch []string
			for i := range ids {
				if i%3 != g%3 {
					batch = append(batch, fmt.Sprintf("id-%d", i))
				}
			}
			batch = append(batch, batch[:20]...)
			rand.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
			regs, err := s.RegisterUsers(ctx, c.ID, specs(batch...))
			if err != nil {
				t.Error(err)
				return
			}
			for _, r := range regs {
				note(r)
			}
		})
	}
	for i := range singles {
		wg.Go(func() {
			u, existed, err := s.RegisterUser(ctx, c.ID, fmt.Sprintf("id-%d", i*ids/singles), nil)
			if err != nil {
				t.Error(err)
				return
			}
			note(imbee.Registration{User: u, Existed: existed})
		})
	}
	wg.Wait()
	if len(seen) != ids {
		t.Errorf("%d ids seen, want %d", len(seen), ids)
	}
	for id := range seen {
		if created[id] != 1 {
			t.Errorf("%q created %d times", id, created[id])
		}
	}
	if n := countRows(t, s, `SELECT count(*) FROM users WHERE corporate_id = ?`, c.ID); n != ids {
		t.Errorf("%d users stored, want %d", n, ids)
	}
}

// BenchmarkRegisterUsers reports users/s for batches of 1,000 new users,
// with a device each, on an ever larger table.
func BenchmarkRegisterUsers(b *testing.B) {
	s, c, _, _ := benchStore(b)
	ctx := context.Background()
	dev := &imbee.Device{Platform: "ios", DeviceName: "bench", HardwareID: "hw", OSVersion: "18"}
	batch := make([]imbee.UserSpec, 1000)
	n := 0
	start := time.Now()
	for b.Loop() {
		for i := range batch {
			n++
			batch[i] = imbee.UserSpec{UniqueID: fmt.Sprintf("%040x", rand.Uint64()), Device: dev}
		}
		if _, err := s.RegisterUsers(ctx, c.ID, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "users/s")
}

package store

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"modernc.org/sqlite"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/pgtest"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/testkit"
)

func newKeyring(tb testing.TB) *secret.Keyring {
	tb.Helper()
	key := make([]byte, secret.KeySize)
	if _, err := rand.Read(key); err != nil {
		tb.Fatal(err)
	}
	k, err := secret.NewKeyring(key)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openAt opens the store at dsn with keys; t.Cleanup closes it.
func openAt(tb testing.TB, dsn string, keys *secret.Keyring, now func() time.Time) (*Store, error) {
	tb.Helper()
	s, err := Open(context.Background(), dsn, keys, Options{Now: now})
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return s, nil
}

// mustOpen opens a store on a new database with a new key.
func mustOpen(tb testing.TB, now func() time.Time) *Store {
	tb.Helper()
	s, err := openAt(tb, testkit.DSN(tb), newKeyring(tb), now)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	return s
}

func mustCorporate(tb testing.TB, s *Store, name string) imbee.Corporate {
	tb.Helper()
	c, _, err := s.CreateCorporate(context.Background(), name, "Europe/Madrid")
	if err != nil {
		tb.Fatalf("create corporate: %v", err)
	}
	return c
}

func mustBot(tb testing.TB, s *Store, corporateID int64, name string) imbee.Bot {
	tb.Helper()
	b, err := s.CreateBot(context.Background(), corporateID, name)
	if err != nil {
		tb.Fatalf("create bot: %v", err)
	}
	return b
}

func mustUser(tb testing.TB, s *Store, corporateID int64, uniqueID string) imbee.User {
	tb.Helper()
	u, _, err := s.RegisterUser(context.Background(), corporateID, uniqueID, nil)
	if err != nil {
		tb.Fatalf("register user: %v", err)
	}
	return u
}

func linkRequest(c imbee.Corporate, uniqueID string, bot imbee.Bot, maxUses int, expires time.Time, to ...imbee.Recipient) imbee.LinkRequest {
	return imbee.LinkRequest{
		CorporateID: c.ID,
		UniqueID:    uniqueID,
		BotIDSha:    bot.IDSha,
		Recipients:  to,
		MaxUses:     maxUses,
		DateLimit:   expires.Add(-time.Second).Format(time.DateOnly),
		ExpiresAt:   expires,
	}
}

func mustIssue(tb testing.TB, s *Store, req imbee.LinkRequest) imbee.Link {
	tb.Helper()
	l, err := s.IssueLink(context.Background(), req)
	if err != nil {
		tb.Fatalf("issue link: %v", err)
	}
	return l
}

func wantCode(tb testing.TB, err error, code imbee.Code, what string) {
	tb.Helper()
	if err == nil {
		tb.Errorf("%s: no error, want code %d", what, code)
		return
	}
	if got := imbee.ErrorCode(err); got != code {
		tb.Errorf("%s: error %v has code %d, want %d", what, err, got, code)
	}
}

// userExists reports whether the corporate has user uniqueID. It creates the
// user when it did not exist, so call it only after the checks it guards.
func userExists(tb testing.TB, s *Store, corporateID int64, uniqueID string) bool {
	tb.Helper()
	_, existed, err := s.RegisterUser(context.Background(), corporateID, uniqueID, nil)
	if err != nil {
		tb.Fatalf("register user %q: %v", uniqueID, err)
	}
	return existed
}

func TestParseDSN(t *testing.T) {
	cases := []struct{ dsn, backend, location string }{
		{"sqlite:/var/lib/imbee.db", "sqlite", "/var/lib/imbee.db"},
		{"sqlite:///var/lib/imbee.db", "sqlite", "/var/lib/imbee.db"},
		{"sqlite:rel.db", "sqlite", "rel.db"},
		{"postgres://u:p@h/db", "postgres", "postgres://u:p@h/db"},
	}
	for _, c := range cases {
		b, l, err := ParseDSN(c.dsn)
		if err != nil || b != c.backend || l != c.location {
			t.Errorf("ParseDSN(%q) = %q, %q, %v; want %q, %q", c.dsn, b, l, err, c.backend, c.location)
		}
	}
	_, _, err := ParseDSN("mysql://root:hunter2@db/imbee")
	if err == nil {
		t.Fatal("ParseDSN accepted mysql")
	}
	if got := err.Error(); strings.Contains(got, "hunter2") {
		t.Errorf("error shows the password: %s", got)
	}
}

func TestOpen(t *testing.T) { testkit.ForEachBackend(t, testOpen) }

func testOpen(t *testing.T) {
	ctx := context.Background()

	t.Run("RefusesDifferentKey", func(t *testing.T) {
		dsn := testkit.DSN(t)
		s, err := Open(ctx, dsn, newKeyring(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s2, err := Open(ctx, dsn, newKeyring(t), Options{})
		if err == nil {
			s2.Close()
			t.Fatal("Open with a different key succeeded")
		}
	})

	t.Run("SameKeyRederivesSecrets", func(t *testing.T) {
		dsn := testkit.DSN(t)
		keys := newKeyring(t)
		s, err := Open(ctx, dsn, keys, Options{})
		if err != nil {
			t.Fatal(err)
		}
		c, creds, err := s.CreateCorporate(ctx, "Acme", "")
		if err != nil {
			t.Fatal(err)
		}
		u1, _, err := s.RegisterUser(ctx, c.ID, "ana", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s2, err := openAt(t, dsn, keys, nil)
		if err != nil {
			t.Fatalf("reopen with the same key: %v", err)
		}
		u2, existed, err := s2.RegisterUser(ctx, c.ID, "ana", nil)
		if err != nil {
			t.Fatal(err)
		}
		if !existed {
			t.Error("user did not survive the reopen")
		}
		if u2.IDSha != u1.IDSha || u2.Pass != u1.Pass || u2.APIKey != u1.APIKey {
			t.Errorf("secrets changed across reopen:\n before %+v\n after  %+v", u1, u2)
		}
		if _, err := s2.Authenticate(ctx, creds.Auth, creds.CorporateToken); err != nil {
			t.Errorf("corporate credentials stopped working after reopen: %v", err)
		}
	})

	t.Run("RejectsBadOptions", func(t *testing.T) {
		if testkit.Postgres(t) {
			t.Skip("SQLite options")
		}
		path := filepath.Join(t.TempDir(), "imbee.db")
		if s, err := Open(ctx, "sqlite:"+path, newKeyring(t), Options{Synchronous: "off"}); err == nil {
			s.Close()
			t.Error("synchronous=off accepted")
		}
		if s, err := Open(ctx, "sqlite:", newKeyring(t), Options{}); err == nil {
			s.Close()
			t.Error("empty sqlite path accepted")
		}
	})
}

func TestCorporates(t *testing.T) { testkit.ForEachBackend(t, testCorporates) }

func testCorporates(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, nil)

	t.Run("AuthenticateChecksBothSecrets", func(t *testing.T) {
		c, creds, err := s.CreateCorporate(ctx, "Acme", "Europe/Madrid")
		if err != nil {
			t.Fatal(err)
		}
		_, other, err := s.CreateCorporate(ctx, "Other", "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Authenticate(ctx, creds.Auth, creds.CorporateToken)
		if err != nil || got.ID != c.ID || got.TimeZone != "Europe/Madrid" {
			t.Errorf("Authenticate = %+v, %v; want corporate %d", got, err, c.ID)
		}
		_, err = s.Authenticate(ctx, "imba_nope", creds.CorporateToken)
		wantCode(t, err, imbee.CodeAuth, "unknown auth")
		_, err = s.Authenticate(ctx, "", creds.CorporateToken)
		wantCode(t, err, imbee.CodeAuth, "missing auth")
		_, err = s.Authenticate(ctx, creds.Auth, other.CorporateToken)
		wantCode(t, err, imbee.CodeCorporateKey, "another corporate's token")
		_, err = s.Authenticate(ctx, creds.Auth, "")
		wantCode(t, err, imbee.CodeCorporateKey, "missing token")
	})

	t.Run("RotateReplacesCredentials", func(t *testing.T) {
		c, old, err := s.CreateCorporate(ctx, "Rot", "")
		if err != nil {
			t.Fatal(err)
		}
		creds, err := s.RotateCorporate(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if creds == old {
			t.Fatal("rotation returned the old credentials")
		}
		_, err = s.Authenticate(ctx, old.Auth, old.CorporateToken)
		wantCode(t, err, imbee.CodeAuth, "old credentials after rotation")
		if _, err := s.Authenticate(ctx, creds.Auth, creds.CorporateToken); err != nil {
			t.Errorf("new credentials refused: %v", err)
		}
		_, err = s.RotateCorporate(ctx, 1<<40)
		wantCode(t, err, imbee.CodeNotFound, "rotate unknown corporate")
	})

	t.Run("BotOfUnknownCorporate", func(t *testing.T) {
		_, err := s.CreateBot(ctx, 1<<40, "ghost")
		wantCode(t, err, imbee.CodeNotFound, "bot of unknown corporate")
	})
}

func TestRegisterUser(t *testing.T) { testkit.ForEachBackend(t, testRegisterUser) }

func testRegisterUser(t *testing.T) {
	ctx := context.Background()

	t.Run("OneUserUnderConcurrency", func(t *testing.T) {
		s := mustOpen(t, nil)
		c := mustCorporate(t, s, "Acme")
		const n = 50
		users := make([]imbee.User, n)
		existed := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				dev := &imbee.Device{Platform: "ios", DeviceName: "phone", HardwareID: fmt.Sprint(i % 3), OSVersion: "17"}
				users[i], existed[i], errs[i] = s.RegisterUser(ctx, c.ID, "same-person", dev)
			})
		}
		close(start)
		wg.Wait()
		created := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if !existed[i] {
				created++
			}
			u := users[i]
			if u.IDSha != users[0].IDSha || u.ID != users[0].ID || u.Pass != users[0].Pass || u.APIKey != users[0].APIKey {
				t.Errorf("call %d got a different user: %+v vs %+v", i, u, users[0])
			}
		}
		if created != 1 {
			t.Errorf("%d calls report creating the user, want exactly 1", created)
		}
		if users[0].Pass == "" || users[0].APIKey == "" || users[0].Pass == users[0].APIKey {
			t.Errorf("bad secrets: pass %q apikey %q", users[0].Pass, users[0].APIKey)
		}
	})

	t.Run("RepeatReturnsSameSecrets", func(t *testing.T) {
		s := mustOpen(t, nil)
		c, creds, err := s.CreateCorporate(ctx, "Acme", "")
		if err != nil {
			t.Fatal(err)
		}
		u1, existed, err := s.RegisterUser(ctx, c.ID, "ana", nil)
		if err != nil || existed {
			t.Fatalf("first call: existed %v, err %v", existed, err)
		}
		u2, existed, err := s.RegisterUser(ctx, c.ID, "ana", &imbee.Device{Platform: "android"})
		if err != nil || !existed {
			t.Fatalf("repeat: existed %v, err %v", existed, err)
		}
		if u1 != u2 {
			t.Errorf("repeat differs:\n first  %+v\n repeat %+v", u1, u2)
		}
		gotCorp, got, err := s.AuthenticateUser(ctx, creds.Auth, u1.APIKey)
		if err != nil || got.IDSha != u1.IDSha || got.UniqueID != "ana" || got.ID != u1.ID || gotCorp.ID != c.ID {
			t.Errorf("AuthenticateUser = %+v, %+v, %v; want ana of %d", gotCorp, got, err, c.ID)
		}
		_, _, err = s.AuthenticateUser(ctx, creds.Auth, u1.Pass)
		wantCode(t, err, imbee.CodeCorporateKey, "pass used as apikey")
		_, _, err = s.AuthenticateUser(ctx, creds.Auth, "")
		wantCode(t, err, imbee.CodeCorporateKey, "no apikey")
		_, _, err = s.AuthenticateUser(ctx, u1.APIKey, u1.APIKey)
		wantCode(t, err, imbee.CodeAuth, "apikey used as Authorization")
	})

	t.Run("CorporatesHaveSeparateUsers", func(t *testing.T) {
		s := mustOpen(t, nil)
		c1 := mustCorporate(t, s, "Acme")
		c2, creds2, err := s.CreateCorporate(ctx, "Globex", "")
		if err != nil {
			t.Fatal(err)
		}
		u1, e1, err1 := s.RegisterUser(ctx, c1.ID, "ana", nil)
		u2, e2, err2 := s.RegisterUser(ctx, c2.ID, "ana", nil)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if e1 || e2 {
			t.Errorf("existed = %v, %v; want both new", e1, e2)
		}
		if u1.ID == u2.ID || u1.IDSha == u2.IDSha || u1.Pass == u2.Pass || u1.APIKey == u2.APIKey {
			t.Errorf("corporates share a user:\n %+v\n %+v", u1, u2)
		}
		_, _, err = s.AuthenticateUser(ctx, creds2.Auth, u1.APIKey)
		wantCode(t, err, imbee.CodeCorporateKey, "apikey of another corporate's user")
	})
}

// TestGroupCommit checks that a request refused inside a shared batch rolls
// back alone.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	expires := func(s *testkit.Clock) time.Time { return s.Now().Add(24 * time.Hour) }
	mail := func(i int) imbee.Recipient {
		return imbee.Recipient{Channel: imbee.ChannelMail, Address: fmt.Sprintf("p%d@example.com", i)}
	}

	// kind of request i: valid, unknown bot (refused before any write), or
	// refused after it has written the user, the link and one delivery.
	const (
		valid = iota
		unknownBot
		failsAfterWrites
		zeroUses // refused by a CHECK after the user is written
	)
	kindOf := func(i int) int { return i % 4 }
	request := func(c imbee.Corporate, bot imbee.Bot, clock *testkit.Clock, i int) imbee.LinkRequest {
		req := linkRequest(c, fmt.Sprintf("vu-%d", i), bot, 3, expires(clock), mail(i))
		switch kindOf(i) {
		case unknownBot:
			req.BotIDSha = secret.NewID()
		case failsAfterWrites:
			req.Recipients = append(req.Recipients, imbee.Recipient{Channel: "fax", Address: "+34600000000"})
		case zeroUses:
			req.MaxUses = 0
		}
		return req
	}
	check := func(t *testing.T, s *Store, c imbee.Corporate, n int, links []imbee.Link, errs []error) {
		t.Helper()
		validCount := 0
		for i := range n {
			switch kindOf(i) {
			case valid:
				validCount++
				if errs[i] != nil {
					t.Errorf("valid request %d failed: %v", i, errs[i])
				} else if _, err := s.LinkByToken(ctx, links[i].Token); err != nil {
					t.Errorf("valid request %d: its link is missing: %v", i, err)
				}
			case unknownBot:
				wantCode(t, errs[i], imbee.CodeNotFound, fmt.Sprintf("request %d (unknown bot)", i))
			default:
				if errs[i] == nil {
					t.Errorf("request %d (refused by a constraint) succeeded", i)
				}
			}
		}
		ds, err := s.Deliveries(ctx, "", 10*n)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != validCount {
			t.Errorf("%d deliveries queued, want %d (one per valid request)", len(ds), validCount)
		}
		for _, d := range ds {
			var i int
			if _, err := fmt.Sscanf(d.Recipient.Address, "p%d@", &i); err != nil || kindOf(i) != valid {
				t.Errorf("delivery to %q belongs to a refused request", d.Recipient.Address)
			}
		}
		for i := range n {
			exists := userExists(t, s, c.ID, fmt.Sprintf("vu-%d", i))
			if want := kindOf(i) == valid; exists != want {
				t.Errorf("request %d (kind %d): user exists = %v, want %v", i, kindOf(i), exists, want)
			}
		}
	}

	t.Run("RefusedRequestsRollBackAloneInOneBatch", func(t *testing.T) {
		// Hold the writer busy so that every request below queues up and
		// they all share the next commit.
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		c := mustCorporate(t, s, "Acme")
		bot := mustBot(t, s, c.ID, "Helper")

		release, held := make(chan struct{}), make(chan struct{})
		holdDone := make(chan error, 1)
		go func() {
			holdDone <- s.inWrite(ctx, func(q querier) error {
				close(held)
				<-release
				return nil
			})
		}()
		<-held

		const n = 40 // well under maxBatch
		links := make([]imbee.Link, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { links[i], errs[i] = s.IssueLink(ctx, request(c, bot, clock, i)) })
		}
		deadline := time.Now().Add(5 * time.Second)
		for len(s.sqlite.w.reqs) < n {
			if time.Now().After(deadline) {
				close(release)
				t.Fatalf("only %d of %d requests queued", len(s.sqlite.w.reqs), n)
			}
			time.Sleep(time.Millisecond)
		}
		close(release)
		if err := <-holdDone; err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		check(t, s, c, n, links, errs)
	})

	t.Run("RefusedRequestsRollBackAloneUnderConcurrency", func(t *testing.T) {
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		c := mustCorporate(t, s, "Acme")
		bot := mustBot(t, s, c.ID, "Helper")
		const n = 80
		links := make([]imbee.Link, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				links[i], errs[i] = s.IssueLink(ctx, request(c, bot, clock, i))
			})
		}
		close(start)
		wg.Wait()
		check(t, s, c, n, links, errs)
	})

	t.Run("CancelledCallerDoesNotBreakBatch", func(t *testing.T) {
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		c := mustCorporate(t, s, "Acme")

		release, held := make(chan struct{}), make(chan struct{})
		go s.inWrite(ctx, func(q querier) error { close(held); <-release; return nil })
		<-held
		cctx, cancel := context.WithCancel(ctx)
		var cancelledErr, okErr error
		var wg sync.WaitGroup
		wg.Go(func() { _, _, cancelledErr = s.RegisterUser(cctx, c.ID, "left", nil) })
		for len(s.sqlite.w.reqs) < 1 {
			time.Sleep(time.Millisecond)
		}
		wg.Go(func() { _, _, okErr = s.RegisterUser(ctx, c.ID, "stayed", nil) })
		for len(s.sqlite.w.reqs) < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		close(release)
		wg.Wait()
		if !errors.Is(cancelledErr, context.Canceled) {
			t.Errorf("cancelled caller: err %v, want context.Canceled", cancelledErr)
		}
		if okErr != nil {
			t.Errorf("caller in the same batch failed: %v", okErr)
		}
		if userExists(t, s, c.ID, "left") {
			t.Error("the cancelled request was written")
		}
		if !userExists(t, s, c.ID, "stayed") {
			t.Error("the other request was not written")
		}
	})

	t.Run("CancelledStatementDoesNotFailOthers", func(t *testing.T) {
		// A caller whose context ends while its own statement runs (a client
		// that disconnects) must not take the requests it shares a commit
		// with down with it: they were not refused.
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		c := mustCorporate(t, s, "Acme")

		release, held := make(chan struct{}), make(chan struct{})
		go s.inWrite(ctx, func(q querier) error { close(held); <-release; return nil })
		<-held

		var before, after, cancelled error
		var wg sync.WaitGroup
		wg.Go(func() { _, _, before = s.RegisterUser(ctx, c.ID, "before", nil) })
		for len(s.sqlite.w.reqs) < 1 {
			time.Sleep(time.Millisecond)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		armCancelDuringStatement(cancel)
		wg.Go(func() {
			cancelled = s.inWrite(cctx, func(q querier) error {
				// Like every store method, the statement runs under the
				// caller's context; test_cancel_here cancels it mid-statement.
				_, err := q.ExecContext(cctx, `
					INSERT INTO meta (name, value)
					SELECT 'row' || n, test_cancel_here(n)
					FROM (WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3000) SELECT n FROM c)`)
				return err
			})
		})
		for len(s.sqlite.w.reqs) < 2 {
			time.Sleep(time.Millisecond)
		}
		wg.Go(func() { _, _, after = s.RegisterUser(ctx, c.ID, "after", nil) })
		for len(s.sqlite.w.reqs) < 3 {
			time.Sleep(time.Millisecond)
		}
		close(release)
		wg.Wait()
		t.Logf("cancelled request: %v", cancelled)
		if before != nil || after != nil {
			t.Errorf("requests sharing the batch failed: before %v, after %v", before, after)
		}
		if !userExists(t, s, c.ID, "before") || !userExists(t, s, c.ID, "after") {
			t.Error("requests sharing the batch were not written")
		}
	})

	t.Run("ClosedStoreRefusesWrites", func(t *testing.T) {
		s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "imbee.db"), newKeyring(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		c := mustCorporate(t, s, "Acme")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		const n = 16
		done := make(chan error, n)
		for i := range n {
			go func() { _, _, err := s.RegisterUser(ctx, c.ID, fmt.Sprint("late-", i), nil); done <- err }()
		}
		timeout := time.After(3 * time.Second)
		for i := range n {
			select {
			case err := <-done:
				if err == nil {
					t.Error("write after Close succeeded")
				}
			case <-timeout:
				t.Fatalf("%d of %d writes after Close hang", n-i, n)
			}
		}
	})
}

// cancelHook is what the SQL function test_cancel_here does on its next call.
var cancelHook struct {
	mu     sync.Mutex
	cancel context.CancelFunc
}

func init() {
	// Registered before any test opens a connection: the driver adds
	// functions to connections it opens afterwards.
	sqlite.MustRegisterScalarFunction("test_cancel_here", 1, func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		cancelHook.mu.Lock()
		c := cancelHook.cancel
		cancelHook.cancel = nil
		cancelHook.mu.Unlock()
		if c != nil {
			c()
			time.Sleep(50 * time.Millisecond) // let the driver deliver its interrupt
		}
		return args[0], nil
	})
}

// armCancelDuringStatement makes the next call of test_cancel_here call
// cancel while its statement is running.
func armCancelDuringStatement(cancel context.CancelFunc) {
	cancelHook.mu.Lock()
	cancelHook.cancel = cancel
	cancelHook.mu.Unlock()
}

func TestCreateConversation(t *testing.T) { testkit.ForEachBackend(t, testCreateConversation) }

func testCreateConversation(t *testing.T) {
	ctx := context.Background()

	t.Run("OneChatPerPairUnderConcurrency", func(t *testing.T) {
		s := mustOpen(t, nil)
		c := mustCorporate(t, s, "Acme")
		a := mustUser(t, s, c.ID, "ana")
		b := mustUser(t, s, c.ID, "bea")
		const n = 50
		convs := make([]imbee.Conversation, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			creator, contact := a.IDSha, b.IDSha
			if i%2 == 1 {
				creator, contact = contact, creator
			}
			wg.Go(func() {
				<-start
				convs[i], errs[i] = s.CreateConversation(ctx, imbee.ChatRequest{
					CorporateID: c.ID, Creator: creator, Type: imbee.ConversationChat, Contacts: []string{contact},
				})
			})
		}
		close(start)
		wg.Wait()
		fresh := 0
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if convs[i].PublicID != convs[0].PublicID || convs[i].ID != convs[0].ID {
				t.Errorf("call %d got conversation %s, call 0 got %s", i, convs[i].PublicID, convs[0].PublicID)
			}
			if convs[i].Type != imbee.ConversationChat {
				t.Errorf("call %d: type %q", i, convs[i].Type)
			}
			if len(convs[i].Members) != 2 {
				t.Errorf("call %d: %d members, want 2", i, len(convs[i].Members))
			}
			if !convs[i].Existing {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("%d calls report creating the chat, want exactly 1", fresh)
		}
		// Whoever won is the creator, first and admin, for everyone.
		var winner imbee.Conversation
		for _, cv := range convs {
			if !cv.Existing {
				winner = cv
			}
		}
		for i, cv := range convs {
			if len(cv.Members) == 2 && len(winner.Members) == 2 &&
				(cv.Members[0].IDSha != winner.Members[0].IDSha || !cv.Members[0].IsAdmin || cv.Members[1].IsAdmin) {
				t.Errorf("call %d: members %+v, want creator %s first and sole admin", i, cv.Members, winner.Members[0].IDSha)
			}
		}
	})

	t.Run("ChatWithBot", func(t *testing.T) {
		s := mustOpen(t, nil)
		c := mustCorporate(t, s, "Acme")
		u := mustUser(t, s, c.ID, "ana")
		bot := mustBot(t, s, c.ID, "Helper")
		cv, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: u.IDSha, Type: imbee.ConversationChat, Contacts: []string{bot.IDSha}})
		if err != nil {
			t.Fatal(err)
		}
		if len(cv.Members) != 2 || cv.Members[0].IDSha != u.IDSha || !cv.Members[1].IsBot || cv.Members[1].Name != "Helper" {
			t.Errorf("members = %+v", cv.Members)
		}
	})

	t.Run("GroupsAreNotMerged", func(t *testing.T) {
		s := mustOpen(t, nil)
		c := mustCorporate(t, s, "Acme")
		a := mustUser(t, s, c.ID, "ana")
		b := mustUser(t, s, c.ID, "bea")
		req := imbee.ChatRequest{CorporateID: c.ID, Creator: a.IDSha, Type: imbee.ConversationGroup, Name: "g", Contacts: []string{b.IDSha}}
		g1, err1 := s.CreateConversation(ctx, req)
		g2, err2 := s.CreateConversation(ctx, req)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if g1.PublicID == g2.PublicID || g1.Existing || g2.Existing {
			t.Errorf("two group creations: %s (existing %v), %s (existing %v); want two new groups", g1.PublicID, g1.Existing, g2.PublicID, g2.Existing)
		}
		chat, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: a.IDSha, Type: imbee.ConversationChat, Contacts: []string{b.IDSha}})
		if err != nil || chat.Existing {
			t.Errorf("1:1 chat after groups: existing %v, err %v; want a new chat", chat.Existing, err)
		}
	})

	t.Run("UnknownContact", func(t *testing.T) {
		s := mustOpen(t, nil)
		c := mustCorporate(t, s, "Acme")
		a := mustUser(t, s, c.ID, "ana")
		_, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: a.IDSha, Type: imbee.ConversationChat, Contacts: []string{secret.NewID()}})
		wantCode(t, err, imbee.CodeNotFound, "unknown contact")
	})

	t.Run("ContactOfAnotherCorporate", func(t *testing.T) {
		s := mustOpen(t, nil)
		c1 := mustCorporate(t, s, "Acme")
		c2 := mustCorporate(t, s, "Globex")
		a := mustUser(t, s, c1.ID, "ana")
		b := mustUser(t, s, c2.ID, "bea")
		bot := mustBot(t, s, c2.ID, "Theirs")
		for _, contact := range []string{b.IDSha, bot.IDSha} {
			for _, typ := range []imbee.ConversationType{imbee.ConversationChat, imbee.ConversationGroup} {
				_, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c1.ID, Creator: a.IDSha, Type: typ, Contacts: []string{contact}})
				wantCode(t, err, imbee.CodeNotFound, fmt.Sprintf("%s with a contact of another corporate", typ))
			}
		}
	})
}

func TestLinks(t *testing.T) { testkit.ForEachBackend(t, testLinks) }

func testLinks(t *testing.T) {
	ctx := context.Background()
	type env struct {
		s     *Store
		clock *testkit.Clock
		c     imbee.Corporate
		bot   imbee.Bot
	}
	setup := func(t *testing.T) env {
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		c := mustCorporate(t, s, "Acme")
		return env{s: s, clock: clock, c: c, bot: mustBot(t, s, c.ID, "Helper")}
	}

	t.Run("RepeatWhileActiveReturnsSameLink", func(t *testing.T) {
		e := setup(t)
		exp := e.clock.Now().Add(48 * time.Hour)
		first := mustIssue(t, e.s, linkRequest(e.c, "ana", e.bot, 3, exp))
		if first.Existing || first.Token == "" || first.MaxUses != 3 {
			t.Fatalf("first link = %+v", first)
		}
		repeat := mustIssue(t, e.s, linkRequest(e.c, "ana", e.bot, 9, exp.Add(72*time.Hour)))
		if !repeat.Existing {
			t.Error("repeat: Existing = false")
		}
		if repeat.Token != first.Token || repeat.ID != first.ID {
			t.Errorf("repeat token %q, first %q", repeat.Token, first.Token)
		}
		if repeat.MaxUses != 3 || repeat.DateLimit != first.DateLimit || !repeat.ExpiresAt.Equal(first.ExpiresAt) {
			t.Errorf("repeat limits = %d %s %v; want the first's %d %s %v",
				repeat.MaxUses, repeat.DateLimit, repeat.ExpiresAt, first.MaxUses, first.DateLimit, first.ExpiresAt)
		}
		if repeat.UserIDSha != first.UserIDSha || repeat.BotIDSha != e.bot.IDSha {
			t.Errorf("repeat parties %s/%s, first %s/%s", repeat.UserIDSha, repeat.BotIDSha, first.UserIDSha, first.BotIDSha)
		}
		u := mustUser(t, e.s, e.c.ID, "ana")
		if first.UserIDSha != u.IDSha {
			t.Errorf("link's user %s, RegisterUser says %s", first.UserIDSha, u.IDSha)
		}
		// Another bot gets its own link.
		bot2 := mustBot(t, e.s, e.c.ID, "Other")
		other := mustIssue(t, e.s, linkRequest(e.c, "ana", bot2, 3, exp))
		if other.Existing || other.Token == first.Token {
			t.Errorf("link to another bot reused the first: %+v", other)
		}
	})

	t.Run("UsedUpLinkIsReplaced", func(t *testing.T) {
		e := setup(t)
		exp := e.clock.Now().Add(48 * time.Hour)
		first := mustIssue(t, e.s, linkRequest(e.c, "ana", e.bot, 2, exp))
		for i := range 2 {
			if _, st, err := e.s.SpendLink(ctx, first.Token, testAttempt); err != nil || st != imbee.LinkActive {
				t.Fatalf("spend %d: state %v, err %v", i, st, err)
			}
		}
		if _, st, err := e.s.SpendLink(ctx, first.Token, testAttempt); err != nil || st != imbee.LinkUsedUp {
			t.Fatalf("spend beyond MaxUses: state %v, err %v; want LinkUsedUp", st, err)
		}
		p, err := e.s.LinkByToken(ctx, first.Token)
		if err != nil || p.Link.Uses != 2 || p.Link.State(e.clock.Now()) != imbee.LinkUsedUp {
			t.Errorf("LinkByToken after use: %+v, %v", p.Link, err)
		}
		second := mustIssue(t, e.s, linkRequest(e.c, "ana", e.bot, 4, exp))
		if second.Existing || second.Token == first.Token || second.MaxUses != 4 {
			t.Errorf("new link after use: %+v; want a new token with MaxUses 4", second)
		}
		if _, st, err := e.s.SpendLink(ctx, second.Token, testAttempt); err != nil || st != imbee.LinkActive {
			t.Errorf("spend new link: state %v, err %v", st, err)
		}
	})

	t.Run("ExpiredAfterDateLimit", func(t *testing.T) {
		e := setup(t)
		l := mustIssue(t, e.s, linkRequest(e.c, "ana", e.bot, 3, e.clock.Now().Add(time.Hour)))
		sess, st, err := e.s.SpendLink(ctx, l.Token, testAttempt)
		if err != nil || st != imbee.LinkActive {
			t.Fatalf("spend before expiry: %v, %v", st, err)
		}
		e.clock.Advance(time.Hour) // exactly ExpiresAt: the first instant it no longer works
		if _, st, err := e.s.SpendLink(ctx, l.Token, testAttempt); err != nil || st != imbee.LinkExpired {
			t.Errorf("spend at ExpiresAt: state %v, err %v; want LinkExpired", st, err)
		}
		e.clock.Advance(time.Minute)
		if _, st, err := e.s.SpendLink(ctx, l.Token, testAttempt); err != nil || st != imbee.LinkExpired {
			t.Errorf("spend after ExpiresAt: state %v, err %v; want LinkExpired", st, err)
		}
		p, err := e.s.LinkByToken(ctx, l.Token)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Link.State(e.clock.Now()); got != imbee.LinkExpired {
			t.Errorf("LinkByToken state = %v, want LinkExpired", got)
		}
		if p.Link.Uses != 1 {
			t.Errorf("uses = %d, want 1", p.Link.Uses)
		}
		_, err = e.s.SessionByToken(ctx, sess.Token)
		wantCode(t, err, imbee.CodeNotFound, "session after the link expired")
		// An expired link is replaced on the next issue.
		l2 := mustIssue(t, e.s, linkRequest(e.c, "ana", e.bot, 3, e.clock.Now().Add(time.Hour)))
		if l2.Existing || l2.Token == l.Token {
			t.Errorf("issue after expiry returned the old link: %+v", l2)
		}
	})

	t.Run("RevokeEndsLinkAndSessions", func(t *testing.T) {
		e := setup(t)
		l := mustIssue(t, e.s, linkRequest(e.c, "ana", e.bot, 3, e.clock.Now().Add(time.Hour)))
		sess, st, err := e.s.SpendLink(ctx, l.Token, testAttempt)
		if err != nil || st != imbee.LinkActive {
			t.Fatalf("spend: %v, %v", st, err)
		}
		if got, err := e.s.SessionByToken(ctx, sess.Token); err != nil || got.ConversationID != sess.ConversationID {
			t.Fatalf("session before revoke: %+v, %v", got, err)
		}
		if got, err := e.s.RevokeLink(ctx, l.CorporateID, " "+l.Token+"\n"); err != nil || got.Existing || !got.Revoked || got.ID != l.ID {
			t.Fatalf("revoke: %+v, %v", got, err)
		}
		if got, err := e.s.RevokeLink(ctx, 0, l.Token); err != nil || !got.Existing {
			t.Errorf("second revoke: %+v, %v; want it reported as revoked before", got, err)
		}
		if _, st, err := e.s.SpendLink(ctx, l.Token, testAttempt); err != nil || st != imbee.LinkRevoked {
			t.Errorf("spend after revoke: state %v, err %v; want LinkRevoked", st, err)
		}
		_, err = e.s.SessionByToken(ctx, sess.Token)
		wantCode(t, err, imbee.CodeNotFound, "session of a revoked link")
		if p, err := e.s.LinkByToken(ctx, l.Token); err != nil || !p.Link.Revoked {
			t.Errorf("LinkByToken after revoke: %+v, %v", p.Link, err)
		}
		_, err = e.s.RevokeLink(ctx, 0, "imbl_unknown")
		wantCode(t, err, imbee.CodeNotFound, "revoke unknown token")
	})

	t.Run("UnknownToken", func(t *testing.T) {
		e := setup(t)
		_, _, err := e.s.SpendLink(ctx, "imbl_nope", testAttempt)
		wantCode(t, err, imbee.CodeNotFound, "spend unknown token")
		_, err = e.s.LinkByToken(ctx, "imbl_nope")
		wantCode(t, err, imbee.CodeNotFound, "LinkByToken unknown token")
		_, err = e.s.SessionByToken(ctx, "imbs_nope")
		wantCode(t, err, imbee.CodeNotFound, "unknown session")
	})

	t.Run("UnknownBot", func(t *testing.T) {
		e := setup(t)
		other := mustCorporate(t, e.s, "Globex")
		theirBot := mustBot(t, e.s, other.ID, "Theirs")
		for _, b := range []imbee.Bot{{IDSha: secret.NewID()}, theirBot} {
			_, err := e.s.IssueLink(ctx, linkRequest(e.c, "ana", b, 1, e.clock.Now().Add(time.Hour)))
			wantCode(t, err, imbee.CodeNotFound, "link to a bot not of this corporate")
			var ie *imbee.Error
			if errors.As(err, &ie) && ie.Field != imbee.SubjectBot {
				t.Errorf("subject = %q, want %q", ie.Field, imbee.SubjectBot)
			}
		}
	})

	t.Run("ConcurrentSpendsTakeExactlyMaxUses", func(t *testing.T) {
		e := setup(t)
		const maxUses, n = 5, 50
		l := mustIssue(t, e.s, linkRequest(e.c, "ana", e.bot, maxUses, e.clock.Now().Add(time.Hour)))
		sessions := make([]imbee.Session, n)
		states := make([]imbee.LinkState, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				sessions[i], states[i], errs[i] = e.s.SpendLink(ctx, l.Token, testAttempt)
			})
		}
		close(start)
		wg.Wait()

		u := mustUser(t, e.s, e.c.ID, "ana")
		conv, err := e.s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: e.c.ID, Creator: u.IDSha, Type: imbee.ConversationChat, Contacts: []string{e.bot.IDSha}})
		if err != nil {
			t.Fatal(err)
		}
		if !conv.Existing {
			t.Error("the link's chat was not created by spending it")
		}
		active, usedUp := 0, 0
		tokens := map[string]bool{}
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("spend %d: %v", i, errs[i])
			}
			switch states[i] {
			case imbee.LinkActive:
				active++
				sess := sessions[i]
				if sess.Token == "" || tokens[sess.Token] {
					t.Errorf("spend %d: empty or repeated session token", i)
				}
				tokens[sess.Token] = true
				if sess.ConversationID != conv.PublicID {
					t.Errorf("spend %d: session conversation %s, CreateConversation says %s", i, sess.ConversationID, conv.PublicID)
				}
				if sess.UserIDSha != u.IDSha || sess.BotName != "Helper" || sess.CorporateName != "Acme" || sess.CorporateID != e.c.ID {
					t.Errorf("spend %d: session %+v", i, sess)
				}
				if !sess.ExpiresAt.Equal(l.ExpiresAt) {
					t.Errorf("spend %d: session expires %v, link %v", i, sess.ExpiresAt, l.ExpiresAt)
				}
				if got, err := e.s.SessionByToken(ctx, sess.Token); err != nil || got.ConversationID != conv.PublicID || got.UserIDSha != u.IDSha {
					t.Errorf("spend %d: SessionByToken = %+v, %v", i, got, err)
				}
			case imbee.LinkUsedUp:
				usedUp++
				if sessions[i] != (imbee.Session{}) {
					t.Errorf("spend %d: used-up spend returned a session %+v", i, sessions[i])
				}
			default:
				t.Errorf("spend %d: state %v", i, states[i])
			}
		}
		if active != maxUses || usedUp != n-maxUses {
			t.Errorf("%d active, %d used up; want %d and %d", active, usedUp, maxUses, n-maxUses)
		}
		p, err := e.s.LinkByToken(ctx, l.Token)
		if err != nil || p.Link.Uses != maxUses {
			t.Errorf("uses = %d (err %v), want %d", p.Link.Uses, err, maxUses)
		}
	})
}

func TestDeliveries(t *testing.T) { testkit.ForEachBackend(t, testDeliveries) }

func testDeliveries(t *testing.T) {
	ctx := context.Background()
	const lease = 2 * time.Minute
	setup := func(t *testing.T) (*Store, *testkit.Clock, imbee.Link) {
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		c := mustCorporate(t, s, "Acme")
		bot := mustBot(t, s, c.ID, "Helper")
		l := mustIssue(t, s, linkRequest(c, "ana", bot, 3, clock.Now().Add(24*time.Hour),
			imbee.Recipient{Channel: imbee.ChannelMail, Address: "ana@example.com"},
			imbee.Recipient{Channel: imbee.ChannelSMS, Address: "+34600111222"}))
		return s, clock, l
	}
	claim := func(t *testing.T, s *Store) []imbee.Delivery {
		t.Helper()
		ds, err := s.ClaimDeliveries(ctx, 10, 10, lease)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}

	t.Run("IssueQueuesOnePerRecipient", func(t *testing.T) {
		s, _, l := setup(t)
		ds := claim(t, s)
		if len(ds) != 2 {
			t.Fatalf("claimed %d deliveries, want 2", len(ds))
		}
		got := map[imbee.Channel]string{}
		for _, d := range ds {
			got[d.Recipient.Channel] = d.Recipient.Address
			if d.LinkToken != l.Token {
				t.Errorf("delivery %d: LinkToken %q, link token %q", d.ID, d.LinkToken, l.Token)
			}
			if d.LinkID != l.ID || d.Attempts != 1 || d.Status != imbee.DeliverySending {
				t.Errorf("delivery %+v: want link %d, attempt 1, sending", d, l.ID)
			}
			if d.BotName != "Helper" || d.CorporateName != "Acme" {
				t.Errorf("delivery %d: bot %q corporate %q", d.ID, d.BotName, d.CorporateName)
			}
		}
		if got[imbee.ChannelMail] != "ana@example.com" || got[imbee.ChannelSMS] != "+34600111222" {
			t.Errorf("recipients = %v", got)
		}
		if again := claim(t, s); len(again) != 0 {
			t.Errorf("immediate second claim returned %d leased deliveries", len(again))
		}
	})

	t.Run("RepeatIssueQueuesAgain", func(t *testing.T) {
		s, clock, l := setup(t)
		c, err := s.ListCorporates(ctx)
		if err != nil || len(c) != 1 {
			t.Fatal(c, err)
		}
		bots, err := s.ListBots(ctx, c[0].ID)
		if err != nil || len(bots) != 1 {
			t.Fatal(bots, err)
		}
		again := mustIssue(t, s, linkRequest(c[0], "ana", bots[0], 3, clock.Now().Add(24*time.Hour),
			imbee.Recipient{Channel: imbee.ChannelMail, Address: "ana@example.com"}))
		if !again.Existing || again.Token != l.Token {
			t.Fatalf("repeat = %+v, want the existing link", again)
		}
		ds, err := s.Deliveries(ctx, imbee.DeliveryQueued, 10)
		if err != nil || len(ds) != 3 {
			t.Fatalf("queued = %d, %v; want 3", len(ds), err)
		}
		for _, d := range ds {
			if d.LinkID != l.ID {
				t.Errorf("delivery %d is of link %d, want %d", d.ID, d.LinkID, l.ID)
			}
		}
	})

	t.Run("ClaimRespectsLimit", func(t *testing.T) {
		s, _, _ := setup(t)
		ds, err := s.ClaimDeliveries(ctx, 1, 1, lease)
		if err != nil || len(ds) != 1 {
			t.Fatalf("claim(1) = %d, %v", len(ds), err)
		}
		rest := claim(t, s)
		if len(rest) != 1 || rest[0].ID == ds[0].ID {
			t.Errorf("second claim = %+v, want the other delivery", rest)
		}
	})

	t.Run("FailedIsRetriedAndSentIsDone", func(t *testing.T) {
		s, clock, _ := setup(t)
		ds := claim(t, s)
		if len(ds) != 2 {
			t.Fatalf("claimed %d, want 2", len(ds))
		}
		failed, sent := ds[0], ds[1]
		if err := s.MarkFailed(ctx, failed.CorporateID, failed.ID, "smtp 451", "could not send", clock.Now().Add(-time.Second), false); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkSent(ctx, []imbee.SentJob{{CorporateID: sent.CorporateID, ID: sent.ID, ProviderID: "prov-1"}}); err != nil {
			t.Fatal(err)
		}
		again := claim(t, s)
		if len(again) != 1 || again[0].ID != failed.ID {
			t.Fatalf("claim after MarkFailed = %+v, want only delivery %d", again, failed.ID)
		}
		if again[0].Attempts != 2 || again[0].LinkToken != failed.LinkToken {
			t.Errorf("retried delivery: attempts %d token ok %v; want attempts 2", again[0].Attempts, again[0].LinkToken == failed.LinkToken)
		}
		clock.Advance(lease + time.Hour)
		for _, d := range claim(t, s) {
			if d.ID == sent.ID {
				t.Error("a sent delivery was claimed again")
			}
		}
		list, err := s.Deliveries(ctx, imbee.DeliverySent, 10)
		if err != nil || len(list) != 1 || list[0].ID != sent.ID || list[0].ProviderID != "prov-1" {
			t.Errorf("sent deliveries = %+v, %v", list, err)
		}
	})

	t.Run("FailedNotDueUntilRetryAt", func(t *testing.T) {
		s, clock, _ := setup(t)
		ds := claim(t, s)
		for _, d := range ds {
			if err := s.MarkFailed(ctx, d.CorporateID, d.ID, "busy", "could not send", clock.Now().Add(10*time.Minute), false); err != nil {
				t.Fatal(err)
			}
		}
		if got := claim(t, s); len(got) != 0 {
			t.Errorf("claimed %d deliveries before their retry time", len(got))
		}
		clock.Advance(10 * time.Minute)
		if got := claim(t, s); len(got) != 2 {
			t.Errorf("claimed %d deliveries at their retry time, want 2", len(got))
		}
	})

	t.Run("DeadIsNeverClaimed", func(t *testing.T) {
		s, clock, _ := setup(t)
		ds := claim(t, s)
		if err := s.MarkFailed(ctx, ds[0].CorporateID, ds[0].ID, "no such user", "could not send", clock.Now(), true); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkSent(ctx, []imbee.SentJob{{CorporateID: ds[1].CorporateID, ID: ds[1].ID, ProviderID: "p"}}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(24 * time.Hour)
		if got := claim(t, s); len(got) != 0 {
			t.Errorf("claimed %+v after dead/sent", got)
		}
		dead, err := s.Deliveries(ctx, imbee.DeliveryDead, 10)
		if err != nil || len(dead) != 1 || dead[0].LastError != "no such user" {
			t.Errorf("dead deliveries = %+v, %v", dead, err)
		}
	})

	t.Run("ExpiredLeaseIsReclaimed", func(t *testing.T) {
		s, clock, _ := setup(t)
		first := claim(t, s)
		if len(first) != 2 {
			t.Fatalf("claimed %d, want 2", len(first))
		}
		// The worker "crashes": nothing is marked.
		clock.Advance(lease - time.Second)
		if got := claim(t, s); len(got) != 0 {
			t.Errorf("claimed %d deliveries before the lease ran out", len(got))
		}
		clock.Advance(time.Second)
		got := claim(t, s)
		if len(got) != 2 {
			t.Fatalf("claimed %d after the lease ran out, want 2", len(got))
		}
		for _, d := range got {
			if d.Attempts != 2 {
				t.Errorf("reclaimed delivery %d: attempts %d, want 2", d.ID, d.Attempts)
			}
		}
	})
}

func TestBootstrap(t *testing.T) { testkit.ForEachBackend(t, testBootstrap) }

func testBootstrap(t *testing.T) {
	ctx := context.Background()

	t.Run("CreatesOnce", func(t *testing.T) {
		s := mustOpen(t, nil)
		d, ok, err := s.Bootstrap(ctx, "Demo", "Demo bot")
		if err != nil || !ok {
			t.Fatalf("first bootstrap: ok %v, err %v", ok, err)
		}
		if d.Corporate.ID == 0 || d.Bot.ID == 0 || d.Bot.CorporateID != d.Corporate.ID {
			t.Errorf("demo = %+v", d)
		}
		c, err := s.Authenticate(ctx, d.Credentials.Auth, d.Credentials.CorporateToken)
		if err != nil || c.ID != d.Corporate.ID {
			t.Errorf("demo credentials: %+v, %v", c, err)
		}
		bots, err := s.ListBots(ctx, d.Corporate.ID)
		if err != nil || len(bots) != 1 || bots[0].IDSha != d.Bot.IDSha || bots[0].Name != "Demo bot" {
			t.Errorf("bots = %+v, %v", bots, err)
		}
		if _, ok, err := s.Bootstrap(ctx, "Demo", "Demo bot"); err != nil || ok {
			t.Errorf("second bootstrap: ok %v, err %v; want false", ok, err)
		}
		if n, err := s.CountCorporates(ctx); err != nil || n != 1 {
			t.Errorf("corporates = %d, %v; want 1", n, err)
		}
	})

	t.Run("NothingWhenCorporateExists", func(t *testing.T) {
		s := mustOpen(t, nil)
		mustCorporate(t, s, "Acme")
		if _, ok, err := s.Bootstrap(ctx, "Demo", "Demo bot"); err != nil || ok {
			t.Errorf("bootstrap: ok %v, err %v; want false", ok, err)
		}
		cs, err := s.ListCorporates(ctx)
		if err != nil || len(cs) != 1 || cs[0].Name != "Acme" {
			t.Errorf("corporates = %+v, %v", cs, err)
		}
	})

	t.Run("OnceUnderConcurrency", func(t *testing.T) {
		s := mustOpen(t, nil)
		const n = 10
		var oks atomic.Int32
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				_, ok, err := s.Bootstrap(ctx, "Demo", "Demo bot")
				if err != nil {
					t.Error(err)
				}
				if ok {
					oks.Add(1)
				}
			})
		}
		wg.Wait()
		if oks.Load() != 1 {
			t.Errorf("%d bootstraps succeeded, want 1", oks.Load())
		}
		if n, err := s.CountCorporates(ctx); err != nil || n != 1 {
			t.Errorf("corporates = %d, %v; want 1", n, err)
		}
	})
}

// testAttempt is the audit-trail entry tests spend links with.
var testAttempt = imbee.LinkAttempt{Method: "POST", Address: "192.0.2.1", Agent: "browser"}

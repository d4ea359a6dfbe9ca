package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

func TestSendLimitSpellings(t *testing.T) { testkit.ForEachBackend(t, testSendLimitSpellings) }

// testSendLimitSpellings: the per-recipient limit counts one mailbox
// however its address is spelled, and each delivery still goes to the
// spelling it was asked for.
func testSendLimitSpellings(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "Acme")
	bot := mustBot(t, s, c.ID, "Helper")
	req := func(user, addr string) imbee.LinkRequest {
		r := linkRequest(c, user, bot, 3, clock.Now().Add(24*time.Hour), imbee.Recipient{Channel: imbee.ChannelMail, Address: addr})
		r.SendsPerHour = 2
		return r
	}
	mustIssue(t, s, req("u1", "ana@example.com"))
	mustIssue(t, s, req("u2", "Ana@Example.com"))
	_, err := s.IssueLink(ctx, req("u3", "ANA@EXAMPLE.COM"))
	wantCode(t, err, imbee.CodeRateLimited, "a third spelling of one address within an hour")

	ds, err := s.Deliveries(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, d := range ds {
		got[d.Recipient.Address] = true
	}
	if len(ds) != 2 || !got["ana@example.com"] || !got["Ana@Example.com"] {
		t.Errorf("deliveries %v: want one to each spelling sent", got)
	}
}

func TestRecipientKeyMigration(t *testing.T) { testkit.ForEachBackend(t, testRecipientKeyMigration) }

// testRecipientKeyMigration: migration 00008 gives the last hour's
// deliveries their normalised key, so a limit counts what was sent just
// before the upgrade whatever its spelling.
func testRecipientKeyMigration(t *testing.T) {
	ctx := context.Background()
	dsn, keys := testkit.DSN(t), newKeyring(t)
	s, err := Open(ctx, dsn, keys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := mustCorporate(t, s, "Acme")
	bot := mustBot(t, s, c.ID, "Helper")
	req := func(user, addr string) imbee.LinkRequest {
		return linkRequest(c, user, bot, 3, time.Now().Add(24*time.Hour), imbee.Recipient{Channel: imbee.ChannelMail, Address: addr})
	}
	mustIssue(t, s, req("u1", "Ana@Example.com"))
	mustIssue(t, s, req("u2", "ANA@EXAMPLE.COM"))
	mustIssue(t, s, req("u3", "Old@Example.com"))
	if err := s.inWrite(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx, `UPDATE deliveries SET created_at = created_at - 7200 WHERE recipient = 'Old@Example.com'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Back to the schema before 00008, then up again as an upgrade would.
	migrateDownTo(t, dsn, 7)
	s, err = openAt(t, dsn, keys, time.Now)
	if err != nil {
		t.Fatal(err)
	}

	keysOf := map[string]sql.NullString{}
	rows, err := s.reads.QueryContext(ctx, `SELECT recipient, recipient_key FROM deliveries`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		var k sql.NullString
		if err := rows.Scan(&r, &k); err != nil {
			t.Fatal(err)
		}
		keysOf[r] = k
	}
	rows.Close()
	if keysOf["Ana@Example.com"].String != "ana@example.com" || keysOf["ANA@EXAMPLE.COM"].String != "ana@example.com" || keysOf["Old@Example.com"].Valid {
		t.Errorf("keys after the migration: %v, want the last hour's lowercased, older ones none", keysOf)
	}
	r := req("u4", "ana@example.com")
	r.SendsPerHour = 2
	_, err = s.IssueLink(ctx, r)
	wantCode(t, err, imbee.CodeRateLimited, "a third link to a mailbox sent two before the upgrade")
}

func TestSendLimitConcurrent(t *testing.T) { testkit.ForEachBackend(t, testSendLimitConcurrent) }

// testSendLimitConcurrent: 20 links to one mailbox at once, through two
// stores on one database where the backend allows it (two servers), with a
// limit of 10 an hour: exactly 10 are queued and 10 refused, code 8.
func testSendLimitConcurrent(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	dsn, keys := testkit.DSN(t), newKeyring(t)
	a, err := openAt(t, dsn, keys, clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	stores := []*Store{a}
	if a.dialect.concurrentWriters {
		b, err := openAt(t, dsn, keys, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, b)
	}
	c := mustCorporate(t, a, "Acme")
	bot := mustBot(t, a, c.ID, "Helper")
	var wg sync.WaitGroup
	errs := make([]error, 20)
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			r := linkRequest(c, fmt.Sprintf("u%d", i), bot, 3, clock.Now().Add(24*time.Hour),
				imbee.Recipient{Channel: imbee.ChannelMail, Address: []string{"ana@example.com", "Ana@Example.com"}[i%2]})
			r.SendsPerHour = 10
			<-start
			_, errs[i] = stores[i%len(stores)].IssueLink(ctx, r)
		})
	}
	close(start)
	wg.Wait()
	refused := 0
	for _, err := range errs {
		switch {
		case err == nil:
		case imbee.ErrorCode(err) == imbee.CodeRateLimited:
			refused++
		default:
			t.Fatal(err)
		}
	}
	var queued int
	if err := a.reads.QueryRowContext(ctx, `SELECT count(*) FROM deliveries WHERE corporate_id = ?`, c.ID).Scan(&queued); err != nil {
		t.Fatal(err)
	}
	if queued != 10 || refused != 10 {
		t.Errorf("%d deliveries queued and %d links refused, want 10 and 10", queued, refused)
	}
}

// migrateDownTo runs the migrations of the closed database at dsn down to
// version, with the database's foreign keys enforced.
func migrateDownTo(t *testing.T, dsn string, version int64) {
	t.Helper()
	backend, loc, _ := ParseDSN(dsn)
	d, driver, conn := sqliteDialect, SQLiteDriver, SQLiteDSN(loc, "busy_timeout=10000", "foreign_keys=1")
	if backend == "postgres" {
		d, driver, conn = postgresDialect, "pgx", loc
	}
	db, err := sql.Open(driver, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // a migration's pragmas hold for its connection only
	p, err := d.migrations(db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.DownTo(context.Background(), version); err != nil {
		t.Fatalf("down to %05d: %v", version, err)
	}
}

package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

func TestStats(t *testing.T) { testkit.ForEachBackend(t, testStats) }

// testStats: the queue counts follow deliveries and webhook events through
// their states, and the oldest age is that of the oldest row still waiting
// (dead and sent rows do not wait).
func testStats(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock()
	s := mustOpen(t, clock.Now)
	c := mustCorporate(t, s, "Acme")
	bot := mustBot(t, s, c.ID, "Helper")
	mail := func(a string) imbee.Recipient { return imbee.Recipient{Channel: imbee.ChannelMail, Address: a} }
	sms := func(a string) imbee.Recipient { return imbee.Recipient{Channel: imbee.ChannelSMS, Address: a} }
	expires := clock.Now().Add(24 * time.Hour)

	if q, err := s.Queues(ctx); err != nil || len(q.Deliveries) != 0 || len(q.Webhooks) != 0 || q.OldestDelivery != 0 || q.OldestWebhook != 0 {
		t.Fatalf("queues of an empty database: %+v, %v", q, err)
	}

	mustIssue(t, s, linkRequest(c, "ana", bot, 3, expires, mail("ana@example.com"), sms("+34600111001")))
	clock.Advance(time.Minute)
	mustIssue(t, s, linkRequest(c, "bea", bot, 3, expires, mail("bea@example.com")))
	mustIssue(t, s, linkRequest(c, "cai", bot, 3, expires, mail("cai@example.com")))
	clock.Advance(time.Minute)
	claimed, err := s.ClaimDeliveries(ctx, 10, 10, time.Hour)
	if err != nil || len(claimed) != 4 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	for _, d := range claimed {
		switch d.Recipient.Address {
		case "ana@example.com":
			err = s.MarkSent(ctx, []imbee.SentJob{{CorporateID: d.CorporateID, ID: d.ID, ProviderID: "<1@mail>"}})
		case "+34600111001":
			err = s.MarkFailed(ctx, d.CorporateID, d.ID, "refused", "could not send", clock.Now(), true)
		case "bea@example.com":
			err = s.MarkFailed(ctx, d.CorporateID, d.ID, "timeout", "could not send", clock.Now().Add(time.Hour), false)
		}
		if err != nil {
			t.Fatal(err)
		}
	} // cai@ stays sending
	mustIssue(t, s, linkRequest(c, "dan", bot, 3, expires, sms("+34600111002")))

	// Webhook events, written as the message path would.
	now := unix(clock.Now())
	for i, e := range []struct {
		status  string
		created int64
	}{{"queued", now - 100}, {"sending", now - 10}, {"sent", now - 7200}, {"sent", now - 60}, {"dead", now - 3600}} {
		if err := s.inWrite(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, `
				INSERT INTO webhook_events (corporate_id, bot_id, event_id, payload, status, next_attempt_at, created_at, updated_at)
				VALUES (?, ?, ?, '{}', ?, ?, ?, ?)`, c.ID, bot.ID, fmt.Sprint("evt_", i), e.status, now, e.created, now)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(3 * time.Minute)

	q, err := s.Queues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[imbee.QueueKey]int64{
		{Channel: imbee.ChannelMail, Status: imbee.DeliveryFailed}:  1,
		{Channel: imbee.ChannelMail, Status: imbee.DeliverySending}: 1,
		{Channel: imbee.ChannelSMS, Status: imbee.DeliveryDead}:     1,
		{Channel: imbee.ChannelSMS, Status: imbee.DeliveryQueued}:   1,
	}
	if !maps.Equal(q.Deliveries, want) {
		t.Errorf("deliveries = %v, want %v", q.Deliveries, want)
	}
	// bea@ and cai@, waiting since the second minute, are the oldest.
	if q.OldestDelivery != 240 {
		t.Errorf("oldest delivery age = %d s, want 240", q.OldestDelivery)
	}
	wantHooks := map[imbee.DeliveryStatus]int64{imbee.DeliveryQueued: 1, imbee.DeliverySending: 1, imbee.DeliveryDead: 1}
	if !maps.Equal(q.Webhooks, wantHooks) {
		t.Errorf("webhook events = %v, want %v", q.Webhooks, wantHooks)
	}
	if q.OldestWebhook != 280 {
		t.Errorf("oldest webhook age = %d s, want 280 (the queued one, not the dead or sent)", q.OldestWebhook)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Queues(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("queues with a cancelled context: %v, want context.Canceled", err)
	}
}

// TestQueuesReadNoHistory: the scrape's statements search the status
// indexes for the unsent states; they never scan the table or a whole
// index, whose size is the history's.
func TestQueuesReadNoHistory(t *testing.T) {
	s := mustOpen(t, nil)
	for _, q := range []string{queueDeliveries, queueWebhooks} {
		rows, err := s.db.Query(`EXPLAIN QUERY PLAN ` + q)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		joined := strings.Join(plan, "; ")
		if strings.Contains(joined, "SCAN ") || !strings.Contains(joined, "SEARCH ") {
			t.Errorf("%s\nplan: %s, want an index search only", q, joined)
		}
	}
}

func TestPools(t *testing.T) { testkit.ForEachBackend(t, testPools) }

func testPools(t *testing.T) {
	s := mustOpen(t, nil)
	want := []string{"read", "write"}
	if testkit.Postgres(t) {
		want = []string{"postgres"}
	}
	pools := s.Pools()
	if len(pools) != len(want) {
		t.Fatalf("pools %v, want %v", pools, want)
	}
	for _, name := range want {
		if pools[name] == nil {
			t.Fatalf("pool %q missing: %v", name, pools)
		}
	}
	// The writer holds its one connection for good: only its size is seen.
	if w := pools["write"]; w != nil && w.Stats().MaxOpenConnections != 1 {
		t.Errorf("write pool of %d connections, want the writer's 1", w.Stats().MaxOpenConnections)
	}
	read := pools["read"]
	if read == nil {
		read = pools["postgres"]
	}
	if err := read.Ping(); err != nil {
		t.Errorf("read pool: %v", err)
	}
}

func TestReady(t *testing.T) { testkit.ForEachBackend(t, testReady) }

// testReady: a store is ready at the embedded schema version, and not when
// the database is behind it (an old backup restored) or ahead of it (a
// newer imbee migrated it), nor once closed; each refusal says why.
func testReady(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, testkit.DSN(t), newKeyring(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ready(ctx); err != nil {
		t.Fatalf("ready on a migrated database: %v", err)
	}
	target, err := s.dialect.latestMigration()
	if err != nil || target < 4 {
		t.Fatalf("latest embedded migration = %d, %v", target, err)
	}
	exec := func(query string, args ...any) {
		t.Helper()
		if err := s.inWrite(ctx, func(q querier) error {
			_, err := q.ExecContext(ctx, query, args...)
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	wantRefusal := func(want string) {
		t.Helper()
		err := s.Ready(ctx)
		var e *imbee.Error
		if !errors.As(err, &e) || e.Code != imbee.CodeGeneric || e.Message != want {
			t.Errorf("ready = %v, want code 1 %q", err, want)
		}
	}

	exec(`DELETE FROM goose_db_version WHERE version_id = ?`, target)
	// The version before (numbers reserved for work not merged leave gaps).
	var prev int64
	if err := s.reads.QueryRowContext(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&prev); err != nil {
		t.Fatal(err)
	}
	wantRefusal(fmt.Sprintf("database schema at version %d, this server needs %d: run imbee migrate", prev, target))

	exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)`, target, true)
	if err := s.Ready(ctx); err != nil {
		t.Errorf("ready once the version is back: %v", err)
	}

	exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, ?)`, target+1, true)
	wantRefusal(fmt.Sprintf("database schema at version %d, newer than this server knows (%d): upgrade imbee", target+1, target))

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wantRefusal("database unreachable")
}

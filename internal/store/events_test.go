package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

// TestEventFeed: two servers on one PostgreSQL database. What one commits
// reaches the other's feed once, with its message, however the writes
// commit against the order of their ids: an event whose transaction took
// its id first and commits last is read when it commits, not skipped; one
// rolled back is given up once no transaction can bring it. A server reads
// none of its own events, and a feed that has not read for long says it
// may have missed some.
func TestEventFeed(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		dsn, keys, clock := testkit.DSN(t), newKeyring(t), testkit.NewClock()
		a, err := openAt(t, dsn, keys, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		b, err := openAt(t, dsn, keys, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		c := mustCorporate(t, a, "Acme")
		ana, bea := mustUser(t, a, c.ID, "ana"), mustUser(t, a, c.ID, "bea")
		conv, err := a.CreateConversation(ctx, imbee.ChatRequest{CorporateID: c.ID, Creator: ana.IDSha, Type: imbee.ConversationChat, Contacts: []string{bea.IDSha}})
		if err != nil {
			t.Fatal(err)
		}
		feed, err := b.FollowEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		own, err := a.FollowEvents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		read := func(f *EventFeed) string {
			t.Helper()
			es, more, err := f.Next(ctx)
			if err != nil || more {
				t.Fatalf("next: %v, more %v", err, more)
			}
			var out []string
			for _, e := range es {
				s := fmt.Sprintf("%s %s %d", e.Type, e.Member, e.Seq)
				if e.Message != nil {
					s += " " + e.Message.Text
				}
				out = append(out, s)
			}
			return strings.Join(out, ", ")
		}
		// held takes an event's id in a transaction left open.
		held := func(member string) func(commit bool) {
			t.Helper()
			tx, err := a.db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			q := &pgTxn{rebinder: rebinder{tx}}
			// Its write first, as every write that tells of itself.
			if _, err := q.ExecContext(ctx, `UPDATE conversation_members SET read_seq = read_seq WHERE idsha = ?`, ana.IDSha); err != nil {
				t.Fatal(err)
			}
			if err := a.notify(ctx, q, imbee.Event{Type: "read", CorporateID: c.ID, ConversationID: conv.PublicID, Member: member, Seq: 1}); err != nil {
				t.Fatal(err)
			}
			return func(commit bool) {
				if commit {
					err = tx.Commit()
				} else {
					err = tx.Rollback()
				}
				if err != nil {
					t.Fatal(err)
				}
			}
		}

		end := held("late")
		if _, _, err := a.SendMessage(ctx, imbee.MessageRequest{CorporateID: c.ID, ConversationID: conv.PublicID, Sender: ana.IDSha, Text: "hello"}); err != nil {
			t.Fatal(err)
		}
		if got, want := read(feed), "message  1 hello"; got != want {
			t.Fatalf("after the send: %q, want %q", got, want)
		}
		if got := read(own); got != "" {
			t.Errorf("a server read its own events: %q", got)
		}
		if got := read(feed); got != "" {
			t.Fatalf("before the earlier id committed: %q", got)
		}
		end(true)
		if got, want := read(feed), "read late 1"; got != want {
			t.Fatalf("after the earlier id committed: %q, want %q", got, want)
		}
		if got := read(feed); got != "" {
			t.Fatalf("read again: %q", got)
		}

		held("never")(false)
		if _, err := a.MarkRead(ctx, c.ID, conv.PublicID, bea.IDSha, 1); err != nil {
			t.Fatal(err)
		}
		if got, want := read(feed), "read "+bea.IDSha+" 1"; got != want {
			t.Fatalf("after a rollback: %q, want %q", got, want)
		}
		if got := read(feed); got != "" || len(feed.gaps) != 0 {
			t.Fatalf("the rolled back id: read %q, gaps %v; want it given up", got, feed.gaps)
		}

		clock.Advance(keepEvents)
		if got, want := read(feed), "missed  0"; got != want {
			t.Errorf("after not reading for %v: %q, want %q", keepEvents, got, want)
		}
	})
}

// TestPurgeEvents: the purge deletes the events older than keepEvents, in
// pages, and no others.
func TestPurgeEvents(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		clock := testkit.NewClock()
		s := mustOpen(t, clock.Now)
		insert := func(n int) {
			t.Helper()
			if _, err := s.db.ExecContext(ctx, `
				INSERT INTO events (corporate_id, origin, type, conversation, seq, member, horizon, created_at)
				SELECT 1, 'x', 'read', 'c', g, 'm', 1, $1 FROM generate_series(1, $2) g`, unix(clock.Now()), n); err != nil {
				t.Fatal(err)
			}
		}
		insert(purgePage + 10)
		clock.Advance(keepEvents + time.Second)
		insert(3)
		n, err := s.PurgeEvents(ctx)
		if err != nil || n != purgePage+10 {
			t.Fatalf("purged %d (%v), want %d", n, err, purgePage+10)
		}
		var left int
		if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM events`).Scan(&left); err != nil || left != 3 {
			t.Errorf("%d events left (%v), want the 3 recent ones", left, err)
		}
	})
}

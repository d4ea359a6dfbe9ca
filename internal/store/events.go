package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imbee/imbee"
)

// How events reach the other servers (PostgreSQL; on SQLite there are
// none). A write inserts its event into the events table (the outbox) in
// its own transaction, and once it has committed wakes this process's
// announcer, which sends one NOTIFY, with no payload but its origin, per
// announceEvery at most. No NOTIFY is sent inside a writing transaction:
// PostgreSQL serialises the commits of those that carry one behind a
// database-wide lock. Every server LISTENs, and on each hint (and every
// few seconds anyway) reads, in one statement, the events after the last
// it saw together with the messages they name, so that a message costs
// each server one read, whatever its number of sockets.

// eventsChannel is the PostgreSQL channel the hints go on.
const eventsChannel = "imbee_events"

// announceEvery is the least time between two NOTIFYs of one process: the
// writes committed meanwhile share the next.
const announceEvery = 5 * time.Millisecond

// keepEvents is how long the outbox keeps an event: far longer than any
// follower that is connected takes to read it. A follower that has not
// read for half of it may have lost events to the purge (see EventFeed.Next).
const keepEvents = 10 * time.Minute

// notify records e in the outbox, on PostgreSQL, inside the writing
// transaction q: the event exists if and only if what it tells of is
// committed. It is called after the write it tells of, so the transaction
// holds an xid before the event takes its id (EventFeed.Next relies on it).
func (s *Store) notify(ctx context.Context, q querier, e imbee.Event) error {
	if !s.dialect.notifies {
		return nil
	}
	tx, ok := q.(*pgTxn)
	if !ok {
		return errors.New("an event outside a PostgreSQL write transaction")
	}
	if _, err := q.ExecContext(ctx, `
		INSERT INTO events (corporate_id, origin, type, conversation, seq, member, horizon, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.CorporateID, s.instance, e.Type, e.ConversationID, e.Seq, e.Member, int64(e.Horizon), unix(s.now())); err != nil {
		return err
	}
	tx.announce = true
	return nil
}

// pgTxn is a PostgreSQL write transaction: announce says it inserted
// events, for which the announcer sends a NOTIFY once it has committed.
type pgTxn struct {
	rebinder
	announce bool
}

// announcer sends the NOTIFYs of one process, after the commits of the
// writes that asked for one (kick), batched.
type announcer struct {
	kicks chan struct{}
	stop  context.CancelFunc
	done  chan struct{}
}

func startAnnouncer(pool *pgxpool.Pool, origin string) *announcer {
	ctx, stop := context.WithCancel(context.Background())
	a := &announcer{kicks: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	send := func() {
		// A failed NOTIFY costs latency only: every follower reads the
		// outbox every few seconds anyway.
		nctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		pool.Exec(nctx, `SELECT pg_notify($1, $2)`, eventsChannel, origin)
		cancel()
	}
	go func() {
		defer close(a.done)
		t := time.NewTimer(0)
		for {
			select {
			case <-ctx.Done():
				select {
				case <-a.kicks: // committed before Close: told still
					send()
				default:
				}
				return
			case <-a.kicks:
			}
			send()
			t.Reset(announceEvery)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
	}()
	return a
}

// kick asks for a NOTIFY: at once, or at the end of the current interval.
func (a *announcer) kick() {
	select {
	case a.kicks <- struct{}{}:
	default:
	}
}

// close sends the NOTIFY still owed and stops.
func (a *announcer) close() {
	a.stop()
	<-a.done
}

// EventFeed follows the events other servers commit (see FollowEvents).
type EventFeed struct {
	s *Store
	// seen is the largest id read; gaps are the smaller ids not read yet,
	// each with the xmax of the snapshot that first missed it. Ids are
	// taken in order but committed out of order: a gap is a transaction
	// still running, or one that will never commit (rolled back, or ids
	// a restart skipped). Once a snapshot's xmin has passed that xmax,
	// every transaction that could hold the id has ended: if the id is
	// still not there, it never will be.
	seen     int64
	gaps     map[int64]int64
	lastRead time.Time
}

// feedPage is how many events one read returns at most.
const feedPage = 500

// FollowEvents starts following the events that other servers commit from
// now on; nil on SQLite, which has no other servers.
func (s *Store) FollowEvents(ctx context.Context) (*EventFeed, error) {
	if !s.dialect.notifies {
		return nil, nil
	}
	f := &EventFeed{s: s, gaps: map[int64]int64{}, lastRead: s.now()}
	if err := s.reads.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM events`).Scan(&f.seen); err != nil {
		return nil, internal("follow events", err)
	}
	// Ids below the largest may belong to writes still committing: they
	// are read as gaps would be (events from before a start reach no
	// socket; they are only read).
	f.seen = max(0, f.seen-feedPage)
	return f, nil
}

// Next returns the events other servers committed since the last call:
// each event of type "message" carries its message, read with it. more
// says there are more to read at once. After a long time without a read
// (the database unreachable), events may have been purged unread: it then
// returns an event of type "missed" first, and every socket catches up.
func (f *EventFeed) Next(ctx context.Context) (events []imbee.Event, more bool, err error) {
	gaps := make([]int64, 0, len(f.gaps))
	for id := range f.gaps {
		gaps = append(gaps, id)
	}
	// One statement, one snapshot: the rows it sees and the xmin and xmax
	// of the snapshot it saw them in.
	rows, err := f.s.reads.QueryContext(ctx, `
		SELECT pg_snapshot_xmin(s)::text::bigint, pg_snapshot_xmax(s)::text::bigint,
			o.id, o.origin = ?, o.type, o.corporate_id, o.conversation, o.seq, o.member, o.horizon,
			m.id, m.sender, m.sender_is_bot, m.client_msg_id, m.text, m.created_at
		FROM pg_current_snapshot() s
		LEFT JOIN LATERAL (
			SELECT * FROM events WHERE id > ? OR id = ANY(?) ORDER BY id LIMIT ?
		) o ON true
		LEFT JOIN conversations c ON o.type = 'message' AND o.origin <> ? AND c.corporate_id = o.corporate_id AND c.public_id = o.conversation
		LEFT JOIN messages m ON m.corporate_id = c.corporate_id AND m.conversation_id = c.id AND m.seq = o.seq
		ORDER BY o.id`,
		f.s.instance, f.seen, gaps, feedPage, f.s.instance)
	if err != nil {
		return nil, false, internal("read events", err)
	}
	defer rows.Close()
	var xmin, xmax int64
	read := map[int64]bool{}
	var ids []int64
	for rows.Next() {
		var id sql.NullInt64
		var own sql.NullBool
		var e imbee.Event
		var typ, conv, member sql.NullString
		var seq, corp, horizon sql.NullInt64
		var m struct {
			id, isBot, created sql.NullInt64
			sender, clientID   sql.NullString
			text               sql.NullString
		}
		if err := rows.Scan(&xmin, &xmax, &id, &own, &typ, &corp, &conv, &seq, &member, &horizon,
			&m.id, &m.sender, &m.isBot, &m.clientID, &m.text, &m.created); err != nil {
			return nil, false, internal("read events", err)
		}
		if !id.Valid {
			continue // no events: the snapshot's row alone
		}
		read[id.Int64] = true
		ids = append(ids, id.Int64)
		if own.Bool {
			continue // its server told its own sockets
		}
		e = imbee.Event{Type: typ.String, CorporateID: corp.Int64, ConversationID: conv.String, Seq: seq.Int64,
			Member: member.String, Horizon: imbee.Horizon(horizon.Int64)}
		if m.id.Valid {
			e.Message = &imbee.Message{ID: m.id.Int64, CorporateID: e.CorporateID, ConversationID: e.ConversationID, Seq: e.Seq,
				Sender: m.sender.String, SenderIsBot: m.isBot.Int64 != 0, ClientMsgID: m.clientID.String, Text: m.text.String,
				CreatedAt: time.Unix(m.created.Int64, 0).UTC(), Horizon: e.Horizon}
		}
		events = append(events, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, internal("read events", err)
	}
	now := f.s.now()
	missed := now.Sub(f.lastRead) > keepEvents/2
	f.lastRead = now
	f.advance(read, ids, xmin, xmax)
	sortEvents(events)
	if missed {
		events = append([]imbee.Event{{Type: "missed"}}, events...)
	}
	return events, len(ids) == feedPage, nil
}

// advance records what a read in a snapshot (xmin, xmax) returned: the
// gaps it filled, the new ones below the largest id it read, and the gaps
// no transaction can fill any more.
func (f *EventFeed) advance(read map[int64]bool, ids []int64, xmin, xmax int64) {
	for id := range read {
		delete(f.gaps, id)
	}
	for id, since := range f.gaps {
		if xmin >= since {
			delete(f.gaps, id)
		}
	}
	for _, id := range ids {
		if id <= f.seen {
			continue
		}
		for g := f.seen + 1; g < id; g++ {
			f.gaps[g] = xmax
		}
		f.seen = id
	}
}

// sortEvents puts each conversation's events in the order a socket sends
// them: messages by seq, a read mark after the message it reaches.
// Transactions take ids in one order and commit in another, so a page of
// events by id may not be in it. Revocations come first: they only make
// the hub read the log.
func sortEvents(es []imbee.Event) {
	rank := map[string]int{"revoked": 0, "message": 1, "read": 2}
	slices.SortStableFunc(es, func(a, b imbee.Event) int {
		return cmp.Or(
			cmp.Compare(min(rank[a.Type], 1), min(rank[b.Type], 1)),
			cmp.Compare(a.CorporateID, b.CorporateID),
			cmp.Compare(a.ConversationID, b.ConversationID),
			cmp.Compare(a.Seq, b.Seq),
			cmp.Compare(rank[a.Type], rank[b.Type]))
	})
}

// Listen LISTENs on its own connection and calls listening once it does,
// then hint at each NOTIFY from another process, until ctx ends or the
// connection is lost (the error it returns).
func (f *EventFeed) Listen(ctx context.Context, listening, hint func()) error {
	pooled, err := f.s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection is taken out of the pool: it stays LISTENing, and is
	// closed rather than handed to anyone else.
	conn := pooled.Hijack()
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+eventsChannel); err != nil {
		return err
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload != f.s.instance {
			hint()
		}
	}
}

// ReadMarks returns how far each member of a conversation has read, for
// the members who have read any of it, and the horizon of the read (see
// imbee.Horizon): a socket catching up sends those it has not sent.
func (s *Store) ReadMarks(ctx context.Context, corporateID int64, conversationID string) (map[string]int64, imbee.Horizon, error) {
	rows, err := s.reads.QueryContext(ctx, `
		SELECT m.idsha, m.read_seq, `+horizonSQL+`
		FROM conversation_members m JOIN conversations c ON c.id = m.conversation_id AND c.corporate_id = m.corporate_id
		WHERE c.public_id = ? AND c.corporate_id = ? AND m.read_seq > 0`, conversationID, corporateID)
	if err != nil {
		return nil, 0, internal("read marks", err)
	}
	defer rows.Close()
	marks := map[string]int64{}
	var horizon int64
	for rows.Next() {
		var member string
		var seq int64
		if err := rows.Scan(&member, &seq, &horizon); err != nil {
			return nil, 0, internal("read marks", err)
		}
		marks[member] = seq
	}
	return marks, imbee.Horizon(horizon), rows.Err()
}

// purgePage bounds one DELETE of the purge: no statement holds many rows
// locked, or runs long, however far behind the purge is.
const purgePage = 5000

// PurgeEvents deletes the events older than keepEvents, a page at a time,
// and says how many it deleted.
func (s *Store) PurgeEvents(ctx context.Context) (int64, error) {
	if !s.dialect.notifies {
		return 0, nil
	}
	before := unix(s.now().Add(-keepEvents))
	var total int64
	for {
		var n int64
		err := s.inWrite(ctx, func(q querier) error {
			res, err := q.ExecContext(ctx, `
				DELETE FROM events WHERE (corporate_id, id) IN (
					SELECT corporate_id, id FROM events WHERE created_at < ? ORDER BY created_at LIMIT ?)`, before, purgePage)
			if err != nil {
				return internal("purge events", err)
			}
			n, _ = res.RowsAffected()
			return nil
		})
		total += n
		if err != nil || n < purgePage {
			return total, err
		}
	}
}

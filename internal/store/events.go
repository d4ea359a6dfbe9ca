package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imbee/imbee"
)

// eventsChannel is the PostgreSQL channel that carries conversation events
// between servers.
const eventsChannel = "imbee_events"

// wireEvent is an event as NOTIFY carries it: no message text (a payload is
// at most 8000 bytes), only where to read it.
type wireEvent struct {
	Origin       string `json:"o"`
	Type         string `json:"t"`
	Corporate    int64  `json:"c"`
	Conversation string `json:"v"`
	Seq          int64  `json:"s"`
	Member       string `json:"m,omitempty"`
	Horizon      int64  `json:"h,omitempty"`
}

// notify tells the other servers of e, on PostgreSQL, inside the writing
// transaction: NOTIFY is delivered at commit, so an event goes out if and
// only if what it tells of is committed.
func (s *Store) notify(ctx context.Context, q querier, e imbee.Event) error {
	if !s.dialect.notifies {
		return nil
	}
	b, err := json.Marshal(wireEvent{Origin: s.instance, Type: e.Type, Corporate: e.CorporateID, Conversation: e.ConversationID, Seq: e.Seq, Member: e.Member, Horizon: int64(e.Horizon)})
	if err != nil {
		return err
	}
	_, err = q.ExecContext(ctx, `SELECT pg_notify('`+eventsChannel+`', ?)`, string(b))
	return err
}

// ListenEvents calls fn with every event other servers commit, until ctx
// ends, on PostgreSQL (on SQLite there are no other servers and it returns
// at once). Events carry no message: the receiver reads what it lacks.
// After a lost connection it reconnects and calls fn with an event of type
// "missed", since events may have been lost meanwhile.
func (s *Store) ListenEvents(ctx context.Context, fn func(imbee.Event)) {
	if !s.dialect.notifies {
		return
	}
	for wait := time.Duration(0); ctx.Err() == nil; {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		// listen only returns on a lost connection: reconnect, and have
		// every socket read what it may have missed meanwhile.
		listen(ctx, s.pool, s.instance, fn)
		if ctx.Err() != nil {
			return
		}
		wait = min(max(wait*2, 100*time.Millisecond), 5*time.Second)
		fn(imbee.Event{Type: "missed"})
	}
}

func listen(ctx context.Context, pool *pgxpool.Pool, self string, fn func(imbee.Event)) error {
	pooled, err := pool.Acquire(ctx)
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
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var w wireEvent
		if json.Unmarshal([]byte(n.Payload), &w) != nil || w.Origin == self {
			continue
		}
		fn(imbee.Event{Type: w.Type, CorporateID: w.Corporate, ConversationID: w.Conversation, Seq: w.Seq, Member: w.Member, Horizon: imbee.Horizon(w.Horizon)})
	}
}

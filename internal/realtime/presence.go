package realtime

import (
	"context"
	"log/slog"
	"time"
)

// PresenceStore keeps, for every server, the users with a socket open on
// it, each row valid until its expiry.
type PresenceStore interface {
	MarkPresent(ctx context.Context, server string, corporateID int64, userIDs []int64, until time.Time) error
	MarkAbsent(ctx context.Context, server string, corporateID int64, userIDs []int64) error
}

// Presence tells the other servers of an installation which users have a
// socket open on this one, so that none of them pushes to a person who is
// looking: a user's first socket here is written at once, their last
// one's close likewise, and the rows are renewed every PresenceBeat while
// they stay open. A server that dies stops renewing: its rows expire
// after PresenceLease, and pushes resume.
type Presence struct {
	hub    *Hub
	store  PresenceStore
	server string
	now    func() time.Time
	log    *slog.Logger
}

const (
	// PresenceBeat is how often a server renews its users' presence.
	PresenceBeat = 5 * time.Second
	// PresenceLease is how long a renewal holds: three beats, so that a
	// late renewal or two does not make a looking person look away.
	PresenceLease = 3 * PresenceBeat
)

// NewPresence returns the presence of hub's users, written to store under
// this server's name.
func NewPresence(hub *Hub, store PresenceStore, server string, now func() time.Time, log *slog.Logger) *Presence {
	return &Presence{hub: hub, store: store, server: server, now: now, log: log}
}

// Run writes presence until ctx ends, then takes this server's users out
// of it (a stopped server's sockets are closed).
func (p *Presence) Run(ctx context.Context) {
	written := map[User]bool{}
	beat := time.NewTicker(PresenceBeat)
	defer beat.Stop()
	for {
		renew := false
		select {
		case <-ctx.Done():
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			p.write(stop, written, map[User]bool{}, false)
			cancel()
			return
		case <-p.hub.PresenceChanged():
		case <-beat.C:
			renew = true
		}
		p.write(ctx, written, p.hub.OnlineUsers(), renew)
	}
}

// write brings the store from written to online: the users who arrived
// (all of online when renewing) are marked present, those who left
// absent. written is updated with what was written; what failed is tried
// again on the next change or beat.
func (p *Presence) write(ctx context.Context, written, online map[User]bool, renew bool) {
	present, absent := map[int64][]int64{}, map[int64][]int64{}
	for u := range online {
		if renew || !written[u] {
			present[u.CorporateID] = append(present[u.CorporateID], u.UserID)
		}
	}
	for u := range written {
		if !online[u] {
			absent[u.CorporateID] = append(absent[u.CorporateID], u.UserID)
		}
	}
	until := p.now().Add(PresenceLease)
	for corp, ids := range present {
		if err := p.store.MarkPresent(ctx, p.server, corp, ids, until); err != nil {
			p.log.Warn("write presence", "corporate", corp, "err", err)
			continue
		}
		for _, id := range ids {
			written[User{corp, id}] = true
		}
	}
	for corp, ids := range absent {
		if err := p.store.MarkAbsent(ctx, p.server, corp, ids); err != nil {
			p.log.Warn("write presence", "corporate", corp, "err", err)
			continue
		}
		for _, id := range ids {
			delete(written, User{corp, id})
		}
	}
}

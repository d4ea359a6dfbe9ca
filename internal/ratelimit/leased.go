package ratelimit

import (
	"context"
	"sync"
	"time"
)

// Lender is a rate limit's bucket per (corporate, user) that other servers
// take from too (internal/store on PostgreSQL). Lend takes up to n tokens
// from a bucket of burst tokens refilled perSecond: taken of them, 0 when
// it has none, and then wait is how long until one is back; remaining is
// what it holds after.
type Lender interface {
	Lend(ctx context.Context, corporateID, userID int64, perSecond float64, burst, n int) (taken int, wait time.Duration, remaining float64, err error)
}

// Leased spends tokens that a server leases in chunks from a shared bucket,
// so that a busy key asks the shared bucket once per chunk rather than once
// per request. A chunk is what the key's rate refills in leaseSpan (at
// least 1, at most a tenth of the burst), so a slow limit, one a hostile
// tenant runs into, is asked request by request and holds exactly; a fast
// one is off by at most a chunk per server. A refusal holds until its wait
// has passed: no server can give tokens back, so none come sooner.
type Leased struct {
	lender  Lender
	now     func() time.Time
	maxKeys int

	mu     sync.Mutex
	leases map[[2]int64]*lease
}

// leaseSpan is how much of a key's rate one chunk is; leaseLife how long
// an unspent chunk is kept (longer, and a key idle meanwhile would find
// its old chunk on top of a full bucket).
const (
	leaseSpan = 10 * time.Millisecond
	leaseLife = time.Second
)

type lease struct {
	mu        sync.Mutex // held while it asks the lender: the key's other requests wait for that chunk
	perSecond float64
	burst     int
	tokens    int       // leased, not yet spent
	at        time.Time // when they were leased
	remaining float64   // the shared bucket's, then
	until     time.Time // refused until
}

// NewLeased returns a Leased over lender, for at most maxKeys keys at once
// (0: DefaultMaxKeys); past that, a new key drops another's lease, whose
// tokens are lost (the limit holds, lower for a moment).
func NewLeased(lender Lender, now func() time.Time, maxKeys int) *Leased {
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	return &Leased{lender: lender, now: now, maxKeys: maxKeys, leases: map[[2]int64]*lease{}}
}

// TakeRate takes one request from the bucket of (corporateID, userID),
// from its lease or a new chunk; when refused, wait is how long until a
// request would be taken. remaining estimates what the bucket holds after.
func (l *Leased) TakeRate(ctx context.Context, corporateID, userID int64, perSecond float64, burst int) (wait time.Duration, ok bool, remaining float64, err error) {
	burst = max(burst, 1)
	e := l.lease([2]int64{corporateID, userID})
	e.mu.Lock()
	defer e.mu.Unlock()
	now := l.now()
	if e.perSecond != perSecond || e.burst != burst {
		e.perSecond, e.burst, e.tokens, e.until = perSecond, burst, 0, time.Time{}
	}
	if now.Sub(e.at) > leaseLife {
		e.tokens = 0
	}
	if now.Before(e.until) {
		wait = e.until.Sub(now)
		return wait, false, 1 - wait.Seconds()*perSecond, nil
	}
	if e.tokens == 0 {
		n := max(1, min(int(perSecond*leaseSpan.Seconds()), burst/10))
		taken, wait, remaining, err := l.lender.Lend(ctx, corporateID, userID, perSecond, burst, n)
		if err != nil {
			return 0, false, 0, err
		}
		if taken == 0 {
			e.until = now.Add(wait)
			return wait, false, remaining, nil
		}
		e.tokens, e.at, e.remaining = taken, now, remaining
	}
	e.tokens--
	return 0, true, e.remaining + float64(e.tokens), nil
}

// Refused says how long the bucket of (corporateID, userID) is known to
// refuse, from its last refusal here, without asking the shared bucket (0:
// not known to).
func (l *Leased) Refused(corporateID, userID int64) time.Duration {
	l.mu.Lock()
	e := l.leases[[2]int64{corporateID, userID}]
	l.mu.Unlock()
	if e == nil {
		return 0
	}
	if !e.mu.TryLock() {
		return 0 // being asked about now: that take will say
	}
	defer e.mu.Unlock()
	return max(0, e.until.Sub(l.now()))
}

// refuse makes this server refuse (corporateID, userID) for d without
// asking the shared bucket; 0 lets it ask again at once.
func (l *Leased) refuse(corporateID, userID int64, d time.Duration) {
	e := l.lease([2]int64{corporateID, userID})
	e.mu.Lock()
	defer e.mu.Unlock()
	e.until = l.now().Add(d)
}

// lease is key's lease, a new one if it has none.
func (l *Leased) lease(key [2]int64) *lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.leases[key]
	if e == nil {
		if len(l.leases) >= l.maxKeys {
			for k := range l.leases { // any one: the map's order is random
				delete(l.leases, k)
				break
			}
		}
		e = &lease{}
		l.leases[key] = e
	}
	return e
}

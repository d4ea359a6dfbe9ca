// Package ratelimit holds token buckets per key (a client address, a web
// session, a user) in bounded memory: a flood of distinct keys evicts the
// least recently used buckets instead of growing without end. Leased
// spends, on one server, chunks of buckets that several servers share.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of buckets a Keyed holds unless told
// otherwise: about 4 MB at most (measured: about 250 bytes a key, map
// included, for an address key).
const DefaultMaxKeys = 1 << 14

// Keyed is a token bucket per key: each key may take Burst tokens at once
// and gets Limit tokens back a second. A nil *Keyed allows everything.
//
// Past its maximum number of keys, taking a token for a new key forgets the
// least recently used one. A forgotten bucket counts as full, so under a
// flood of more distinct keys than that a key may get a fresh burst; the
// memory stays bounded, which is what matters more under such a flood. The
// buckets are plain numbers under one lock, not a *rate.Limiter (with its
// own mutex) each.
type Keyed[K comparable] struct {
	limit   float64
	burst   float64
	maxKeys int
	now     func() time.Time
	base    time.Time

	mu   sync.Mutex
	m    map[K]*bucket[K]
	head bucket[K] // sentinel of the recency list: head.next is the most recent
}

type bucket[K comparable] struct {
	key        K
	tokens     float64
	at         time.Duration // when tokens was computed, since base
	perSecond  float64       // the rate and size it was filled at
	burst      float64
	prev, next *bucket[K]
}

// New returns a Keyed allowing burst at once and perSecond after that, per
// key, for at most maxKeys keys (0: DefaultMaxKeys). With perSecond <= 0 it
// returns nil: no limit.
func New[K comparable](perSecond float64, burst, maxKeys int) *Keyed[K] {
	return newAt[K](perSecond, burst, maxKeys, time.Now)
}

// NewPerKey returns a Keyed whose rate and burst are given with each call
// to AllowWith (its Allow and Wait allow everything), for at most maxKeys
// keys (0: DefaultMaxKeys).
func NewPerKey[K comparable](maxKeys int) *Keyed[K] {
	k := newAt[K](1, 1, maxKeys, time.Now)
	k.limit, k.burst = 0, 0
	return k
}

func newAt[K comparable](perSecond float64, burst, maxKeys int, now func() time.Time) *Keyed[K] {
	if perSecond <= 0 {
		return nil
	}
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	k := &Keyed[K]{limit: perSecond, burst: float64(max(burst, 1)), maxKeys: maxKeys, now: now, base: now(), m: map[K]*bucket[K]{}}
	k.head.prev, k.head.next = &k.head, &k.head
	return k
}

// Limit is the tokens a key gets back a second (0 for a nil Keyed).
func (k *Keyed[K]) Limit() float64 {
	if k == nil {
		return 0
	}
	return k.limit
}

// Burst is the size of a key's bucket (0 for a nil Keyed).
func (k *Keyed[K]) Burst() int {
	if k == nil {
		return 0
	}
	return int(k.burst)
}

// Allow takes one token from key's bucket. When there is none it takes
// nothing and says how long until there is one.
func (k *Keyed[K]) Allow(key K) (wait time.Duration, ok bool) {
	if k == nil || k.limit <= 0 {
		return 0, true
	}
	wait, ok, _ = k.AllowWith(key, k.Limit(), k.Burst())
	return wait, ok
}

// AllowWith is Allow with this key's own rate and burst (a user's share of
// its corporate's limit, say); remaining is the tokens left after it. A
// key whose rate or burst changed starts again with a full bucket of the
// new size.
func (k *Keyed[K]) AllowWith(key K, perSecond float64, burst int) (wait time.Duration, ok bool, remaining float64) {
	if k == nil || perSecond <= 0 {
		return 0, true, math.Inf(1)
	}
	b := float64(max(burst, 1))
	now := k.now().Sub(k.base)
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.m[key]
	if e == nil {
		e = k.add(key)
	} else {
		k.touch(e)
	}
	if e.perSecond != perSecond || e.burst != b {
		e.tokens, e.at, e.perSecond, e.burst = b, now, perSecond, b
	}
	e.tokens = refill(e.tokens, e.at, now, perSecond, b)
	e.at = now
	if e.tokens < 1 {
		return untilOne(e.tokens, perSecond), false, e.tokens
	}
	e.tokens--
	return 0, true, e.tokens
}

// Return gives back a token Allow took for key, up to the bucket's size:
// for a limit on failures, which takes a token before the attempt (so
// concurrent attempts cannot overrun it) and returns it when the attempt
// succeeds.
func (k *Keyed[K]) Return(key K) {
	if k == nil || k.limit <= 0 {
		return
	}
	now := k.now().Sub(k.base)
	k.mu.Lock()
	defer k.mu.Unlock()
	if e := k.m[key]; e != nil {
		e.tokens = min(refill(e.tokens, e.at, now, e.perSecond, e.burst)+1, e.burst)
		e.at = now
	}
}

// Wait says how long key must wait until its bucket has a token, without
// taking one (0: it has one now, or has no bucket).
func (k *Keyed[K]) Wait(key K) time.Duration {
	if k == nil || k.limit <= 0 {
		return 0
	}
	now := k.now().Sub(k.base)
	k.mu.Lock()
	defer k.mu.Unlock()
	e := k.m[key]
	if e == nil {
		return 0
	}
	t := refill(e.tokens, e.at, now, e.perSecond, e.burst)
	if t >= 1 {
		return 0
	}
	return untilOne(t, e.perSecond)
}

// Len is the number of keys held.
func (k *Keyed[K]) Len() int {
	if k == nil {
		return 0
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.m)
}

func refill(tokens float64, at, now time.Duration, perSecond, burst float64) float64 {
	if now > at {
		tokens += (now - at).Seconds() * perSecond
	}
	return min(tokens, burst)
}

func untilOne(tokens, perSecond float64) time.Duration {
	return time.Duration((1 - tokens) / perSecond * float64(time.Second))
}

// add puts a new bucket for key at the front, forgetting the least
// recently used one when full (it is the one most likely to have filled up
// again).
func (k *Keyed[K]) add(key K) *bucket[K] {
	var e *bucket[K]
	if len(k.m) >= k.maxKeys {
		e = k.head.prev
		k.unlink(e)
		delete(k.m, e.key)
		*e = bucket[K]{}
	} else {
		e = &bucket[K]{}
	}
	e.key = key
	k.m[key] = e
	k.pushFront(e)
	return e
}

func (k *Keyed[K]) touch(e *bucket[K]) {
	if k.head.next != e {
		k.unlink(e)
		k.pushFront(e)
	}
}

func (k *Keyed[K]) unlink(e *bucket[K]) {
	e.prev.next, e.next.prev = e.next, e.prev
}

func (k *Keyed[K]) pushFront(e *bucket[K]) {
	e.prev, e.next = &k.head, k.head.next
	k.head.next.prev = e
	k.head.next = e
}

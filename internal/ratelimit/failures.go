package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"time"
)

// Failures limits failures per key (a client address, a user name): a
// burst of them, then perSecond. On its own it keeps the buckets in this
// server's memory. Shared over a Giver, each key's bucket is the
// installation's, kept in the database for every server on it: a hostile
// client that spreads its tries over N servers gets the limit once, not N
// times. Each try is then one statement there (failures are few; a
// refusal is remembered until it ends, so a refused key costs nothing
// more); a server learns of a refusal when it next asks, or when it takes
// the last try.
type Failures[K comparable] struct {
	perSecond float64
	burst     int

	local *Keyed[K] // alone

	shared *Leased // shared: the installation's buckets, with this server's refusals
	giver  Giver
	space  int64 // the buckets' corporate id: below zero, apart from every corporate's
	id     func(K) int64
}

// Giver is a Lender that can also give back a token taken from a bucket
// (internal/store on PostgreSQL).
type Giver interface {
	Lender
	GiveBack(ctx context.Context, corporateID, userID int64, perSecond float64, burst int) error
}

// Spaces of Failures' keys among the shared buckets: each a negative
// corporate id, so that none is a corporate's.
const (
	SpaceAuthFailures  int64 = -1 // failed API authentications, per client address
	SpaceSignInsByUser int64 = -2 // failed web app sign-ins, per virtualUser
	SpaceSignInsByAddr int64 = -3 // failed web app sign-ins, per client address
	SpaceUnknownLinks  int64 = -4 // unknown link tokens tried, per client address
)

// NewFailures limits failures per key in this server's memory, for at most
// maxKeys keys (0: DefaultMaxKeys). With perSecond <= 0 it returns nil: no
// limit.
func NewFailures[K comparable](perSecond float64, burst, maxKeys int) *Failures[K] {
	if perSecond <= 0 {
		return nil
	}
	return &Failures[K]{perSecond: perSecond, burst: max(burst, 1), local: New[K](perSecond, burst, maxKeys)}
}

// NewSharedFailures limits failures per key in giver's buckets of space,
// which id names each key in. With perSecond <= 0 it returns nil: no limit.
func NewSharedFailures[K comparable](giver Giver, space int64, id func(K) int64, perSecond float64, burst int, now func() time.Time) *Failures[K] {
	if perSecond <= 0 {
		return nil
	}
	return &Failures[K]{perSecond: perSecond, burst: max(burst, 1), shared: NewLeased(giver, now, 0), giver: giver, space: space, id: id}
}

// Take takes a try from key's bucket. When there is none it takes nothing
// and says how long until there is one. A nil Failures allows everything.
func (f *Failures[K]) Take(ctx context.Context, key K) (wait time.Duration, ok bool, err error) {
	if f == nil {
		return 0, true, nil
	}
	if f.local != nil {
		wait, ok = f.local.Allow(key)
		return wait, ok, nil
	}
	id := f.id(key)
	wait, ok, remaining, err := f.shared.TakeRate(ctx, f.space, id, f.perSecond, f.burst)
	if ok && remaining < 1 {
		// That was the last try there is: refuse the next here, before
		// its lookup, until one is back (as the memory bucket does).
		f.shared.refuse(f.space, id, untilOne(remaining, f.perSecond))
	}
	return wait, ok, err
}

// Return gives back a try that Take took, for an attempt that succeeded.
func (f *Failures[K]) Return(ctx context.Context, key K) error {
	if f == nil {
		return nil
	}
	if f.local != nil {
		f.local.Return(key)
		return nil
	}
	id := f.id(key)
	f.shared.refuse(f.space, id, 0)
	return f.giver.GiveBack(ctx, f.space, id, f.perSecond, f.burst)
}

// Wait says how long key must wait until it may try again, without taking
// a try: what this server knows (shared, a refusal it was given and that
// has not ended yet).
func (f *Failures[K]) Wait(key K) time.Duration {
	if f == nil {
		return 0
	}
	if f.local != nil {
		return f.local.Wait(key)
	}
	return f.shared.Refused(f.space, f.id(key))
}

// PrefixID names a client address's key among the shared buckets.
func PrefixID(p netip.Prefix) int64 {
	b, _ := p.MarshalBinary()
	return hashID(b)
}

// StringID names a string key (a user name) among the shared buckets.
func StringID(s string) int64 { return hashID([]byte(s)) }

// hashID is 63 bits of the key's SHA-256: two keys share a bucket only by
// a collision nobody can aim at.
func hashID(b []byte) int64 {
	h := sha256.Sum256(b)
	return int64(binary.BigEndian.Uint64(h[:8]) >> 1)
}

package store

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// attemptsKept is how many attempts a link's audit trail shows and about
// how many it keeps: a link fetched over and over (a scanner, an attacker)
// cannot grow it further. Trimming a link's trail costs a read of its last
// attemptsKept entries, so it is done on about one write in trimEvery for
// the link: the trail holds at most a few more than attemptsKept.
const (
	attemptsKept = 100
	trimEvery    = 8
)

// RecordLinkAttempts adds attempts to their links' audit trails in one
// write (the pages batch their GETs).
func (s *Store) RecordLinkAttempts(ctx context.Context, as []imbee.LinkAttempt) error {
	return s.inWrite(ctx, func(q querier) error {
		return s.recordAttempts(ctx, q, as...)
	})
}

// recordAttempts inserts attempts, many rows per statement (a batch of
// page views is one write), and trims the links' trails.
func (s *Store) recordAttempts(ctx context.Context, q querier, as ...imbee.LinkAttempt) error {
	type linkKey struct{ corporate, id int64 }
	links := map[linkKey]bool{}
	err := inChunks(len(as), func(lo, hi int) error {
		args := make([]any, 0, 7*(hi-lo))
		for _, a := range as[lo:hi] {
			args = append(args, a.CorporateID, a.LinkID, a.At.UnixMicro(), a.Method, a.Result, s.keys.Tag(secret.ClientAddress, []byte(a.Address)), a.Agent)
			links[linkKey{a.CorporateID, a.LinkID}] = true
		}
		_, err := q.ExecContext(ctx, `
			INSERT INTO link_attempts (corporate_id, link_id, at_us, method, result, client_hash, agent)
			VALUES `+placeholders(hi-lo, 7), args...)
		return err
	})
	if err != nil {
		return internal("record link attempts", err)
	}
	for l := range links {
		if rand.IntN(trimEvery) != 0 {
			continue
		}
		if _, err := q.ExecContext(ctx, `
			DELETE FROM link_attempts
			WHERE corporate_id = ? AND link_id = ? AND at_us < (
				SELECT at_us FROM link_attempts WHERE corporate_id = ? AND link_id = ? ORDER BY at_us DESC LIMIT 1 OFFSET ?)`,
			l.corporate, l.id, l.corporate, l.id, attemptsKept-1); err != nil {
			return internal("trim link attempts", err)
		}
	}
	return nil
}

// LinkAttempts returns a link's audit trail, the last attemptsKept, newest
// first: by the time of each request, not of its write (views are written
// in batches).
func (s *Store) LinkAttempts(ctx context.Context, corporateID, linkID int64) ([]imbee.LinkAttempt, error) {
	rows, err := s.reads.QueryContext(ctx, `
		SELECT at_us, method, result, client_hash, agent FROM link_attempts
		WHERE corporate_id = ? AND link_id = ? ORDER BY at_us DESC, id DESC LIMIT ?`, corporateID, linkID, attemptsKept)
	if err != nil {
		return nil, internal("read link attempts", err)
	}
	defer rows.Close()
	as := []imbee.LinkAttempt{}
	for rows.Next() {
		a := imbee.LinkAttempt{CorporateID: corporateID, LinkID: linkID}
		var at int64
		if err := rows.Scan(&at, &a.Method, &a.Result, &a.Client, &a.Agent); err != nil {
			return nil, internal("read link attempts", err)
		}
		a.At = time.UnixMicro(at).UTC()
		as = append(as, a)
	}
	if err := rows.Err(); err != nil {
		return nil, internal("read link attempts", err)
	}
	return as, nil
}

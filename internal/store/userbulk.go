package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// bulkChunk bounds the rows of one multi-row statement on SQLite. Chunks are
// powers of two, so that the writer's statement cache holds at most 8 texts
// of each statement, whatever the batch sizes.
const bulkChunk = 128

// bulkUser is one distinct user of a RegisterUsers batch.
type bulkUser struct {
	uniqueID string
	// The row to insert should the user be new; once stored, the row's.
	idsha   string
	keys    userKeys
	id      int64 // 0 until stored or found
	existed bool  // the row was there before this batch
}

// RegisterUsers is RegisterUser for many users in one transaction: every
// user is created or found and every device recorded, or nothing is. The
// registrations are in the order of specs, each with the credentials
// RegisterUser gives that user. An id given twice is one user, and its
// later items are Existed. Each statement carries many rows (on PostgreSQL,
// arrays: one round trip per statement), and the unique constraint decides
// between concurrent creators as in RegisterUser.
func (s *Store) RegisterUsers(ctx context.Context, corporateID int64, specs []imbee.UserSpec) ([]imbee.Registration, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	// The distinct ids, sorted: concurrent batches on PostgreSQL then lock
	// rows in one order and do not deadlock on each other.
	pos := make(map[string]int, len(specs))
	for _, sp := range specs {
		pos[sp.UniqueID] = 0
	}
	ids := make([]string, 0, len(pos))
	for id := range pos {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// Made outside the transaction, which PostgreSQL may run again.
	fresh := make([]bulkUser, len(ids))
	for i, id := range ids {
		pos[id] = i
		fresh[i] = bulkUser{uniqueID: id, idsha: secret.NewID(), keys: newUserKeys()}
	}
	now := unix(s.now())
	var users []bulkUser
	err := s.inWrite(ctx, func(q querier) error {
		users = slices.Clone(fresh)
		if err := s.insertUsers(ctx, q, corporateID, users, now); err != nil {
			return err
		}
		if err := s.findUsers(ctx, q, corporateID, users); err != nil {
			return err
		}
		return s.recordDevices(ctx, q, corporateID, bulkDevices(specs, pos, users), now)
	})
	if err != nil {
		return nil, err
	}
	passes, apikeys := make([]string, len(users)), make([]string, len(users))
	for i, u := range users {
		passes[i], apikeys[i] = s.credentials(corporateID, u.id, u.keys)
	}
	regs := make([]imbee.Registration, len(specs))
	given := make([]bool, len(users))
	for i, sp := range specs {
		k := pos[sp.UniqueID]
		u := users[k]
		regs[i] = imbee.Registration{
			User:    imbee.User{ID: u.id, CorporateID: corporateID, UniqueID: u.uniqueID, IDSha: u.idsha, Pass: passes[k], APIKey: apikeys[k]},
			Existed: u.existed || given[k],
		}
		given[k] = true
	}
	return regs, nil
}

// insertUsers inserts the users that do not exist yet and sets their id.
func (s *Store) insertUsers(ctx context.Context, q querier, corporateID int64, users []bulkUser, now int64) error {
	byIDSha := make(map[string]*bulkUser, len(users))
	for i := range users {
		byIDSha[users[i].idsha] = &users[i]
	}
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return internal("create users", err)
		}
		defer rows.Close()
		for rows.Next() {
			var idsha string
			var id int64
			if err := rows.Scan(&idsha, &id); err != nil {
				return internal("create users", err)
			}
			byIDSha[idsha].id = id
		}
		if err := rows.Err(); err != nil {
			return internal("create users", err)
		}
		return nil
	}
	if s.dialect.bindsArrays {
		uniqueIDs, idshas, nonces := make([]string, len(users)), make([]string, len(users)), make([][]byte, len(users))
		for i, u := range users {
			uniqueIDs[i], idshas[i], nonces[i] = u.uniqueID, u.idsha, u.keys.nonce
		}
		return scan(q.QueryContext(ctx, `
			INSERT INTO users (corporate_id, unique_id, idsha, secret_nonce, pass_keyed, created_at)
			SELECT ?, n.unique_id, n.idsha, n.secret_nonce, 1, ?
			FROM unnest(?::text[], ?::text[], ?::bytea[]) AS n (unique_id, idsha, secret_nonce)
			ON CONFLICT (corporate_id, unique_id) DO NOTHING
			RETURNING idsha, id`,
			corporateID, now, uniqueIDs, idshas, nonces))
	}
	return inChunks(len(users), func(lo, hi int) error {
		args := make([]any, 0, 6*(hi-lo))
		for _, u := range users[lo:hi] {
			args = append(args, corporateID, u.uniqueID, u.idsha, u.keys.nonce, 1, now)
		}
		return scan(q.QueryContext(ctx, `
			INSERT INTO users (corporate_id, unique_id, idsha, secret_nonce, pass_keyed, created_at)
			VALUES `+placeholders(hi-lo, 6)+`
			ON CONFLICT (corporate_id, unique_id) DO NOTHING
			RETURNING idsha, id`, args...))
	})
}

// findUsers reads the users that insertUsers did not create: they existed.
func (s *Store) findUsers(ctx context.Context, q querier, corporateID int64, users []bulkUser) error {
	missing := map[string]*bulkUser{}
	var ids []string
	for i, u := range users {
		if u.id == 0 {
			missing[u.uniqueID] = &users[i]
			ids = append(ids, u.uniqueID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	scan := func(rows *sql.Rows, err error) error {
		if err != nil {
			return internal("read users", err)
		}
		defer rows.Close()
		for rows.Next() {
			var uniqueID string
			var u bulkUser
			if err := rows.Scan(&uniqueID, &u.id, &u.idsha, &u.keys.nonce, &u.keys.legacyAPIKey, &u.keys.keyedPass); err != nil {
				return internal("read users", err)
			}
			m := missing[uniqueID]
			m.id, m.idsha, m.keys, m.existed = u.id, u.idsha, u.keys, true
			delete(missing, uniqueID)
		}
		if err := rows.Err(); err != nil {
			return internal("read users", err)
		}
		return nil
	}
	var err error
	if s.dialect.bindsArrays {
		err = scan(q.QueryContext(ctx, `
			SELECT unique_id, id, idsha, secret_nonce, apikey_hash IS NOT NULL, pass_keyed FROM users
			WHERE corporate_id = ? AND unique_id = ANY (?::text[])`, corporateID, ids))
	} else {
		err = inChunks(len(ids), func(lo, hi int) error {
			args := make([]any, 0, 1+hi-lo)
			args = append(args, corporateID)
			for _, id := range ids[lo:hi] {
				args = append(args, id)
			}
			return scan(q.QueryContext(ctx, `
				SELECT unique_id, id, idsha, secret_nonce, apikey_hash IS NOT NULL, pass_keyed FROM users
				WHERE corporate_id = ? AND unique_id IN `+placeholders(1, hi-lo), args...))
		})
	}
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return internal("read users", fmt.Errorf("%d users neither inserted nor found", len(missing)))
	}
	return nil
}

// bulkDevice is a device to record for a user.
type bulkDevice struct {
	userID int64
	imbee.Device
}

// bulkDevices lists the batch's devices once each, ordered by user: the
// order in which PostgreSQL then locks their rows.
func bulkDevices(specs []imbee.UserSpec, pos map[string]int, users []bulkUser) []bulkDevice {
	seen := map[bulkDevice]bool{}
	var devs []bulkDevice
	for _, sp := range specs {
		if sp.Device == nil {
			continue
		}
		d := bulkDevice{userID: users[pos[sp.UniqueID]].id, Device: *sp.Device}
		if !seen[d] {
			seen[d] = true
			devs = append(devs, d)
		}
	}
	slices.SortFunc(devs, func(a, b bulkDevice) int {
		return cmp.Or(cmp.Compare(a.userID, b.userID), cmp.Compare(a.Platform, b.Platform),
			cmp.Compare(a.DeviceName, b.DeviceName), cmp.Compare(a.HardwareID, b.HardwareID), cmp.Compare(a.OSVersion, b.OSVersion))
	})
	return devs
}

// recordDevices records devices as RegisterUser does: a new one is added,
// a known one has its last_seen updated.
func (s *Store) recordDevices(ctx context.Context, q querier, corporateID int64, devs []bulkDevice, now int64) error {
	if len(devs) == 0 {
		return nil
	}
	if s.dialect.bindsArrays {
		n := len(devs)
		userIDs, platforms, names, hardware, versions := make([]int64, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		for i, d := range devs {
			userIDs[i], platforms[i], names[i], hardware[i], versions[i] = d.userID, d.Platform, d.DeviceName, d.HardwareID, d.OSVersion
		}
		_, err := q.ExecContext(ctx, `
			INSERT INTO devices (corporate_id, user_id, platform, device_name, hardware_id, os_version, first_seen, last_seen)
			SELECT ?, d.user_id, d.platform, d.device_name, d.hardware_id, d.os_version, ?, ?
			FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[]) AS d (user_id, platform, device_name, hardware_id, os_version)
			ON CONFLICT (corporate_id, user_id, platform, device_name, hardware_id, os_version)
			DO UPDATE SET last_seen = excluded.last_seen`,
			corporateID, now, now, userIDs, platforms, names, hardware, versions)
		if err != nil {
			return internal("record devices", err)
		}
		return nil
	}
	return inChunks(len(devs), func(lo, hi int) error {
		args := make([]any, 0, 8*(hi-lo))
		for _, d := range devs[lo:hi] {
			args = append(args, corporateID, d.userID, d.Platform, d.DeviceName, d.HardwareID, d.OSVersion, now, now)
		}
		_, err := q.ExecContext(ctx, `
			INSERT INTO devices (corporate_id, user_id, platform, device_name, hardware_id, os_version, first_seen, last_seen)
			VALUES `+placeholders(hi-lo, 8)+`
			ON CONFLICT (corporate_id, user_id, platform, device_name, hardware_id, os_version)
			DO UPDATE SET last_seen = excluded.last_seen`, args...)
		if err != nil {
			return internal("record devices", err)
		}
		return nil
	})
}

// GrowWriteCache raises SQLite's page cache on the write connection to mib
// MiB (from 2), for a long bulk load: once the users' indexes outgrow the
// cache, each batch spills dirty pages mid-transaction and reads pages back,
// and a 64 MiB cache made a 100,000-user import a third faster. It does
// nothing on PostgreSQL.
func (s *Store) GrowWriteCache(ctx context.Context, mib int) error {
	if s.sqlite == nil {
		return nil
	}
	return s.inWrite(ctx, func(q querier) error {
		if _, err := q.ExecContext(ctx, fmt.Sprintf("PRAGMA cache_size = %d", -mib<<10)); err != nil {
			return internal("cache size", err)
		}
		return nil
	})
}

// inChunks calls f on consecutive ranges [lo, hi) covering n items, each as
// long as the largest power of two that fits, at most bulkChunk.
func inChunks(n int, f func(lo, hi int) error) error {
	for lo := 0; lo < n; {
		hi := lo + min(bulkChunk, 1<<(bits.Len(uint(n-lo))-1))
		if err := f(lo, hi); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// placeholders is rows tuples of width ? each: "(?, ?), (?, ?)".
func placeholders(rows, width int) string {
	tuple := "(" + strings.Repeat("?, ", width-1) + "?)"
	return strings.Repeat(tuple+", ", rows-1) + tuple
}

package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// RegisterUser returns the corporate's user uniqueID, creating it on first
// call, and records dev when given. existed is true when the user was there
// before. Concurrent first calls create one user: the unique constraint
// decides, and the losers read the winner's row. It always writes: the
// read-only repeat is KnownUser.
func (s *Store) RegisterUser(ctx context.Context, corporateID int64, uniqueID string, dev *imbee.Device) (u imbee.User, existed bool, err error) {
	err = s.inWrite(ctx, func(q querier) error {
		var k userKeys
		u, k, existed, err = s.ensureUser(ctx, q, corporateID, uniqueID)
		if err != nil {
			return err
		}
		u.Pass, u.APIKey = s.credentials(corporateID, u.ID, k)
		if dev == nil {
			return nil
		}
		now := unix(s.now())
		_, err := q.ExecContext(ctx, `
			INSERT INTO devices (corporate_id, user_id, platform, device_name, hardware_id, os_version, first_seen, last_seen)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (corporate_id, user_id, platform, device_name, hardware_id, os_version)
			DO UPDATE SET last_seen = excluded.last_seen`,
			corporateID, u.ID, dev.Platform, dev.DeviceName, dev.HardwareID, dev.OSVersion, now, now)
		if err != nil {
			return internal("record device", err)
		}
		return nil
	})
	return u, existed, err
}

// deviceSeenEvery is how stale a device's last_seen may be before a repeat
// updates it. Within it, a repeat is a read and costs no write.
const deviceSeenEvery = time.Hour

// KnownUser is the read-only repeat of /third_parties/user/new, in one read
// with the credential check: it authenticates like Authenticate and returns
// the corporate, and, when the user exists and its device (if any) was
// recorded recently, the user with found true. found is false when
// RegisterUser must write.
func (s *Store) KnownUser(ctx context.Context, auth, corporateToken, uniqueID string, dev *imbee.Device) (c imbee.Corporate, u imbee.User, found bool, err error) {
	if auth == "" {
		return c, u, false, errNoAuth()
	}
	var d imbee.Device
	if dev != nil {
		d = *dev
	}
	var r corporateRow
	var tokenHash, nonce []byte
	var userID, lastSeen sql.NullInt64
	var idsha sql.NullString
	var legacy, keyedPass sql.NullBool
	var authNonce []byte
	from, where, whereArgs, corp, corpArgs, isAuth := s.authCorporate(auth)
	// The device is a subquery, one index lookup whatever the plan: as a
	// join, PostgreSQL's rate of new users fell to 0.41× (its plan need
	// not look the device up by its key).
	err = s.reads.QueryRowContext(ctx, `
		SELECT `+corporateColumns+`, corporates.corporate_token_hash, corporates.auth_nonce,
			u.id, u.idsha, u.secret_nonce, u.apikey_hash IS NOT NULL, u.pass_keyed,
			(SELECT last_seen FROM devices
			 WHERE corporate_id = `+corp+` AND user_id = u.id AND platform = ? AND device_name = ? AND hardware_id = ? AND os_version = ?)
		FROM `+from+`
		LEFT JOIN users u ON u.corporate_id = corporates.id AND u.unique_id = ?
		WHERE `+where+` AND corporates.disabled_at IS NULL`,
		slices.Concat(corpArgs, []any{d.Platform, d.DeviceName, d.HardwareID, d.OSVersion, uniqueID}, whereArgs)...,
	).Scan(r.dest(&tokenHash, &authNonce, &userID, &idsha, &nonce, &legacy, &keyedPass, &lastSeen)...)
	if err == nil && !isAuth(authNonce) {
		err = sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		return imbee.Corporate{}, u, false, errBadAuth()
	}
	if err != nil {
		return imbee.Corporate{}, u, false, internal("authenticate", err)
	}
	if err := checkCorporateToken(corporateToken, tokenHash); err != nil {
		return imbee.Corporate{}, u, false, err
	}
	c = r.corporate()
	if !userID.Valid || dev != nil && (!lastSeen.Valid || s.now().Sub(time.Unix(lastSeen.Int64, 0)) >= deviceSeenEvery) {
		return c, u, false, nil
	}
	u = imbee.User{ID: userID.Int64, CorporateID: c.ID, UniqueID: uniqueID, IDSha: idsha.String}
	u.Pass, u.APIKey = s.credentials(c.ID, u.ID, userKeys{nonce: nonce, legacyAPIKey: legacy.Bool, keyedPass: keyedPass.Bool})
	return c, u, true, nil
}

// ensureUser is insert-or-return in two statements of one transaction.
func (s *Store) ensureUser(ctx context.Context, q querier, corporateID int64, uniqueID string) (u imbee.User, k userKeys, existed bool, err error) {
	u = imbee.User{CorporateID: corporateID, UniqueID: uniqueID, IDSha: secret.NewID()}
	k = newUserKeys()
	err = q.QueryRowContext(ctx, `
		INSERT INTO users (corporate_id, unique_id, idsha, secret_nonce, pass_keyed, created_at)
		VALUES (?, ?, ?, ?, 1, ?)
		ON CONFLICT (corporate_id, unique_id) DO NOTHING
		RETURNING id`,
		corporateID, uniqueID, u.IDSha, k.nonce, unix(s.now())).Scan(&u.ID)
	if err == nil {
		return u, k, false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return u, k, false, internal("create user", err)
	}
	err = q.QueryRowContext(ctx, `
		SELECT id, idsha, secret_nonce, apikey_hash IS NOT NULL, pass_keyed FROM users
		WHERE corporate_id = ? AND unique_id = ?`, corporateID, uniqueID,
	).Scan(&u.ID, &u.IDSha, &k.nonce, &k.legacyAPIKey, &k.keyedPass)
	if err != nil {
		return u, k, false, internal("read user", err)
	}
	return u, k, true, nil
}

// RotateUser gives the corporate's user a new pass and apikey (keyed,
// whatever the user had); the old ones stop working at once, on every
// server (credentials are never cached). An unknown user is CodeNotFound.
func (s *Store) RotateUser(ctx context.Context, corporateID int64, uniqueID string) (imbee.User, error) {
	k := newUserKeys()
	u := imbee.User{CorporateID: corporateID, UniqueID: uniqueID}
	err := s.inWrite(ctx, func(q querier) error {
		err := q.QueryRowContext(ctx, `
			UPDATE users SET secret_nonce = ?, apikey_hash = NULL, pass_keyed = 1
			WHERE corporate_id = ? AND unique_id = ?
			RETURNING id, idsha`,
			k.nonce, corporateID, uniqueID).Scan(&u.ID, &u.IDSha)
		if errors.Is(err, sql.ErrNoRows) {
			return imbee.NotFound(imbee.SubjectUser, "no such user")
		}
		if err != nil {
			return internal("rotate user", err)
		}
		// An older pass's route goes (by its key: rotations are rare);
		// the new pass carries the row.
		if _, err := q.ExecContext(ctx, `DELETE FROM user_routes WHERE idsha = ?`, u.IDSha); err != nil {
			return internal("rotate user", err)
		}
		return s.revoke(ctx, q, corporateID, imbee.RevokedUserKeys, u.ID)
	})
	if err != nil {
		return imbee.User{}, err
	}
	u.Pass, u.APIKey = s.credentials(corporateID, u.ID, k)
	return u, nil
}

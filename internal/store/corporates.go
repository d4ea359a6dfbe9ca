package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
)

// CreateCorporate creates a tenant and returns it with its credentials.
// Its settings are the caller's to check (imbee.NewCorporate).
func (s *Store) CreateCorporate(ctx context.Context, name, timezone string) (imbee.Corporate, imbee.CorporateCredentials, error) {
	authNonce, tokenNonce := secret.NewNonce(), secret.NewNonce()
	c := imbee.Corporate{Name: name, TimeZone: timezone, Language: imbee.Languages[0], CreatedAt: s.now().UTC().Truncate(time.Second)}
	var creds imbee.CorporateCredentials
	err := s.inWrite(ctx, func(q querier) (err error) {
		c.ID, creds, err = s.insertCorporate(ctx, q, c, authNonce, tokenNonce)
		return err
	})
	if err != nil {
		return imbee.Corporate{}, imbee.CorporateCredentials{}, err
	}
	return c, creds, nil
}

func (s *Store) insertCorporate(ctx context.Context, q querier, c imbee.Corporate, authNonce, tokenNonce []byte) (id int64, creds imbee.CorporateCredentials, err error) {
	token := s.keys.Derive(secret.CorporateToken, tokenNonce)
	err = q.QueryRowContext(ctx, `
		INSERT INTO corporates (name, timezone, auth_nonce, corporate_token_nonce, corporate_token_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		RETURNING id`,
		c.Name, c.TimeZone, authNonce, tokenNonce, secret.Hash(token), unix(c.CreatedAt),
	).Scan(&id)
	if err != nil {
		return 0, creds, internal("create corporate", err)
	}
	return id, s.corporateCredentials(id, authNonce, token), nil
}

// corporateCredentials are a corporate's: its Authorization carries its
// id (keyed.go), its X-WOOS-KEY is token.
func (s *Store) corporateCredentials(id int64, authNonce []byte, token string) imbee.CorporateCredentials {
	return imbee.CorporateCredentials{
		Auth:           s.keys.Keyed(secret.Auth, secret.Row{Corporate: id, ID: id}, s.keys.DeriveRandom(secret.Auth, authNonce)),
		CorporateToken: token,
	}
}

// RotateCorporate replaces the corporate's credentials; the old ones stop
// working at once. It returns CodeNotFound for an unknown id.
func (s *Store) RotateCorporate(ctx context.Context, id int64) (imbee.CorporateCredentials, error) {
	authNonce, tokenNonce := secret.NewNonce(), secret.NewNonce()
	creds := s.corporateCredentials(id, authNonce, s.keys.Derive(secret.CorporateToken, tokenNonce))
	err := s.inWrite(ctx, func(q querier) error {
		res, err := q.ExecContext(ctx, `
			UPDATE corporates
			SET auth_nonce = ?, corporate_token_nonce = ?, corporate_token_hash = ?
			WHERE id = ?`,
			authNonce, tokenNonce, secret.Hash(creds.CorporateToken), id)
		if err != nil {
			return internal("rotate corporate", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return imbee.Errorf(imbee.CodeNotFound, "no corporate with id %d", id)
		}
		// An older Authorization's routing row goes (a scan of one row
		// per corporate: rotations are rare); the new one carries the id.
		if _, err := q.ExecContext(ctx, `DELETE FROM corporate_routes WHERE corporate_id = ?`, id); err != nil {
			return internal("rotate corporate", err)
		}
		return s.revoke(ctx, q, id, imbee.RevokedCorporateKeys, 0)
	})
	return creds, err
}

// UpdateCorporate changes the settings given in set, which the caller has
// checked (CorporateSettings.Check), and returns the corporate as it is
// then. It returns CodeNotFound for an unknown id.
func (s *Store) UpdateCorporate(ctx context.Context, id int64, set imbee.CorporateSettings) (imbee.Corporate, error) {
	var c imbee.Corporate
	err := s.inWrite(ctx, func(q querier) error {
		var r corporateRow
		err := q.QueryRowContext(ctx, `
			UPDATE corporates SET
				name = coalesce(?, name), timezone = coalesce(?, timezone),
				language = coalesce(?, language), sender_name = coalesce(?, sender_name),
				rate_limit = CASE WHEN ? = 1 THEN NULL ELSE coalesce(?, rate_limit) END,
				rate_burst = CASE WHEN ? = 1 THEN NULL ELSE coalesce(?, rate_burst) END
			WHERE id = ?
			RETURNING `+corporateColumns,
			set.Name, set.TimeZone, set.Language, set.SenderName,
			boolInt(set.ResetRateLimit), set.RateLimit, boolInt(set.ResetRateLimit), set.RateBurst, id,
		).Scan(r.dest()...)
		if errors.Is(err, sql.ErrNoRows) {
			return imbee.Errorf(imbee.CodeNotFound, "no corporate with id %d", id)
		}
		if err != nil {
			return internal("update corporate", err)
		}
		c = r.corporate()
		return nil
	})
	return c, err
}

// ListCorporates returns every corporate, oldest first.
func (s *Store) ListCorporates(ctx context.Context) ([]imbee.Corporate, error) {
	rows, err := s.reads.QueryContext(ctx, `SELECT `+corporateColumns+` FROM corporates ORDER BY id`)
	if err != nil {
		return nil, internal("list corporates", err)
	}
	defer rows.Close()
	var out []imbee.Corporate
	for rows.Next() {
		var r corporateRow
		if err := rows.Scan(r.dest()...); err != nil {
			return nil, internal("list corporates", err)
		}
		out = append(out, r.corporate())
	}
	return out, rows.Err()
}

// Authenticate finds the corporate whose Authorization is auth and checks
// that corporateToken is that same corporate's token. It returns CodeAuth
// when auth is unknown and CodeCorporateKey when the token does not match.
func (s *Store) Authenticate(ctx context.Context, auth, corporateToken string) (imbee.Corporate, error) {
	c, tokenHash, err := s.corporateByAuth(ctx, auth)
	if err != nil {
		return c, err
	}
	if err := checkCorporateToken(corporateToken, tokenHash); err != nil {
		return imbee.Corporate{}, err
	}
	return c, nil
}

// corporateColumns are a corporate's columns, in the order
// corporateRow.dest scans them. Every read of a corporate selects them
// first, so that dest can take the read's other columns after them. They
// name the table rather than an alias, as SQLite's RETURNING requires.
const corporateColumns = `corporates.id, corporates.name, corporates.timezone, corporates.language, corporates.sender_name,
	corporates.rate_limit, corporates.rate_burst, corporates.created_at, corporates.disabled_at`

// corporateRow is a corporate as scanned from corporateColumns.
type corporateRow struct {
	c          imbee.Corporate
	created    int64
	rateLimit  sql.NullFloat64
	rateBurst  sql.NullInt64
	disabledAt sql.NullInt64
}

// dest is what to scan a row of corporateColumns and then more into.
func (r *corporateRow) dest(more ...any) []any {
	dest := make([]any, 0, 9+len(more))
	dest = append(dest, &r.c.ID, &r.c.Name, &r.c.TimeZone, &r.c.Language, &r.c.SenderName,
		&r.rateLimit, &r.rateBurst, &r.created, &r.disabledAt)
	return append(dest, more...)
}

// corporate is the corporate scanned.
func (r *corporateRow) corporate() imbee.Corporate {
	c := r.c
	c.CreatedAt = time.Unix(r.created, 0).UTC()
	c.Disabled = r.disabledAt.Valid
	if r.rateLimit.Valid {
		c.RateLimit = &r.rateLimit.Float64
	}
	if r.rateBurst.Valid {
		n := int(r.rateBurst.Int64)
		c.RateBurst = &n
	}
	return c
}

// The verdicts of a credential check, shared by every read that makes one.
func errNoAuth() error  { return imbee.Errorf(imbee.CodeAuth, "Authorization is missing") }
func errBadAuth() error { return imbee.Errorf(imbee.CodeAuth, "Authorization is not valid") }

// checkCorporateToken compares an X-WOOS-KEY with the corporate's stored
// hash in constant time.
func checkCorporateToken(token string, hash []byte) error {
	if token == "" || !secret.Equal(secret.Hash(token), hash) {
		return imbee.Errorf(imbee.CodeCorporateKey, "X-WOOS-KEY is missing or not valid for this Authorization")
	}
	return nil
}

// checkAPIKey says whether a user-level call's X-WOOS-KEY named a user of
// the corporate (userFound: the read joined a user by the key's hash).
func checkAPIKey(apikey string, userFound bool) error {
	switch {
	case apikey == "":
		return imbee.Errorf(imbee.CodeCorporateKey, "X-WOOS-KEY is missing: send the user's apikey")
	case !userFound:
		return imbee.Errorf(imbee.CodeCorporateKey, "X-WOOS-KEY is not the apikey of a user of this corporate")
	}
	return nil
}

// AuthenticateUser checks a user-level call in one read: the corporate whose
// Authorization is auth (CodeAuth when none), and its user whose apikey is
// apikey (CodeCorporateKey when there is none in that corporate).
func (s *Store) AuthenticateUser(ctx context.Context, auth, apikey string) (imbee.Corporate, imbee.User, error) {
	var u imbee.User
	if auth == "" {
		return imbee.Corporate{}, u, errNoAuth()
	}
	var r corporateRow
	var userID sql.NullInt64
	var uniqueID, idsha sql.NullString
	var nonce, authNonce []byte
	from, where, whereArgs, _, _, isAuth := s.authCorporate(auth)
	byKey, args, check := s.userByAPIKey("corporates.id", apikey)
	err := s.reads.QueryRowContext(ctx, `
		SELECT `+corporateColumns+`, corporates.auth_nonce, u.id, u.unique_id, u.idsha, u.secret_nonce
		FROM `+from+`
		LEFT JOIN users u ON `+byKey+`
		WHERE `+where+` AND corporates.disabled_at IS NULL`, append(args, whereArgs...)...,
	).Scan(r.dest(&authNonce, &userID, &uniqueID, &idsha, &nonce)...)
	if err == nil && !isAuth(authNonce) {
		err = sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		return imbee.Corporate{}, u, errBadAuth()
	}
	if err != nil {
		return imbee.Corporate{}, u, internal("authenticate", err)
	}
	c := r.corporate()
	if err := checkAPIKey(apikey, userID.Valid && check(nonce)); err != nil {
		return c, u, err
	}
	u = imbee.User{ID: userID.Int64, CorporateID: c.ID, UniqueID: uniqueID.String, IDSha: idsha.String}
	return c, u, nil
}

func (s *Store) corporateByAuth(ctx context.Context, auth string) (imbee.Corporate, []byte, error) {
	if auth == "" {
		return imbee.Corporate{}, nil, errNoAuth()
	}
	var r corporateRow
	var tokenHash, authNonce []byte
	from, where, args, _, _, isAuth := s.authCorporate(auth)
	err := s.reads.QueryRowContext(ctx, `
		SELECT `+corporateColumns+`, corporates.corporate_token_hash, corporates.auth_nonce
		FROM `+from+` WHERE `+where+` AND corporates.disabled_at IS NULL`, args...,
	).Scan(r.dest(&tokenHash, &authNonce)...)
	if err == nil && !isAuth(authNonce) {
		err = sql.ErrNoRows
	}
	if errors.Is(err, sql.ErrNoRows) {
		return imbee.Corporate{}, nil, errBadAuth()
	}
	if err != nil {
		return imbee.Corporate{}, nil, internal("authenticate", err)
	}
	return r.corporate(), tokenHash, nil
}

// CountCorporates says how many corporates exist (zero on a new database).
func (s *Store) CountCorporates(ctx context.Context) (int, error) {
	var n int
	if err := s.reads.QueryRowContext(ctx, `SELECT count(*) FROM corporates`).Scan(&n); err != nil {
		return 0, internal("count corporates", err)
	}
	return n, nil
}

// CreateBot adds a bot to a corporate. It returns CodeNotFound for an
// unknown corporate.
func (s *Store) CreateBot(ctx context.Context, corporateID int64, name string) (imbee.Bot, error) {
	b := imbee.Bot{CorporateID: corporateID, IDSha: secret.NewID(), Name: name, CreatedAt: s.now().UTC().Truncate(time.Second)}
	err := s.inWrite(ctx, func(q querier) error {
		err := q.QueryRowContext(ctx, `
			INSERT INTO bots (corporate_id, idsha, name, created_at)
			SELECT id, ?, ?, ? FROM corporates WHERE id = ?
			RETURNING id`, b.IDSha, name, unix(b.CreatedAt), corporateID).Scan(&b.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return imbee.Errorf(imbee.CodeNotFound, "no corporate with id %d", corporateID)
		}
		if err != nil {
			return internal("create bot", err)
		}
		return nil
	})
	return b, err
}

// ListBots returns a corporate's bots, oldest first, retired ones too.
func (s *Store) ListBots(ctx context.Context, corporateID int64) ([]imbee.Bot, error) {
	rows, err := s.reads.QueryContext(ctx, `
		SELECT id, corporate_id, idsha, name, created_at, revoked_at IS NOT NULL FROM bots
		WHERE corporate_id = ? ORDER BY id`, corporateID)
	if err != nil {
		return nil, internal("list bots", err)
	}
	defer rows.Close()
	var out []imbee.Bot
	for rows.Next() {
		var b imbee.Bot
		var created int64
		if err := rows.Scan(&b.ID, &b.CorporateID, &b.IDSha, &b.Name, &created, &b.Revoked); err != nil {
			return nil, internal("list bots", err)
		}
		b.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, b)
	}
	return out, rows.Err()
}

// Demo is what Bootstrap creates on a new database.
type Demo struct {
	Corporate   imbee.Corporate
	Credentials imbee.CorporateCredentials
	Bot         imbee.Bot
}

// Bootstrap creates a demo corporate with one bot, once in the database's
// life and only while it has no corporate. ok is false when it did nothing.
func (s *Store) Bootstrap(ctx context.Context, corporateName, botName string) (d Demo, ok bool, err error) {
	authNonce, tokenNonce := secret.NewNonce(), secret.NewNonce()
	now := s.now().UTC().Truncate(time.Second)
	d.Corporate = imbee.Corporate{Name: corporateName, TimeZone: "UTC", CreatedAt: now}
	d.Bot = imbee.Bot{IDSha: secret.NewID(), Name: botName, CreatedAt: now}
	err = s.inWrite(ctx, func(q querier) error {
		// The meta row makes bootstrap happen once, even with several
		// servers starting together on a new database.
		res, err := q.ExecContext(ctx, `
			INSERT INTO meta (name, value)
			SELECT 'bootstrapped', CAST(? AS TEXT) WHERE NOT EXISTS (SELECT 1 FROM corporates)
			ON CONFLICT (name) DO NOTHING`, now.Format(time.RFC3339))
		if err != nil {
			return internal("bootstrap", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		ok = true
		if d.Corporate.ID, d.Credentials, err = s.insertCorporate(ctx, q, d.Corporate, authNonce, tokenNonce); err != nil {
			return err
		}
		d.Bot.CorporateID = d.Corporate.ID
		// The demo bot answers: its webhook is the built-in one.
		if err := q.QueryRowContext(ctx, `
			INSERT INTO bots (corporate_id, idsha, name, created_at, webhook_url, webhook_nonce) VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			d.Corporate.ID, d.Bot.IDSha, botName, unix(now), imbee.DemoBotURL, secret.NewNonce()).Scan(&d.Bot.ID); err != nil {
			return internal("bootstrap bot", err)
		}
		return nil
	})
	return d, ok, err
}

// Empty says whether the database has no corporate.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	var found bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM corporates)`).Scan(&found); err != nil {
		return false, internal("count corporates", err)
	}
	return !found, nil
}

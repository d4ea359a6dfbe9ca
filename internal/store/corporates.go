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
	creds := s.corporateCredentials(authNonce, tokenNonce)
	c := imbee.Corporate{Name: name, TimeZone: timezone, Language: imbee.Languages[0], CreatedAt: s.now().UTC().Truncate(time.Second)}
	err := s.inWrite(ctx, func(q querier) (err error) {
		c.ID, err = insertCorporate(ctx, q, c, authNonce, tokenNonce, creds)
		return err
	})
	if err != nil {
		return imbee.Corporate{}, imbee.CorporateCredentials{}, err
	}
	return c, creds, nil
}

func insertCorporate(ctx context.Context, q querier, c imbee.Corporate, authNonce, tokenNonce []byte, creds imbee.CorporateCredentials) (id int64, err error) {
	err = q.QueryRowContext(ctx, `
		INSERT INTO corporates (name, timezone, auth_nonce, corporate_token_nonce, corporate_token_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		RETURNING id`,
		c.Name, c.TimeZone, authNonce, tokenNonce, secret.Hash(creds.CorporateToken), unix(c.CreatedAt),
	).Scan(&id)
	if err != nil {
		return 0, internal("create corporate", err)
	}
	if err := routeAuth(ctx, q, id, creds.Auth); err != nil {
		return 0, err
	}
	return id, nil
}

// routeAuth makes auth, the corporate's Authorization, find it: its hash
// is the key of the corporate's routing row (corporate_routes).
func routeAuth(ctx context.Context, q querier, corporateID int64, auth string) error {
	if _, err := q.ExecContext(ctx, `INSERT INTO corporate_routes (auth_hash, corporate_id) VALUES (?, ?)`,
		secret.Hash(auth), corporateID); err != nil {
		return internal("route corporate", err)
	}
	return nil
}

func (s *Store) corporateCredentials(authNonce, tokenNonce []byte) imbee.CorporateCredentials {
	return imbee.CorporateCredentials{
		Auth:           s.keys.Derive(secret.Auth, authNonce),
		CorporateToken: s.keys.Derive(secret.CorporateToken, tokenNonce),
	}
}

// RotateCorporate replaces the corporate's credentials; the old ones stop
// working at once. It returns CodeNotFound for an unknown id.
func (s *Store) RotateCorporate(ctx context.Context, id int64) (imbee.CorporateCredentials, error) {
	authNonce, tokenNonce := secret.NewNonce(), secret.NewNonce()
	creds := s.corporateCredentials(authNonce, tokenNonce)
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
		// The old Authorization's row goes (a scan of one row per
		// corporate: rotations are rare), the new one takes its place.
		if _, err := q.ExecContext(ctx, `DELETE FROM corporate_routes WHERE corporate_id = ?`, id); err != nil {
			return internal("rotate corporate", err)
		}
		if err := routeAuth(ctx, q, id, creds.Auth); err != nil {
			return err
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

// routedCorporate is the FROM of a read that finds a corporate by its
// Authorization's hash (r.auth_hash = ?): its routing row, and the
// corporate it names. Every other table a credential check joins is joined
// on r.corporate_id, so the read touches one tenant's rows.
const routedCorporate = `corporate_routes r JOIN corporates ON corporates.id = r.corporate_id`

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
	var nonce []byte
	byKey, args, check := s.userByAPIKey("r.corporate_id", apikey)
	err := s.reads.QueryRowContext(ctx, `
		SELECT `+corporateColumns+`, u.id, u.unique_id, u.idsha, u.secret_nonce
		FROM `+routedCorporate+`
		LEFT JOIN users u ON `+byKey+`
		WHERE r.auth_hash = ? AND corporates.disabled_at IS NULL`, append(args, secret.Hash(auth))...,
	).Scan(r.dest(&userID, &uniqueID, &idsha, &nonce)...)
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
	var tokenHash []byte
	err := s.reads.QueryRowContext(ctx, `
		SELECT `+corporateColumns+`, corporate_token_hash
		FROM `+routedCorporate+` WHERE r.auth_hash = ? AND corporates.disabled_at IS NULL`, secret.Hash(auth),
	).Scan(r.dest(&tokenHash)...)
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
	d.Credentials = s.corporateCredentials(authNonce, tokenNonce)
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
		if d.Corporate.ID, err = insertCorporate(ctx, q, d.Corporate, authNonce, tokenNonce, d.Credentials); err != nil {
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

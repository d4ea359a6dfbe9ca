package store

import (
	"context"
)

// A routing table finds a tenant's row from a token's hash before the
// corporate is known (a link's page, a web session's cookie): keyed by the
// hash alone, it gives the corporate_id and the row's id, and the tenant's
// row is then read with corporate_id in its WHERE (a join in the same
// statement). A routing row is written in the transaction of its row.
// (corporate_routes, the corporates' Authorization hashes, has no row id:
// the corporate is the row.) Links' tokens and sessions' cookies made since
// migration 00017 carry their row instead (keyed.go): link_routes,
// session_routes and app_session_routes only find the older ones.
type route struct {
	table string // its columns: key, corporate_id, and id
	key   string // the column looked up: a token's hash, or a public id
	id    string // the column of the routed row's id
}

// userRoute: the web app's sign-in names a user by idsha alone.
var userRoute = route{"user_routes", "idsha", "user_id"}

// insertRouted runs insert, an INSERT … RETURNING id of one tenant row
// (args its arguments), and routes key to the new row of corporateID. On
// PostgreSQL both are one statement (a data-modifying WITH), so routing
// costs no round trip. It returns sql.ErrNoRows when insert inserted
// nothing (ON CONFLICT DO NOTHING).
func (s *Store) insertRouted(ctx context.Context, q querier, r route, key any, corporateID int64, insert string, args ...any) (id int64, err error) {
	if s.dialect.writableWith {
		err = q.QueryRowContext(ctx, `WITH n AS (`+insert+`)
			INSERT INTO `+r.table+` (`+r.key+`, corporate_id, `+r.id+`) SELECT ?, ?, id FROM n
			RETURNING `+r.id, append(args, key, corporateID)...).Scan(&id)
		return id, err
	}
	if err := q.QueryRowContext(ctx, insert, args...).Scan(&id); err != nil {
		return 0, err
	}
	_, err = q.ExecContext(ctx, `INSERT INTO `+r.table+` (`+r.key+`, corporate_id, `+r.id+`) VALUES (?, ?, ?)`, key, corporateID, id)
	return id, err
}

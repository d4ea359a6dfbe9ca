-- +goose Up
-- A corporate's Authorization and a user's pass carry their row (keyed, as
-- apikeys and link tokens have since 00017):
--   - a corporate made or rotated from now on has no corporate_routes row;
--     older Authorizations keep theirs;
--   - a user's pass_keyed is 1 for a keyed pass, which signs in without a
--     user_routes row; older passes keep their route, and repeats give them
--     back unchanged until the user is rotated.
-- Going below this migration keeps the keyed passes aside (keyed_passes)
-- and gives each keyed corporate a placeholder route, which no
-- Authorization hashes to (older code needs a route, and 00013's Down an
-- auth_hash): keyed Authorizations and passes do not work there until the
-- database comes up again, and coming up restores them.
DELETE FROM corporate_routes WHERE auth_hash = convert_to('keyed corporate ' || corporate_id, 'UTF8');
ALTER TABLE users ADD COLUMN pass_keyed INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS keyed_passes (corporate_id BIGINT NOT NULL, user_id BIGINT NOT NULL, PRIMARY KEY (corporate_id, user_id));
UPDATE users SET pass_keyed = 1
WHERE EXISTS (SELECT 1 FROM keyed_passes k WHERE k.corporate_id = users.corporate_id AND k.user_id = users.id);
DROP TABLE keyed_passes;

-- +goose Down
INSERT INTO corporate_routes (auth_hash, corporate_id)
SELECT convert_to('keyed corporate ' || id, 'UTF8'), id FROM corporates c
WHERE NOT EXISTS (SELECT 1 FROM corporate_routes r WHERE r.corporate_id = c.id);
CREATE TABLE keyed_passes (corporate_id BIGINT NOT NULL, user_id BIGINT NOT NULL, PRIMARY KEY (corporate_id, user_id));
INSERT INTO keyed_passes (corporate_id, user_id) SELECT corporate_id, id FROM users WHERE pass_keyed = 1;
ALTER TABLE users DROP COLUMN pass_keyed;

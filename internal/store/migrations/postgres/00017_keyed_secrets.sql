-- +goose Up
-- Secrets that carry their row (#16): an apikey, a link's token and a web
-- chat or web app session's cookie made from now on name their row (sealed, see
-- secret.Keyed) and are found by primary key, so creating them no longer
-- writes to an index keyed by a random hash. The secrets handed out before
-- keep working through what found them until now:
--   - users.apikey_hash stays for them, NULL for keyed apikeys; its unique
--     key becomes a partial index (legacy rows only).
--   - a link's token_keyed is 1 for a keyed token; older links keep their
--     link_routes row.
--   - a web chat or app session keeps its keyed cookie's hash in
--     token_hash; older sessions keep their session_routes or
--     app_session_routes row.

-- The unique key was named by PostgreSQL: it is dropped by what it is.
-- +goose StatementBegin
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.conname FROM pg_constraint c
        WHERE c.conrelid = 'users'::regclass AND c.contype = 'u'
        AND (SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_attribute a
             WHERE a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)) = ARRAY['apikey_hash', 'corporate_id']
    LOOP
        EXECUTE format('ALTER TABLE users DROP CONSTRAINT %I', r.conname);
    END LOOP;
END $$;
-- +goose StatementEnd
ALTER TABLE users ALTER COLUMN apikey_hash DROP NOT NULL;
CREATE UNIQUE INDEX users_legacy_apikey ON users (corporate_id, apikey_hash) WHERE apikey_hash IS NOT NULL;
ALTER TABLE links ADD COLUMN token_keyed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN token_hash BYTEA;
ALTER TABLE app_sessions ADD COLUMN token_hash BYTEA;
-- A database taken below 00017 and up again gets its keyed secrets back
-- (the Down keeps their rows aside in keyed_rows).
CREATE TABLE IF NOT EXISTS keyed_rows (
    tbl          TEXT    NOT NULL,
    corporate_id BIGINT  NOT NULL,
    id           BIGINT  NOT NULL,
    token_hash   BYTEA
);
UPDATE users SET apikey_hash = NULL
WHERE EXISTS (SELECT 1 FROM keyed_rows k WHERE k.tbl = 'users' AND k.corporate_id = users.corporate_id AND k.id = users.id);
UPDATE links SET token_keyed = 1
WHERE EXISTS (SELECT 1 FROM keyed_rows k WHERE k.tbl = 'links' AND k.corporate_id = links.corporate_id AND k.id = links.id);
UPDATE sessions SET token_hash = (SELECT k.token_hash FROM keyed_rows k
    WHERE k.tbl = 'sessions' AND k.corporate_id = sessions.corporate_id AND k.id = sessions.id)
WHERE EXISTS (SELECT 1 FROM keyed_rows k WHERE k.tbl = 'sessions' AND k.corporate_id = sessions.corporate_id AND k.id = sessions.id);
UPDATE app_sessions SET token_hash = (SELECT k.token_hash FROM keyed_rows k
    WHERE k.tbl = 'app_sessions' AND k.corporate_id = app_sessions.corporate_id AND k.id = app_sessions.id)
WHERE EXISTS (SELECT 1 FROM keyed_rows k WHERE k.tbl = 'app_sessions' AND k.corporate_id = app_sessions.corporate_id AND k.id = app_sessions.id);
DELETE FROM link_routes
WHERE EXISTS (SELECT 1 FROM keyed_rows k WHERE k.tbl = 'links' AND k.corporate_id = link_routes.corporate_id AND k.id = link_routes.link_id);
DELETE FROM session_routes
WHERE EXISTS (SELECT 1 FROM keyed_rows k WHERE k.tbl = 'sessions' AND k.corporate_id = session_routes.corporate_id AND k.id = session_routes.session_id);
DELETE FROM app_session_routes
WHERE EXISTS (SELECT 1 FROM keyed_rows k WHERE k.tbl = 'app_sessions' AND k.corporate_id = app_session_routes.corporate_id AND k.id = app_session_routes.session_id);
DROP TABLE keyed_rows;

-- +goose Down
-- The old schema cannot find a keyed secret: going below 00017 ends them
-- (rotate the users', reissue the links) until the database comes up again.
-- Their rows are kept aside in keyed_rows for the Up to restore; meanwhile
-- a keyed user's apikey_hash holds its nonce, and keyed links and sessions
-- get routes by their nonce or the hash of their cookie's random part: each
-- unique, and the hash of no secret.
CREATE TABLE keyed_rows (
    tbl          TEXT    NOT NULL,
    corporate_id BIGINT  NOT NULL,
    id           BIGINT  NOT NULL,
    token_hash   BYTEA
);
INSERT INTO keyed_rows (tbl, corporate_id, id) SELECT 'users', corporate_id, id FROM users WHERE apikey_hash IS NULL;
INSERT INTO keyed_rows (tbl, corporate_id, id) SELECT 'links', corporate_id, id FROM links WHERE token_keyed = 1;
INSERT INTO keyed_rows (tbl, corporate_id, id, token_hash) SELECT 'sessions', corporate_id, id, token_hash FROM sessions WHERE token_hash IS NOT NULL;
INSERT INTO keyed_rows (tbl, corporate_id, id, token_hash) SELECT 'app_sessions', corporate_id, id, token_hash FROM app_sessions WHERE token_hash IS NOT NULL;
UPDATE users SET apikey_hash = secret_nonce WHERE apikey_hash IS NULL;
INSERT INTO link_routes (token_hash, corporate_id, link_id) SELECT token_nonce, corporate_id, id FROM links WHERE token_keyed = 1;
INSERT INTO session_routes (token_hash, corporate_id, session_id) SELECT token_hash, corporate_id, id FROM sessions WHERE token_hash IS NOT NULL;
INSERT INTO app_session_routes (token_hash, corporate_id, session_id) SELECT token_hash, corporate_id, id FROM app_sessions WHERE token_hash IS NOT NULL;
ALTER TABLE app_sessions DROP COLUMN token_hash;
ALTER TABLE sessions DROP COLUMN token_hash;
ALTER TABLE links DROP COLUMN token_keyed;
DROP INDEX users_legacy_apikey;
ALTER TABLE users ALTER COLUMN apikey_hash SET NOT NULL;
ALTER TABLE users ADD UNIQUE (corporate_id, apikey_hash);

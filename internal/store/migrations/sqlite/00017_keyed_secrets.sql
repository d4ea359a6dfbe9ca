-- +goose NO TRANSACTION
-- +goose Up
-- Secrets that carry their row (#16): an apikey, a link's token and a web
-- chat or web app session's cookie made from now on name their row (sealed, see
-- secret.Keyed) and are found by primary key, so creating them no longer
-- writes to an index keyed by a random hash. The secrets handed out before
-- keep working through what found them until now:
--   - users.apikey_hash stays for them, NULL for keyed apikeys; its unique
--     index becomes partial (legacy rows only), so keyed users add nothing
--     to it.
--   - a link's token_keyed is 1 for a keyed token; older links keep their
--     link_routes row.
--   - a web chat or app session keeps its keyed cookie's hash in
--     token_hash; older sessions keep their session_routes or
--     app_session_routes row.
--
-- Making apikey_hash nullable rebuilds users. With foreign keys enforced,
-- dropping users would make every row of its six child tables a pending
-- violation, and re-inserting each user would then search the children
-- that have no index on the key: so foreign keys are off for the rebuild
-- (outside a transaction: SQLite ignores the pragma inside one, and the
-- migration runs on one connection) and checked in full before the commit.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE old_users AS SELECT * FROM users;
DROP TABLE users;
CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id),
    unique_id    TEXT    NOT NULL,
    idsha        TEXT    NOT NULL,
    secret_nonce BLOB    NOT NULL,
    apikey_hash  BLOB,
    created_at   INTEGER NOT NULL,
    UNIQUE (corporate_id, id),
    UNIQUE (corporate_id, unique_id),
    UNIQUE (corporate_id, idsha)
);
INSERT INTO users (id, corporate_id, unique_id, idsha, secret_nonce, apikey_hash, created_at)
SELECT id, corporate_id, unique_id, idsha, secret_nonce, apikey_hash, created_at FROM old_users;
DROP TABLE old_users;
CREATE UNIQUE INDEX users_legacy_apikey ON users (corporate_id, apikey_hash) WHERE apikey_hash IS NOT NULL;
ALTER TABLE links ADD COLUMN token_keyed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN token_hash BLOB;
ALTER TABLE app_sessions ADD COLUMN token_hash BLOB;
-- A database taken below 00017 and up again gets its keyed secrets back
-- (the Down keeps their rows aside in keyed_rows).
CREATE TABLE IF NOT EXISTS keyed_rows (
    tbl          TEXT    NOT NULL,
    corporate_id INTEGER NOT NULL,
    id           INTEGER NOT NULL,
    token_hash   BLOB
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
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
PRAGMA foreign_keys = OFF;
BEGIN;
-- The old schema cannot find a keyed secret: going below 00017 ends them
-- (rotate the users', reissue the links) until the database comes up again.
-- Their rows are kept aside in keyed_rows for the Up to restore; meanwhile
-- a keyed user's apikey_hash holds its nonce, and keyed links and sessions
-- get routes by their nonce or the hash of their cookie's random part: each
-- unique, and the hash of no secret.
CREATE TABLE keyed_rows (
    tbl          TEXT    NOT NULL,
    corporate_id INTEGER NOT NULL,
    id           INTEGER NOT NULL,
    token_hash   BLOB
);
INSERT INTO keyed_rows (tbl, corporate_id, id) SELECT 'users', corporate_id, id FROM users WHERE apikey_hash IS NULL;
INSERT INTO keyed_rows (tbl, corporate_id, id) SELECT 'links', corporate_id, id FROM links WHERE token_keyed = 1;
INSERT INTO keyed_rows (tbl, corporate_id, id, token_hash) SELECT 'sessions', corporate_id, id, token_hash FROM sessions WHERE token_hash IS NOT NULL;
INSERT INTO keyed_rows (tbl, corporate_id, id, token_hash) SELECT 'app_sessions', corporate_id, id, token_hash FROM app_sessions WHERE token_hash IS NOT NULL;
UPDATE users SET apikey_hash = secret_nonce WHERE apikey_hash IS NULL;
INSERT INTO link_routes (token_hash, corporate_id, link_id) SELECT token_nonce, corporate_id, id FROM links WHERE token_keyed = 1;
INSERT INTO session_routes (token_hash, corporate_id, session_id) SELECT token_hash, corporate_id, id FROM sessions WHERE token_hash IS NOT NULL;
INSERT INTO app_session_routes (token_hash, corporate_id, session_id) SELECT token_hash, corporate_id, id FROM app_sessions WHERE token_hash IS NOT NULL;
CREATE TABLE old_users AS SELECT * FROM users;
DROP TABLE users;
CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id),
    unique_id    TEXT    NOT NULL,
    idsha        TEXT    NOT NULL,
    secret_nonce BLOB    NOT NULL,
    apikey_hash  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (corporate_id, id),
    UNIQUE (corporate_id, unique_id),
    UNIQUE (corporate_id, idsha),
    UNIQUE (corporate_id, apikey_hash)
);
INSERT INTO users (id, corporate_id, unique_id, idsha, secret_nonce, apikey_hash, created_at)
SELECT id, corporate_id, unique_id, idsha, secret_nonce, apikey_hash, created_at FROM old_users;
DROP TABLE old_users;
ALTER TABLE links DROP COLUMN token_keyed;
ALTER TABLE app_sessions DROP COLUMN token_hash;
ALTER TABLE sessions DROP COLUMN token_hash;
COMMIT;
PRAGMA foreign_keys = ON;

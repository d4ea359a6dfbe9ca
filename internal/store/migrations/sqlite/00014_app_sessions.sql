-- +goose Up
-- The web app (#15): a person signs in with virtualUser and pass, so a user
-- is found by its idsha before its corporate is known (a routing table, as
-- for tokens), and a sign-in opens an app session on any of the user's
-- chats. An app session carries the user's secret_nonce from its sign-in:
-- rotating the user's credentials changes the nonce, which ends it.
CREATE TABLE user_routes (
    idsha        TEXT    PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    FOREIGN KEY (corporate_id, user_id) REFERENCES users (corporate_id, id)
) WITHOUT ROWID;
INSERT INTO user_routes (idsha, corporate_id, user_id) SELECT idsha, corporate_id, id FROM users;

CREATE TABLE app_sessions (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    secret_nonce BLOB    NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (corporate_id, id),
    FOREIGN KEY (corporate_id, user_id) REFERENCES users (corporate_id, id)
);
CREATE INDEX app_sessions_expiry ON app_sessions (corporate_id, expires_at);

CREATE TABLE app_session_routes (
    token_hash   BLOB    PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    session_id   INTEGER NOT NULL,
    FOREIGN KEY (corporate_id, session_id) REFERENCES app_sessions (corporate_id, id)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE app_session_routes;
DROP TABLE app_sessions;
DROP TABLE user_routes;

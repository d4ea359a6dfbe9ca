-- +goose Up
-- Every table carries corporate_id (the tenant), so the schema can later be
-- distributed by tenant. Times are Unix seconds. Secrets are never stored:
-- only the nonce they are derived from (useless without the server key, which
-- lives outside the database) and their SHA-256 for lookup.

CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE corporates (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT    NOT NULL,
    timezone             TEXT    NOT NULL DEFAULT 'UTC',
    auth_nonce           BLOB    NOT NULL,
    auth_hash            BLOB    NOT NULL UNIQUE,
    corporate_token_nonce BLOB   NOT NULL,
    corporate_token_hash BLOB    NOT NULL UNIQUE,
    created_at           INTEGER NOT NULL
);

CREATE TABLE bots (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id),
    idsha        TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX bots_corporate ON bots (corporate_id);

CREATE TABLE users (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id),
    unique_id    TEXT    NOT NULL, -- the integrator's id: uniqueIdSha / virtual_user
    idsha        TEXT    NOT NULL UNIQUE,
    secret_nonce BLOB    NOT NULL, -- pass and apikey are derived from it
    apikey_hash  BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    UNIQUE (corporate_id, unique_id)
);

CREATE TABLE devices (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    platform     TEXT    NOT NULL,
    device_name  TEXT    NOT NULL,
    hardware_id  TEXT    NOT NULL,
    os_version   TEXT    NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    UNIQUE (user_id, platform, device_name, hardware_id, os_version)
);

CREATE TABLE conversations (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id),
    public_id    TEXT    NOT NULL UNIQUE,
    type         TEXT    NOT NULL CHECK (type IN ('chat', 'group')),
    name         TEXT    NOT NULL DEFAULT '',
    -- For 1:1 chats, the two members' idsha in sorted order: one chat per pair.
    pair_key     TEXT,
    created_at   INTEGER NOT NULL,
    UNIQUE (corporate_id, pair_key)
);

CREATE TABLE conversation_members (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    corporate_id    INTEGER NOT NULL,
    position        INTEGER NOT NULL, -- 0 is the creator
    idsha           TEXT    NOT NULL,
    is_bot          INTEGER NOT NULL,
    is_admin        INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, idsha)
);

CREATE TABLE links (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id),
    user_id      INTEGER NOT NULL REFERENCES users (id),
    bot_id       INTEGER NOT NULL REFERENCES bots (id),
    token_nonce  BLOB    NOT NULL,
    token_hash   BLOB    NOT NULL UNIQUE,
    max_uses     INTEGER NOT NULL CHECK (max_uses >= 1),
    uses         INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    date_limit   TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    -- 1 while this is the (user, bot) pair's current link; cleared when a
    -- new link replaces an ended one. The partial index below lets the
    -- database, not the code, keep one current link per pair.
    current      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX links_current ON links (user_id, bot_id) WHERE current = 1;

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    corporate_id    INTEGER NOT NULL,
    token_hash      BLOB    NOT NULL UNIQUE,
    link_id         INTEGER NOT NULL REFERENCES links (id),
    user_id         INTEGER NOT NULL REFERENCES users (id),
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL
);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    corporate_id    INTEGER NOT NULL,
    link_id         INTEGER NOT NULL REFERENCES links (id),
    channel         TEXT    NOT NULL CHECK (channel IN ('mail', 'sms')),
    recipient       TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    provider_id     TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_link ON deliveries (link_id);

-- +goose Down
DROP TABLE deliveries;
DROP TABLE sessions;
DROP TABLE links;
DROP TABLE conversation_members;
DROP TABLE conversations;
DROP TABLE devices;
DROP TABLE users;
DROP TABLE bots;
DROP TABLE corporates;
DROP TABLE meta;

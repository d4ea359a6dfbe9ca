-- +goose Up
-- Every tenant table is keyed by its tenant: corporate_id leads each
-- primary, unique and foreign key (the PostgreSQL twin says why). Here
-- `id INTEGER PRIMARY KEY` stays the row's address in the file (SQLite is
-- one server, never distributed), and the tables other tables reference
-- gain UNIQUE (corporate_id, id) for their foreign keys to name.
--
-- SQLite changes keys by rebuilding tables, in this migration's
-- transaction with foreign keys enforced: the old tables are renamed away
-- first (their foreign keys follow the renames), the new ones made and
-- filled parents first, then the old ones dropped children first.
-- corporates is never renamed, or the foreign keys of every other table
-- that references it would follow it away: it is copied aside, dropped and
-- made again under its name, with the foreign keys deferred to the commit
-- so that its rows come back before they are checked.
--
-- The hashes a request is routed by before its corporate is known (a
-- corporate's Authorization, a link's token, a web session's cookie) move
-- to small routing tables keyed by the hash alone (WITHOUT ROWID: a lookup
-- is one search of one b-tree).

ALTER TABLE link_attempts RENAME TO old_link_attempts;
ALTER TABLE sessions RENAME TO old_sessions;
ALTER TABLE deliveries RENAME TO old_deliveries;
ALTER TABLE webhook_events RENAME TO old_webhook_events;
ALTER TABLE messages RENAME TO old_messages;
ALTER TABLE conversation_members RENAME TO old_conversation_members;
ALTER TABLE devices RENAME TO old_devices;
ALTER TABLE links RENAME TO old_links;
ALTER TABLE conversations RENAME TO old_conversations;
ALTER TABLE users RENAME TO old_users;
ALTER TABLE bots RENAME TO old_bots;
CREATE TABLE old_corporates AS SELECT * FROM corporates;
PRAGMA defer_foreign_keys = ON;
DROP TABLE corporates;

CREATE TABLE corporates (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT    NOT NULL,
    timezone              TEXT    NOT NULL DEFAULT 'UTC',
    auth_nonce            BLOB    NOT NULL,
    corporate_token_nonce BLOB    NOT NULL,
    corporate_token_hash  BLOB    NOT NULL,
    created_at            INTEGER NOT NULL,
    language              TEXT    NOT NULL DEFAULT 'en',
    sender_name           TEXT    NOT NULL DEFAULT '',
    rate_limit            REAL,
    rate_burst            INTEGER,
    disabled_at           INTEGER
);
INSERT INTO corporates (id, name, timezone, auth_nonce, corporate_token_nonce, corporate_token_hash, created_at,
    language, sender_name, rate_limit, rate_burst, disabled_at)
SELECT id, name, timezone, auth_nonce, corporate_token_nonce, corporate_token_hash, created_at,
    language, sender_name, rate_limit, rate_burst, disabled_at FROM old_corporates;

CREATE TABLE corporate_routes (
    auth_hash    BLOB    PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id)
) WITHOUT ROWID;
INSERT INTO corporate_routes (auth_hash, corporate_id) SELECT auth_hash, id FROM old_corporates;

CREATE TABLE bots (
    id            INTEGER PRIMARY KEY,
    corporate_id  INTEGER NOT NULL REFERENCES corporates (id),
    idsha         TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    webhook_url   TEXT    NOT NULL DEFAULT '',
    webhook_nonce BLOB,
    revoked_at    INTEGER,
    UNIQUE (corporate_id, id),
    UNIQUE (corporate_id, idsha)
);
INSERT INTO bots (id, corporate_id, idsha, name, created_at, webhook_url, webhook_nonce, revoked_at)
SELECT id, corporate_id, idsha, name, created_at, webhook_url, webhook_nonce, revoked_at FROM old_bots;

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

CREATE TABLE devices (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    platform     TEXT    NOT NULL,
    device_name  TEXT    NOT NULL,
    hardware_id  TEXT    NOT NULL,
    os_version   TEXT    NOT NULL,
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    UNIQUE (corporate_id, user_id, platform, device_name, hardware_id, os_version),
    FOREIGN KEY (corporate_id, user_id) REFERENCES users (corporate_id, id)
);
INSERT INTO devices (id, corporate_id, user_id, platform, device_name, hardware_id, os_version, first_seen, last_seen)
SELECT id, corporate_id, user_id, platform, device_name, hardware_id, os_version, first_seen, last_seen FROM old_devices;

CREATE TABLE conversations (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id),
    public_id    TEXT    NOT NULL,
    type         TEXT    NOT NULL CHECK (type IN ('chat', 'group')),
    name         TEXT    NOT NULL DEFAULT '',
    -- For 1:1 chats, the two members' idsha in sorted order: one chat per pair.
    pair_key     TEXT,
    created_at   INTEGER NOT NULL,
    last_seq     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (corporate_id, id),
    UNIQUE (corporate_id, public_id),
    UNIQUE (corporate_id, pair_key)
);
INSERT INTO conversations (id, corporate_id, public_id, type, name, pair_key, created_at, last_seq)
SELECT id, corporate_id, public_id, type, name, pair_key, created_at, last_seq FROM old_conversations;

CREATE TABLE conversation_members (
    corporate_id    INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL,
    position        INTEGER NOT NULL, -- 0 is the creator
    idsha           TEXT    NOT NULL,
    is_bot          INTEGER NOT NULL,
    is_admin        INTEGER NOT NULL,
    read_seq        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (corporate_id, conversation_id, idsha),
    FOREIGN KEY (corporate_id, conversation_id) REFERENCES conversations (corporate_id, id)
);
INSERT INTO conversation_members (corporate_id, conversation_id, position, idsha, is_bot, is_admin, read_seq)
SELECT corporate_id, conversation_id, position, idsha, is_bot, is_admin, read_seq FROM old_conversation_members;

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    corporate_id    INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL,
    seq             INTEGER NOT NULL,
    sender          TEXT    NOT NULL, -- the member's idsha
    sender_is_bot   INTEGER NOT NULL,
    client_msg_id   TEXT,             -- the sender's retry key; NULL when none was given
    text            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (corporate_id, conversation_id, seq),
    UNIQUE (corporate_id, conversation_id, sender, client_msg_id),
    FOREIGN KEY (corporate_id, conversation_id) REFERENCES conversations (corporate_id, id)
);
INSERT INTO messages (id, corporate_id, conversation_id, seq, sender, sender_is_bot, client_msg_id, text, created_at)
SELECT id, corporate_id, conversation_id, seq, sender, sender_is_bot, client_msg_id, text, created_at FROM old_messages;

CREATE TABLE links (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    bot_id       INTEGER NOT NULL,
    token_nonce  BLOB    NOT NULL,
    max_uses     INTEGER NOT NULL CHECK (max_uses >= 1),
    uses         INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    date_limit   TEXT    NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    -- 1 while this is the (user, bot) pair's current link (links_current).
    current      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL,
    UNIQUE (corporate_id, id),
    FOREIGN KEY (corporate_id, user_id) REFERENCES users (corporate_id, id),
    FOREIGN KEY (corporate_id, bot_id) REFERENCES bots (corporate_id, id)
);
INSERT INTO links (id, corporate_id, user_id, bot_id, token_nonce, max_uses, uses, date_limit, expires_at, revoked_at, current, created_at)
SELECT id, corporate_id, user_id, bot_id, token_nonce, max_uses, uses, date_limit, expires_at, revoked_at, current, created_at FROM old_links;

CREATE TABLE link_routes (
    token_hash   BLOB    PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    link_id      INTEGER NOT NULL,
    FOREIGN KEY (corporate_id, link_id) REFERENCES links (corporate_id, id)
) WITHOUT ROWID;
INSERT INTO link_routes (token_hash, corporate_id, link_id) SELECT token_hash, corporate_id, id FROM old_links;

CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    corporate_id    INTEGER NOT NULL,
    link_id         INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (corporate_id, id),
    FOREIGN KEY (corporate_id, link_id) REFERENCES links (corporate_id, id),
    FOREIGN KEY (corporate_id, user_id) REFERENCES users (corporate_id, id),
    FOREIGN KEY (corporate_id, conversation_id) REFERENCES conversations (corporate_id, id)
);
INSERT INTO sessions (id, corporate_id, link_id, user_id, conversation_id, expires_at, created_at)
SELECT id, corporate_id, link_id, user_id, conversation_id, expires_at, created_at FROM old_sessions;

CREATE TABLE session_routes (
    token_hash   BLOB    PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    session_id   INTEGER NOT NULL,
    FOREIGN KEY (corporate_id, session_id) REFERENCES sessions (corporate_id, id)
) WITHOUT ROWID;
INSERT INTO session_routes (token_hash, corporate_id, session_id) SELECT token_hash, corporate_id, id FROM old_sessions;

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    corporate_id    INTEGER NOT NULL,
    link_id         INTEGER NOT NULL,
    channel         TEXT    NOT NULL CHECK (channel IN ('mail', 'sms')),
    recipient       TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    provider_id     TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    last_reason     TEXT    NOT NULL DEFAULT '',
    recipient_key   TEXT,
    FOREIGN KEY (corporate_id, link_id) REFERENCES links (corporate_id, id)
);
INSERT INTO deliveries (id, corporate_id, link_id, channel, recipient, status, attempts, next_attempt_at, last_error,
    provider_id, created_at, updated_at, last_reason, recipient_key)
SELECT id, corporate_id, link_id, channel, recipient, status, attempts, next_attempt_at, last_error,
    provider_id, created_at, updated_at, last_reason, recipient_key FROM old_deliveries;

CREATE TABLE webhook_events (
    id              INTEGER PRIMARY KEY,
    corporate_id    INTEGER NOT NULL,
    bot_id          INTEGER NOT NULL,
    event_id        TEXT    NOT NULL, -- webhook-id: the same on every retry
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (corporate_id, bot_id, event_id),
    FOREIGN KEY (corporate_id, bot_id) REFERENCES bots (corporate_id, id)
);
INSERT INTO webhook_events (id, corporate_id, bot_id, event_id, payload, status, attempts, next_attempt_at, last_error, created_at, updated_at)
SELECT id, corporate_id, bot_id, event_id, payload, status, attempts, next_attempt_at, last_error, created_at, updated_at FROM old_webhook_events;

-- A link's audit trail takes its link's corporate.
CREATE TABLE link_attempts (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    link_id      INTEGER NOT NULL,
    at_us        INTEGER NOT NULL,
    method       TEXT    NOT NULL,
    result       TEXT    NOT NULL,
    client_hash  TEXT    NOT NULL,
    agent        TEXT    NOT NULL,
    FOREIGN KEY (corporate_id, link_id) REFERENCES links (corporate_id, id)
);
INSERT INTO link_attempts (id, corporate_id, link_id, at_us, method, result, client_hash, agent)
SELECT a.id, l.corporate_id, a.link_id, a.at_us, a.method, a.result, a.client_hash, a.agent
FROM old_link_attempts a JOIN links l ON l.id = a.link_id;

DROP TABLE old_link_attempts;
DROP TABLE old_sessions;
DROP TABLE old_deliveries;
DROP TABLE old_webhook_events;
DROP TABLE old_messages;
DROP TABLE old_conversation_members;
DROP TABLE old_devices;
DROP TABLE old_links;
DROP TABLE old_conversations;
DROP TABLE old_users;
DROP TABLE old_bots;
DROP TABLE old_corporates;

-- The indexes of the tables rebuilt, each led by corporate_id.
CREATE UNIQUE INDEX links_current ON links (corporate_id, user_id, bot_id) WHERE current = 1;
CREATE INDEX conversation_members_idsha ON conversation_members (corporate_id, idsha);
CREATE INDEX deliveries_link ON deliveries (corporate_id, link_id);
CREATE INDEX deliveries_recipient ON deliveries (corporate_id, recipient_key, created_at);
CREATE INDEX deliveries_queue ON deliveries (corporate_id, status, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');
CREATE INDEX webhook_events_queue ON webhook_events (corporate_id, status, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');
CREATE INDEX link_attempts_link ON link_attempts (corporate_id, link_id, at_us);
-- The operator's listings and the metrics read across tenants.
CREATE INDEX deliveries_status_channel ON deliveries (status, channel);
CREATE INDEX webhook_events_due ON webhook_events (status, next_attempt_at);

-- +goose Down
-- The schema before: keys on id alone, the hashes back on their rows.
ALTER TABLE link_attempts RENAME TO new_link_attempts;
ALTER TABLE sessions RENAME TO new_sessions;
ALTER TABLE deliveries RENAME TO new_deliveries;
ALTER TABLE webhook_events RENAME TO new_webhook_events;
ALTER TABLE messages RENAME TO new_messages;
ALTER TABLE conversation_members RENAME TO new_conversation_members;
ALTER TABLE devices RENAME TO new_devices;
ALTER TABLE links RENAME TO new_links;
ALTER TABLE conversations RENAME TO new_conversations;
ALTER TABLE users RENAME TO new_users;
ALTER TABLE bots RENAME TO new_bots;
ALTER TABLE session_routes RENAME TO new_session_routes;
ALTER TABLE link_routes RENAME TO new_link_routes;
ALTER TABLE corporate_routes RENAME TO new_corporate_routes;
CREATE TABLE new_corporates AS SELECT * FROM corporates;
PRAGMA defer_foreign_keys = ON;
DROP TABLE corporates;
CREATE TABLE corporates (
    id                   INTEGER PRIMARY KEY,
    name                 TEXT    NOT NULL,
    timezone             TEXT    NOT NULL DEFAULT 'UTC',
    auth_nonce           BLOB    NOT NULL,
    auth_hash            BLOB    NOT NULL UNIQUE,
    corporate_token_nonce BLOB   NOT NULL,
    corporate_token_hash BLOB    NOT NULL UNIQUE,
    created_at           INTEGER NOT NULL
, language TEXT NOT NULL DEFAULT 'en', sender_name TEXT NOT NULL DEFAULT '', rate_limit REAL, rate_burst INTEGER, disabled_at INTEGER);
INSERT INTO corporates (id, name, timezone, auth_nonce, auth_hash, corporate_token_nonce, corporate_token_hash, created_at, language, sender_name, rate_limit, rate_burst, disabled_at)
SELECT x.id, x.name, x.timezone, x.auth_nonce, (SELECT r.auth_hash FROM new_corporate_routes r WHERE r.corporate_id = x.id), x.corporate_token_nonce, x.corporate_token_hash, x.created_at, x.language, x.sender_name, x.rate_limit, x.rate_burst, x.disabled_at FROM new_corporates x;
CREATE TABLE bots (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id),
    idsha        TEXT    NOT NULL UNIQUE,
    name         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
, webhook_url TEXT NOT NULL DEFAULT '', webhook_nonce BLOB, revoked_at INTEGER);
INSERT INTO bots (id, corporate_id, idsha, name, created_at, webhook_url, webhook_nonce, revoked_at)
SELECT x.id, x.corporate_id, x.idsha, x.name, x.created_at, x.webhook_url, x.webhook_nonce, x.revoked_at FROM new_bots x;
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
INSERT INTO users (id, corporate_id, unique_id, idsha, secret_nonce, apikey_hash, created_at)
SELECT x.id, x.corporate_id, x.unique_id, x.idsha, x.secret_nonce, x.apikey_hash, x.created_at FROM new_users x;
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
INSERT INTO devices (id, corporate_id, user_id, platform, device_name, hardware_id, os_version, first_seen, last_seen)
SELECT x.id, x.corporate_id, x.user_id, x.platform, x.device_name, x.hardware_id, x.os_version, x.first_seen, x.last_seen FROM new_devices x;
CREATE TABLE conversations (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL REFERENCES corporates (id),
    public_id    TEXT    NOT NULL UNIQUE,
    type         TEXT    NOT NULL CHECK (type IN ('chat', 'group')),
    name         TEXT    NOT NULL DEFAULT '',
    -- For 1:1 chats, the two members' idsha in sorted order: one chat per pair.
    pair_key     TEXT,
    created_at   INTEGER NOT NULL, last_seq INTEGER NOT NULL DEFAULT 0,
    UNIQUE (corporate_id, pair_key)
);
INSERT INTO conversations (id, corporate_id, public_id, type, name, pair_key, created_at, last_seq)
SELECT x.id, x.corporate_id, x.public_id, x.type, x.name, x.pair_key, x.created_at, x.last_seq FROM new_conversations x;
CREATE TABLE conversation_members (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    corporate_id    INTEGER NOT NULL,
    position        INTEGER NOT NULL, -- 0 is the creator
    idsha           TEXT    NOT NULL,
    is_bot          INTEGER NOT NULL,
    is_admin        INTEGER NOT NULL, read_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, idsha)
);
INSERT INTO conversation_members (conversation_id, corporate_id, position, idsha, is_bot, is_admin, read_seq)
SELECT x.conversation_id, x.corporate_id, x.position, x.idsha, x.is_bot, x.is_admin, x.read_seq FROM new_conversation_members x;
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    corporate_id    INTEGER NOT NULL,
    conversation_id INTEGER NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    sender          TEXT    NOT NULL, -- the member's idsha
    sender_is_bot   INTEGER NOT NULL,
    client_msg_id   TEXT,             -- the sender's retry key; NULL when none was given
    text            TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    UNIQUE (conversation_id, seq),
    UNIQUE (conversation_id, sender, client_msg_id)
);
INSERT INTO messages (id, corporate_id, conversation_id, seq, sender, sender_is_bot, client_msg_id, text, created_at)
SELECT x.id, x.corporate_id, x.conversation_id, x.seq, x.sender, x.sender_is_bot, x.client_msg_id, x.text, x.created_at FROM new_messages x;
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
INSERT INTO links (id, corporate_id, user_id, bot_id, token_nonce, token_hash, max_uses, uses, date_limit, expires_at, revoked_at, current, created_at)
SELECT x.id, x.corporate_id, x.user_id, x.bot_id, x.token_nonce, (SELECT r.token_hash FROM new_link_routes r WHERE r.corporate_id = x.corporate_id AND r.link_id = x.id), x.max_uses, x.uses, x.date_limit, x.expires_at, x.revoked_at, x.current, x.created_at FROM new_links x;
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
INSERT INTO sessions (id, corporate_id, token_hash, link_id, user_id, conversation_id, expires_at, created_at)
SELECT x.id, x.corporate_id, (SELECT r.token_hash FROM new_session_routes r WHERE r.corporate_id = x.corporate_id AND r.session_id = x.id), x.link_id, x.user_id, x.conversation_id, x.expires_at, x.created_at FROM new_sessions x;
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
, last_reason TEXT NOT NULL DEFAULT '', recipient_key TEXT);
INSERT INTO deliveries (id, corporate_id, link_id, channel, recipient, status, attempts, next_attempt_at, last_error, provider_id, created_at, updated_at, last_reason, recipient_key)
SELECT x.id, x.corporate_id, x.link_id, x.channel, x.recipient, x.status, x.attempts, x.next_attempt_at, x.last_error, x.provider_id, x.created_at, x.updated_at, x.last_reason, x.recipient_key FROM new_deliveries x;
CREATE TABLE webhook_events (
    id              INTEGER PRIMARY KEY,
    corporate_id    INTEGER NOT NULL,
    bot_id          INTEGER NOT NULL REFERENCES bots (id),
    event_id        TEXT    NOT NULL, -- webhook-id: the same on every retry
    payload         TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'queued',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    UNIQUE (bot_id, event_id)
);
INSERT INTO webhook_events (id, corporate_id, bot_id, event_id, payload, status, attempts, next_attempt_at, last_error, created_at, updated_at)
SELECT x.id, x.corporate_id, x.bot_id, x.event_id, x.payload, x.status, x.attempts, x.next_attempt_at, x.last_error, x.created_at, x.updated_at FROM new_webhook_events x;
CREATE TABLE link_attempts (
    id          INTEGER PRIMARY KEY,
    link_id     INTEGER NOT NULL REFERENCES links (id),
    at_us       INTEGER NOT NULL, -- Unix milliseconds: views are written in batches, after later spends
    method      TEXT    NOT NULL,
    result      TEXT    NOT NULL,
    client_hash TEXT    NOT NULL,
    agent       TEXT    NOT NULL
);
INSERT INTO link_attempts (id, link_id, at_us, method, result, client_hash, agent)
SELECT x.id, x.link_id, x.at_us, x.method, x.result, x.client_hash, x.agent FROM new_link_attempts x;
DROP TABLE new_session_routes;
DROP TABLE new_link_routes;
DROP TABLE new_corporate_routes;
DROP TABLE new_link_attempts;
DROP TABLE new_sessions;
DROP TABLE new_deliveries;
DROP TABLE new_webhook_events;
DROP TABLE new_messages;
DROP TABLE new_conversation_members;
DROP TABLE new_devices;
DROP TABLE new_links;
DROP TABLE new_conversations;
DROP TABLE new_users;
DROP TABLE new_bots;
DROP TABLE new_corporates;
CREATE INDEX bots_corporate ON bots (corporate_id);
CREATE UNIQUE INDEX links_current ON links (user_id, bot_id) WHERE current = 1;
CREATE INDEX deliveries_link ON deliveries (link_id);
CREATE INDEX conversation_members_idsha ON conversation_members (idsha);
CREATE INDEX webhook_events_due ON webhook_events (status, next_attempt_at);
CREATE INDEX link_attempts_link ON link_attempts (link_id, at_us);
CREATE INDEX deliveries_status_channel ON deliveries (status, channel);
CREATE INDEX deliveries_recipient ON deliveries (corporate_id, recipient_key, created_at);
CREATE INDEX deliveries_queue ON deliveries (corporate_id, status, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');
CREATE INDEX webhook_events_queue ON webhook_events (corporate_id, status, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');

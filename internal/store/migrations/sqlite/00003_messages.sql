-- +goose Up
-- Messages of a conversation are numbered 1, 2, 3… by seq: the conversation
-- row's last_seq, raised in the sending transaction, hands them out.
ALTER TABLE conversations ADD COLUMN last_seq INTEGER NOT NULL DEFAULT 0;
-- How far each member has read.
ALTER TABLE conversation_members ADD COLUMN read_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX conversation_members_idsha ON conversation_members (idsha);

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

-- A bot's webhook: every message in its conversations is POSTed there,
-- signed with a secret derived from the nonce (never stored in plaintext).
ALTER TABLE bots ADD COLUMN webhook_url TEXT NOT NULL DEFAULT '';
ALTER TABLE bots ADD COLUMN webhook_nonce BLOB;

-- The webhook queue and its ledger: one row per event per bot.
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
CREATE INDEX webhook_events_due ON webhook_events (status, next_attempt_at);

-- +goose Down
DROP TABLE webhook_events;
ALTER TABLE bots DROP COLUMN webhook_nonce;
ALTER TABLE bots DROP COLUMN webhook_url;
DROP TABLE messages;
DROP INDEX conversation_members_idsha;
ALTER TABLE conversation_members DROP COLUMN read_seq;
ALTER TABLE conversations DROP COLUMN last_seq;

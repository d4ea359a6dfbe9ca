-- +goose Up
-- Idempotency-Key: the first request with a key claims its row (response
-- NULL while it runs); a success stores its response, sealed with a key
-- derived from the server key. principal is 0 for a corporate token, the
-- user's id for a user's apikey: keys are per credential.
CREATE TABLE idempotency_keys (
    corporate_id INTEGER NOT NULL,
    principal    INTEGER NOT NULL,
    key_hash     BLOB    NOT NULL,
    request_hash BLOB    NOT NULL,
    response     BLOB,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (corporate_id, principal, key_hash)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- Each time a link's page was opened or submitted, and what came of it.
-- client_hash is a keyed hash of the client's address; agent a class of
-- its user-agent, never the string itself.
CREATE TABLE link_attempts (
    id          INTEGER PRIMARY KEY,
    link_id     INTEGER NOT NULL REFERENCES links (id),
    at_ms       INTEGER NOT NULL, -- Unix milliseconds: views are written in batches, after later spends
    method      TEXT    NOT NULL,
    result      TEXT    NOT NULL,
    client_hash TEXT    NOT NULL,
    agent       TEXT    NOT NULL
);
CREATE INDEX link_attempts_link ON link_attempts (link_id, at_ms);

-- The metrics count deliveries by status and channel at every scrape: from
-- this index alone, not from the rows.
CREATE INDEX deliveries_status_channel ON deliveries (status, channel);

-- +goose Down
DROP INDEX deliveries_status_channel;
DROP TABLE link_attempts;
DROP TABLE idempotency_keys;

-- +goose Up
-- The outbox of conversation events for the other servers: PostgreSQL
-- only (one SQLite server tells its own sockets). The table is here so
-- that both dialects have the same schema; nothing writes to it.
CREATE TABLE events (
    corporate_id INTEGER NOT NULL,
    id           INTEGER NOT NULL,
    origin       TEXT    NOT NULL,
    type         TEXT    NOT NULL,
    conversation TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    member       TEXT    NOT NULL,
    horizon      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (corporate_id, id)
);

-- +goose Down
DROP TABLE events;

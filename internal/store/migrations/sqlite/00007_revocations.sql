-- +goose Up
-- A disabled corporate's credentials, links and sessions stop working
-- until it is enabled again (Unix seconds; NULL: enabled).
ALTER TABLE corporates ADD COLUMN disabled_at INTEGER;

-- Each ending of access (a link, a user's links, a bot, a user's or a
-- corporate's credentials, a corporate disabled), written in the
-- transaction that ends it. Every server reads the rows after the last it
-- saw and closes the sockets opened with what was ended. AUTOINCREMENT:
-- an id is never reused once old rows are purged, or a server would skip
-- a revocation.
CREATE TABLE revocations (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    corporate_id INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    subject      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX revocations_created ON revocations (created_at);

-- +goose Down
DROP TABLE revocations;
ALTER TABLE corporates DROP COLUMN disabled_at;

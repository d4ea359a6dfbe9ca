-- +goose Up
-- Per-corporate rate limits (NULL: the server's --rate-limit and --rate-burst).
ALTER TABLE corporates ADD COLUMN rate_limit REAL;
ALTER TABLE corporates ADD COLUMN rate_burst INTEGER;
-- A revoked bot takes no new links or messages, and its links stop working.
ALTER TABLE bots ADD COLUMN revoked_at INTEGER;

-- +goose Down
ALTER TABLE bots DROP COLUMN revoked_at;
ALTER TABLE corporates DROP COLUMN rate_burst;
ALTER TABLE corporates DROP COLUMN rate_limit;

-- +goose Up
-- Link sessions are purged once they end, found by their end.
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- +goose Down
DROP INDEX sessions_expiry;

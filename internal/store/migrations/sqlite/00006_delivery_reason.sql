-- +goose Up
-- last_reason is last_error classified for the tenant (/token/status):
-- "timed out", "refused by the provider: HTTP 503"..., never the
-- provider's URL, host, account or words. last_error keeps the whole
-- error for the operator. Rows that failed before this have no class.
ALTER TABLE deliveries ADD COLUMN last_reason TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET last_reason = 'could not send' WHERE last_error <> '';

-- +goose Down
ALTER TABLE deliveries DROP COLUMN last_reason;

-- +goose Up
-- last_reason is last_error classified for the tenant (/token/status):
-- "timed out", "refused by the provider: HTTP 503"..., never the
-- provider's URL, host, account or words. last_error keeps the whole
-- error for the operator. Rows that failed before this have no class.
ALTER TABLE deliveries ADD COLUMN last_reason TEXT NOT NULL DEFAULT '';
UPDATE deliveries SET last_reason = 'could not send' WHERE last_error <> '';

-- The workers' fair claim looks, for each corporate, at its oldest due rows
-- and counts its rows in flight: from these, whatever the backlog.
CREATE INDEX deliveries_corporate_due ON deliveries (corporate_id, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');
CREATE INDEX deliveries_corporate_sending ON deliveries (corporate_id) WHERE status = 'sending';
CREATE INDEX webhook_events_corporate_due ON webhook_events (corporate_id, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');
CREATE INDEX webhook_events_corporate_sending ON webhook_events (corporate_id) WHERE status = 'sending';

-- +goose Down
DROP INDEX webhook_events_corporate_sending;
DROP INDEX webhook_events_corporate_due;
DROP INDEX deliveries_corporate_sending;
DROP INDEX deliveries_corporate_due;
ALTER TABLE deliveries DROP COLUMN last_reason;

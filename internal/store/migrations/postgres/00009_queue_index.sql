-- +goose Up
-- One index serves the workers' fair claim (migration 00006's two, and the
-- deliveries' (status, next_attempt_at) that the claim no longer reads):
-- each write of a queued row then updates as many indexes as before the
-- fair claim. Per corporate and status it finds the oldest due row, counts
-- the rows in flight (status 'sending', lease unexpired), and steps from
-- one corporate with unsent rows to the next.
CREATE INDEX deliveries_queue ON deliveries (corporate_id, status, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');
DROP INDEX deliveries_corporate_due;
DROP INDEX deliveries_corporate_sending;
DROP INDEX deliveries_due;
CREATE INDEX webhook_events_queue ON webhook_events (corporate_id, status, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');
DROP INDEX webhook_events_corporate_due;
DROP INDEX webhook_events_corporate_sending;

-- +goose Down
CREATE INDEX webhook_events_corporate_sending ON webhook_events (corporate_id) WHERE status = 'sending';
CREATE INDEX webhook_events_corporate_due ON webhook_events (corporate_id, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');
DROP INDEX webhook_events_queue;
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_corporate_sending ON deliveries (corporate_id) WHERE status = 'sending';
CREATE INDEX deliveries_corporate_due ON deliveries (corporate_id, next_attempt_at)
    WHERE status IN ('queued', 'failed', 'sending');
DROP INDEX deliveries_queue;

-- +goose Up
-- A link's audit trail is ordered by when each request came, not by when it
-- was written (page views are written later, in batches). A view and the
-- spend that follows it can come within one millisecond, and then a view
-- written after the spend listed as newer: microseconds order them.
ALTER TABLE link_attempts RENAME COLUMN at_ms TO at_us;
UPDATE link_attempts SET at_us = at_us * 1000;

-- +goose Down
UPDATE link_attempts SET at_us = at_us / 1000;
ALTER TABLE link_attempts RENAME COLUMN at_us TO at_ms;

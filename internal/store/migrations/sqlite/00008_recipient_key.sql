-- +goose Up
-- The per-recipient send limit counts by the normalised address (an e-mail
-- address lowercased, a number in E.164), so that Ana@Example.com and
-- ana@example.com are one recipient; recipient keeps the spelling sent to.
-- The limit looks back one hour: rows older than that are never counted,
-- and keep NULL.
ALTER TABLE deliveries ADD COLUMN recipient_key TEXT;
UPDATE deliveries SET recipient_key = CASE channel WHEN 'mail' THEN lower(recipient) ELSE recipient END
WHERE created_at > CAST(strftime('%s', 'now') AS INTEGER) - 3600;
DROP INDEX deliveries_recipient;
CREATE INDEX deliveries_recipient ON deliveries (corporate_id, recipient_key, created_at);

-- +goose Down
DROP INDEX deliveries_recipient;
CREATE INDEX deliveries_recipient ON deliveries (corporate_id, recipient, created_at);
ALTER TABLE deliveries DROP COLUMN recipient_key;

-- +goose Up
-- Mails and SMS are written in the corporate's language, from its sender name.
ALTER TABLE corporates ADD COLUMN language TEXT NOT NULL DEFAULT 'en';
ALTER TABLE corporates ADD COLUMN sender_name TEXT NOT NULL DEFAULT '';
-- The per-recipient send limit counts a corporate's recent deliveries to one
-- address or number.
CREATE INDEX deliveries_recipient ON deliveries (corporate_id, recipient, created_at);

-- +goose Down
DROP INDEX deliveries_recipient;
ALTER TABLE corporates DROP COLUMN sender_name;
ALTER TABLE corporates DROP COLUMN language;

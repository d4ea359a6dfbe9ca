-- +goose Up
-- Who has a socket open, and on which server (#15): a message is pushed to
-- a person's browsers only while none of their sockets is open, on any
-- server. Each server writes its own rows as its sockets open and close and
-- renews them while they stay open; a row past expires_at is a server that
-- stopped renewing (it died) and counts for nothing. (A single SQLite
-- server asks its own sockets and writes none.)
CREATE TABLE presence (
    corporate_id BIGINT NOT NULL,
    user_id      BIGINT NOT NULL,
    server       TEXT   NOT NULL,
    expires_at   BIGINT NOT NULL,
    PRIMARY KEY (corporate_id, user_id, server)
);

-- +goose Down
DROP TABLE presence;

-- +goose Up
-- The rate limits of an installation of several servers (PostgreSQL); a
-- SQLite installation is one server, whose buckets are in its memory, so
-- this table stays empty. It is here so that both schemas are one.
CREATE TABLE rate_buckets (
    corporate_id INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    tat          INTEGER NOT NULL,
    per_second   REAL    NOT NULL,
    burst        INTEGER NOT NULL,
    taken        INTEGER NOT NULL,
    PRIMARY KEY (corporate_id, user_id)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE rate_buckets;

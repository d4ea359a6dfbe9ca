-- +goose Up
-- The rate limits of an installation of several servers: one row per
-- bucket (a corporate's, user_id 0, or one user's share of it), holding
-- GCRA's theoretical arrival time in Unix nanoseconds and the rate and
-- burst it was filled at. Each request moves tat in one conditional
-- statement, so every server takes from the same bucket. A row whose tat
-- has passed is a full bucket, the same as no row: the purge deletes it.
-- Unlogged: a crash forgets the buckets (every one starts full), and its
-- writes skip the WAL, so a commit waits for no flush while it holds the
-- row. Room on each page lets the update be done in place (HOT).
CREATE UNLOGGED TABLE rate_buckets (
    corporate_id BIGINT           NOT NULL,
    user_id      BIGINT           NOT NULL,
    tat          BIGINT           NOT NULL,
    per_second   DOUBLE PRECISION NOT NULL,
    burst        INTEGER          NOT NULL,
    taken        INTEGER          NOT NULL, -- what the last request took: a server leases a few at a time
    PRIMARY KEY (corporate_id, user_id)
) WITH (fillfactor = 50);

-- +goose Down
DROP TABLE rate_buckets;

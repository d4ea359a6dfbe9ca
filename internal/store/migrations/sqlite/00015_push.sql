-- +goose Up
-- Web Push (#15): each browser a signed-in person turned notifications on
-- in is one subscription of their user, one of the user's devices beside
-- those /third_parties/user/new records. The subscription's auth secret is
-- sealed with a key derived from the server key (a copy of the database
-- alone cannot push to anyone).
CREATE TABLE push_subscriptions (
    id           INTEGER PRIMARY KEY,
    corporate_id INTEGER NOT NULL,
    user_id      INTEGER NOT NULL,
    endpoint     TEXT    NOT NULL,
    p256dh       BLOB    NOT NULL,
    auth_sealed  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (corporate_id, id),
    UNIQUE (corporate_id, user_id, endpoint),
    FOREIGN KEY (corporate_id, user_id) REFERENCES users (corporate_id, id)
);

-- +goose Down
DROP TABLE push_subscriptions;

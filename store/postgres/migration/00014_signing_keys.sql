-- +goose Up

-- The keys that sign status links and dashboard sessions, sealed with the
-- secret key, newest generation current. Only the newest two are kept.
CREATE TABLE signing_keys (
    generation bigint      NOT NULL PRIMARY KEY,
    sealed     bytea       NOT NULL,
    created_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE signing_keys;

-- +goose Up

-- The keys that sign status links and dashboard sessions, sealed with the
-- secret key, newest generation current. Only the newest two are kept.
-- created_at is INTEGER microseconds since the Unix epoch, UTC.
CREATE TABLE signing_keys (
    generation INTEGER NOT NULL PRIMARY KEY,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE signing_keys;

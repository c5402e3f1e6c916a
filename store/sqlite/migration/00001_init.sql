-- +goose Up

-- Times are INTEGER microseconds since the Unix epoch, UTC.

CREATE TABLE inboxes (
    id          TEXT    NOT NULL PRIMARY KEY,
    email       TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    tenant      TEXT    NOT NULL DEFAULT '',
    username    TEXT    NOT NULL DEFAULT '',
    imap        TEXT,             -- JSON ServerConfig, NULL when unset
    smtp        TEXT,             -- JSON ServerConfig, NULL when unset
    credentials BLOB,             -- sealed ciphertext, opaque to the store
    state       TEXT    NOT NULL,
    reason      TEXT    NOT NULL DEFAULT '',
    message     TEXT    NOT NULL DEFAULT '',
    since       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

-- lower() folds ASCII letters only in SQLite.
CREATE UNIQUE INDEX inboxes_provider_email ON inboxes (provider, lower(email));
CREATE INDEX inboxes_state_id ON inboxes (state, id);
CREATE INDEX inboxes_provider_id ON inboxes (provider, id);

-- The event log is append-only and outlives the inboxes it describes, so
-- inbox_id has no foreign key. AUTOINCREMENT keeps IDs of deleted rows from
-- being reused, so event IDs only grow.
CREATE TABLE inbox_events (
    id        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    inbox_id  TEXT    NOT NULL,
    at        INTEGER NOT NULL,
    old_state TEXT    NOT NULL DEFAULT '',
    new_state TEXT    NOT NULL DEFAULT '',
    reason    TEXT    NOT NULL DEFAULT '',
    message   TEXT    NOT NULL DEFAULT '',
    cause     TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX inbox_events_inbox_id_id ON inbox_events (inbox_id, id);

CREATE TABLE api_keys (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash       BLOB    NOT NULL UNIQUE,
    prefix     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE fleet_snapshots (
    at       INTEGER NOT NULL,
    provider TEXT    NOT NULL,
    state    TEXT    NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (at, provider, state)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE fleet_snapshots;
DROP TABLE api_keys;
DROP TABLE inbox_events;
DROP TABLE inboxes;

-- +goose Up

-- What the health engine decided, written through by the service so that
-- the API can read it on any node and a restart loses nothing. IDs of
-- incidents and held actions are the engine's. Times are INTEGER
-- microseconds since the Unix epoch, UTC; NULL while open.

CREATE TABLE incidents (
    id          INTEGER NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL,
    provider    TEXT    NOT NULL,
    tenant      TEXT    NOT NULL DEFAULT '',
    opened_at   INTEGER NOT NULL,
    resolved_at INTEGER,          -- NULL while open
    evidence    TEXT    NOT NULL DEFAULT '',
    affected    INTEGER NOT NULL DEFAULT 0,
    recovered   INTEGER NOT NULL DEFAULT 0,
    timeline    TEXT    NOT NULL DEFAULT '[]' -- JSON array of IncidentEntry
) STRICT;

-- Incidents(openOnly) reads the open ones newest first.
CREATE INDEX incidents_open ON incidents (id) WHERE resolved_at IS NULL;

CREATE TABLE held_actions (
    id        INTEGER NOT NULL PRIMARY KEY,
    inbox_id  TEXT    NOT NULL,
    provider  TEXT    NOT NULL,
    tenant    TEXT    NOT NULL DEFAULT '',
    to_state  TEXT    NOT NULL,
    reason    TEXT    NOT NULL DEFAULT '',
    why       TEXT    NOT NULL DEFAULT '',
    held_at   INTEGER NOT NULL,
    done      INTEGER NOT NULL DEFAULT 0 CHECK (done IN (0, 1)),
    outcome   TEXT    NOT NULL DEFAULT '',
    closed_at INTEGER           -- NULL while pending
) STRICT;

-- HeldActions(pendingOnly) reads the pending ones oldest first. The
-- query's "done = 0" must match this WHERE for SQLite to use the index.
CREATE INDEX held_actions_pending ON held_actions (id) WHERE done = 0;

-- Notices are append-only; (inbox_id, episode) is the idempotency key.
CREATE TABLE notices (
    id       INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    inbox_id TEXT    NOT NULL,
    episode  INTEGER NOT NULL,
    admin    INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1)),
    reason   TEXT    NOT NULL DEFAULT '',
    at       INTEGER NOT NULL,
    UNIQUE (inbox_id, episode)
) STRICT;

-- One row: the engine's whole state, replaced on every save.
CREATE TABLE engine_state (
    id       INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    saved_at INTEGER NOT NULL,
    state    BLOB    NOT NULL
) STRICT;

-- +goose Down
DROP TABLE engine_state;
DROP TABLE notices;
DROP TABLE held_actions;
DROP TABLE incidents;

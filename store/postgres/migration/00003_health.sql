-- +goose Up

-- What the health engine decided, written through by the service so that
-- the API can read it on any node and a restart loses nothing. IDs of
-- incidents and held actions are the engine's.

CREATE TABLE incidents (
    id          bigint      NOT NULL PRIMARY KEY,
    kind        text        NOT NULL,
    provider    text        NOT NULL,
    tenant      text        NOT NULL DEFAULT '',
    opened_at   timestamptz NOT NULL,
    resolved_at timestamptz,          -- NULL while open
    evidence    text        NOT NULL DEFAULT '',
    affected    bigint      NOT NULL DEFAULT 0,
    recovered   bigint      NOT NULL DEFAULT 0,
    timeline    jsonb       NOT NULL DEFAULT '[]' -- array of IncidentEntry
);

-- Incidents(openOnly) reads the open ones newest first.
CREATE INDEX incidents_open ON incidents (id) WHERE resolved_at IS NULL;

CREATE TABLE held_actions (
    id        bigint      NOT NULL PRIMARY KEY,
    inbox_id  text COLLATE "C" NOT NULL,
    provider  text        NOT NULL,
    tenant    text        NOT NULL DEFAULT '',
    to_state  text        NOT NULL,
    reason    text        NOT NULL DEFAULT '',
    why       text        NOT NULL DEFAULT '',
    held_at   timestamptz NOT NULL,
    done      boolean     NOT NULL DEFAULT false,
    outcome   text        NOT NULL DEFAULT '',
    closed_at timestamptz           -- NULL while pending
);

-- HeldActions(pendingOnly) reads the pending ones oldest first.
CREATE INDEX held_actions_pending ON held_actions (id) WHERE NOT done;

-- Notices are append-only; (inbox_id, episode) is the idempotency key.
CREATE TABLE notices (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inbox_id text COLLATE "C" NOT NULL,
    episode  bigint      NOT NULL,
    admin    boolean     NOT NULL DEFAULT false,
    reason   text        NOT NULL DEFAULT '',
    at       timestamptz NOT NULL,
    UNIQUE (inbox_id, episode)
);

-- One row: the engine's whole state, replaced on every save.
CREATE TABLE engine_state (
    id       smallint    NOT NULL PRIMARY KEY CHECK (id = 1),
    saved_at timestamptz NOT NULL,
    state    bytea       NOT NULL
);

-- +goose Down
DROP TABLE engine_state;
DROP TABLE notices;
DROP TABLE held_actions;
DROP TABLE incidents;

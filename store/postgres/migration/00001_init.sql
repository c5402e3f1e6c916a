-- +goose Up

-- IDs use the "C" collation so that keyset paging orders them byte-wise,
-- as SQLite and Go do, whatever the database's default collation is.

CREATE TABLE inboxes (
    id          text COLLATE "C" NOT NULL PRIMARY KEY,
    email       text        NOT NULL,
    provider    text        NOT NULL,
    tenant      text        NOT NULL DEFAULT '',
    username    text        NOT NULL DEFAULT '',
    imap        jsonb,                -- ServerConfig, NULL when unset
    smtp        jsonb,                -- ServerConfig, NULL when unset
    credentials bytea,                -- sealed ciphertext, opaque to the store
    state       text        NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    message     text        NOT NULL DEFAULT '',
    since       timestamptz NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE UNIQUE INDEX inboxes_provider_email ON inboxes (provider, lower(email));
CREATE INDEX inboxes_state_id ON inboxes (state, id);
CREATE INDEX inboxes_provider_id ON inboxes (provider, id);

-- The event log is append-only and outlives the inboxes it describes, so
-- inbox_id has no foreign key.
CREATE TABLE inbox_events (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    inbox_id  text COLLATE "C" NOT NULL,
    at        timestamptz NOT NULL,
    old_state text        NOT NULL DEFAULT '',
    new_state text        NOT NULL DEFAULT '',
    reason    text        NOT NULL DEFAULT '',
    message   text        NOT NULL DEFAULT '',
    cause     text        NOT NULL DEFAULT ''
);

CREATE INDEX inbox_events_inbox_id_id ON inbox_events (inbox_id, id);

CREATE TABLE api_keys (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    hash       bytea       NOT NULL UNIQUE,
    prefix     text        NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE fleet_snapshots (
    at       timestamptz NOT NULL,
    provider text        NOT NULL,
    state    text        NOT NULL,
    count    bigint      NOT NULL,
    PRIMARY KEY (at, provider, state)
);

-- +goose Down
DROP TABLE fleet_snapshots;
DROP TABLE api_keys;
DROP TABLE inbox_events;
DROP TABLE inboxes;

-- +goose Up

-- Synced mail and outgoing sends. Address and flag lists are JSON arrays
-- of strings.

-- Where the next incremental sync resumes, and when one last succeeded
-- (NULL: never).
ALTER TABLE inboxes
    ADD COLUMN sync_cursor  text NOT NULL DEFAULT '',
    ADD COLUMN last_sync_at timestamptz;

-- Deleting an inbox deletes its mail.
CREATE TABLE messages (
    id                  text COLLATE "C" NOT NULL PRIMARY KEY,
    inbox_id            text COLLATE "C" NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    provider_id         text        NOT NULL,
    internet_message_id text        NOT NULL DEFAULT '',
    from_addr           text        NOT NULL DEFAULT '',
    to_addrs            jsonb       NOT NULL DEFAULT '[]',
    cc_addrs            jsonb       NOT NULL DEFAULT '[]',
    subject             text        NOT NULL DEFAULT '',
    received_at         timestamptz NOT NULL,
    snippet             text        NOT NULL DEFAULT '',
    flags               jsonb       NOT NULL DEFAULT '[]',
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    UNIQUE (inbox_id, provider_id)
);

-- SaveSync recognises a message seen again after a cursor reset by its
-- Message-ID.
CREATE INDEX messages_inbox_internet_message_id ON messages (inbox_id, internet_message_id);
-- Messages pages newest first.
CREATE INDEX messages_inbox_received ON messages (inbox_id, received_at DESC, id DESC);

-- Deleting an inbox deletes its sends. An empty idempotency_key means none;
-- a non-empty one is unique per inbox.
CREATE TABLE sends (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    inbox_id        text COLLATE "C" NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    idempotency_key text        NOT NULL DEFAULT '',
    message_id      text        NOT NULL DEFAULT '',
    to_addrs        jsonb       NOT NULL DEFAULT '[]',
    cc_addrs        jsonb       NOT NULL DEFAULT '[]',
    bcc_addrs       jsonb       NOT NULL DEFAULT '[]',
    subject         text        NOT NULL DEFAULT '',
    text_body       text        NOT NULL DEFAULT '',
    html_body       text        NOT NULL DEFAULT '',
    send_at         timestamptz NOT NULL,
    state           text        NOT NULL,
    reason          text        NOT NULL DEFAULT '',
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    sent_at         timestamptz           -- NULL until sent
);

-- CreateSend's ON CONFLICT names this index with its WHERE.
CREATE UNIQUE INDEX sends_inbox_idempotency_key ON sends (inbox_id, idempotency_key)
    WHERE idempotency_key <> '';
-- The cascade from inboxes, and listing an inbox's sends.
CREATE INDEX sends_inbox_id ON sends (inbox_id, id);
-- DueSends sweeps each state in send_at order.
CREATE INDEX sends_state_send_at ON sends (state, send_at, id);

-- +goose Down
DROP TABLE sends;
DROP TABLE messages;
ALTER TABLE inboxes DROP COLUMN last_sync_at, DROP COLUMN sync_cursor;

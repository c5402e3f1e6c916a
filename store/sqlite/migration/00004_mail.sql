-- +goose Up

-- Synced mail and outgoing sends. Times are INTEGER microseconds since the
-- Unix epoch, UTC; address and flag lists are JSON arrays of strings.

-- Where the next incremental sync resumes, and when one last succeeded
-- (NULL: never).
ALTER TABLE inboxes ADD COLUMN sync_cursor TEXT NOT NULL DEFAULT '';
ALTER TABLE inboxes ADD COLUMN last_sync_at INTEGER;

-- Deleting an inbox deletes its mail.
CREATE TABLE messages (
    id                  TEXT    NOT NULL PRIMARY KEY,
    inbox_id            TEXT    NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    provider_id         TEXT    NOT NULL,
    internet_message_id TEXT    NOT NULL DEFAULT '',
    from_addr           TEXT    NOT NULL DEFAULT '',
    to_addrs            TEXT    NOT NULL DEFAULT '[]',
    cc_addrs            TEXT    NOT NULL DEFAULT '[]',
    subject             TEXT    NOT NULL DEFAULT '',
    received_at         INTEGER NOT NULL,
    snippet             TEXT    NOT NULL DEFAULT '',
    flags               TEXT    NOT NULL DEFAULT '[]',
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (inbox_id, provider_id)
) STRICT;

-- SaveSync recognises a message seen again after a cursor reset by its
-- Message-ID.
CREATE INDEX messages_inbox_internet_message_id ON messages (inbox_id, internet_message_id);
-- Messages pages newest first.
CREATE INDEX messages_inbox_received ON messages (inbox_id, received_at DESC, id DESC);

-- Deleting an inbox deletes its sends. An empty idempotency_key means none;
-- a non-empty one is unique per inbox.
CREATE TABLE sends (
    id              TEXT    NOT NULL PRIMARY KEY,
    inbox_id        TEXT    NOT NULL REFERENCES inboxes (id) ON DELETE CASCADE,
    idempotency_key TEXT    NOT NULL DEFAULT '',
    message_id      TEXT    NOT NULL DEFAULT '',
    to_addrs        TEXT    NOT NULL DEFAULT '[]',
    cc_addrs        TEXT    NOT NULL DEFAULT '[]',
    bcc_addrs       TEXT    NOT NULL DEFAULT '[]',
    subject         TEXT    NOT NULL DEFAULT '',
    text_body       TEXT    NOT NULL DEFAULT '',
    html_body       TEXT    NOT NULL DEFAULT '',
    send_at         INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    reason          TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    sent_at         INTEGER           -- NULL until sent
) STRICT;

-- CreateSend's ON CONFLICT names this index with its WHERE, word for word.
CREATE UNIQUE INDEX sends_inbox_idempotency_key ON sends (inbox_id, idempotency_key)
    WHERE idempotency_key <> '';
-- The cascade from inboxes, and listing an inbox's sends.
CREATE INDEX sends_inbox_id ON sends (inbox_id, id);
-- DueSends sweeps each state in send_at order.
CREATE INDEX sends_state_send_at ON sends (state, send_at, id);

-- +goose Down
DROP TABLE sends;
DROP TABLE messages;
ALTER TABLE inboxes DROP COLUMN last_sync_at;
ALTER TABLE inboxes DROP COLUMN sync_cursor;

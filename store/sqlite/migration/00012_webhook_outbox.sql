-- +goose Up

-- The webhook events to relay (holdfast.OutboxEvent), each appended in the
-- transaction of the change it announces. seq orders them; relayed_at is
-- NULL until their delivery jobs are enqueued. webhook_id is '' for an
-- event to every subscribed webhook, or the one webhook of a replay.
CREATE TABLE webhook_outbox (
    seq        INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    event_id   TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    webhook_id TEXT    NOT NULL DEFAULT '',
    replay     INTEGER NOT NULL DEFAULT 0,
    relayed_at INTEGER,
    UNIQUE (event_id, webhook_id, replay)
) STRICT;

-- The relay reads the unrelayed events in order.
CREATE INDEX webhook_outbox_unrelayed ON webhook_outbox (seq) WHERE relayed_at IS NULL;
-- Pruning finds the relayed events past their retention.
CREATE INDEX webhook_outbox_relayed_at ON webhook_outbox (relayed_at) WHERE relayed_at IS NOT NULL;

-- +goose Down
DROP TABLE webhook_outbox;

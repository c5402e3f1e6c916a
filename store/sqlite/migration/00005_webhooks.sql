-- +goose Up

-- Webhooks and the delivery of each event to each. Times are INTEGER
-- microseconds since the Unix epoch, UTC.

-- events is a JSON array of event types ("*": all); secret is sealed.
CREATE TABLE webhooks (
    id              TEXT    NOT NULL PRIMARY KEY,
    url             TEXT    NOT NULL,
    events          TEXT    NOT NULL DEFAULT '[]',
    secret          BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    disabled_at     INTEGER,          -- NULL while enabled
    disabled_reason TEXT    NOT NULL DEFAULT ''
) STRICT;

-- One row per event and webhook; attempts is a JSON array of
-- {at, status_code, error, duration}. Deleting a webhook deletes its
-- deliveries.
CREATE TABLE webhook_deliveries (
    id         TEXT    NOT NULL PRIMARY KEY,
    webhook_id TEXT    NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id   TEXT    NOT NULL,
    event_type TEXT    NOT NULL,
    payload    BLOB    NOT NULL,
    state      TEXT    NOT NULL,
    attempts   TEXT    NOT NULL DEFAULT '[]',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (webhook_id, event_id)
) STRICT;

-- WebhookDeliveries pages a webhook's deliveries newest first.
CREATE INDEX webhook_deliveries_webhook_id ON webhook_deliveries (webhook_id, id);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;

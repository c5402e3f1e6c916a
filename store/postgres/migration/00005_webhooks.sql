-- +goose Up

-- Webhooks and the delivery of each event to each.

-- events is a JSON array of event types ("*": all); secret is sealed.
CREATE TABLE webhooks (
    id              text COLLATE "C" NOT NULL PRIMARY KEY,
    url             text        NOT NULL,
    events          jsonb       NOT NULL DEFAULT '[]',
    secret          bytea       NOT NULL,
    created_at      timestamptz NOT NULL,
    disabled_at     timestamptz,          -- NULL while enabled
    disabled_reason text        NOT NULL DEFAULT ''
);

-- One row per event and webhook; attempts is a JSON array of
-- {at, status_code, error, duration}. Deleting a webhook deletes its
-- deliveries.
CREATE TABLE webhook_deliveries (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    webhook_id text COLLATE "C" NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id   text        NOT NULL,
    event_type text        NOT NULL,
    payload    bytea       NOT NULL,
    state      text        NOT NULL,
    attempts   jsonb       NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    UNIQUE (webhook_id, event_id)
);

-- WebhookDeliveries pages a webhook's deliveries newest first.
CREATE INDEX webhook_deliveries_webhook_id ON webhook_deliveries (webhook_id, id);

-- +goose Down
DROP TABLE webhook_deliveries;
DROP TABLE webhooks;

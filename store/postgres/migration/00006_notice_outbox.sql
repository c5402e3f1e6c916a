-- +goose Up

-- The notification outbox: each notice's delivery status. A notice is
-- pending until the notify pipeline sends or cancels it; status_reason says
-- why it was cancelled. sent_at is NULL until sent.
ALTER TABLE notices ADD COLUMN status text NOT NULL DEFAULT 'pending';
ALTER TABLE notices ADD COLUMN status_reason text NOT NULL DEFAULT '';
ALTER TABLE notices ADD COLUMN sent_at timestamptz;
ALTER TABLE notices ADD COLUMN updated_at timestamptz;
UPDATE notices SET updated_at = at;
ALTER TABLE notices ALTER COLUMN updated_at SET NOT NULL;

-- The sweep lists pending notices oldest first.
CREATE INDEX notices_pending ON notices (id) WHERE status = 'pending';
-- A notice's recipient is its inbox's email: the pipeline groups by it.
CREATE INDEX inboxes_lower_email ON inboxes (lower(email));

-- +goose Down
DROP INDEX inboxes_lower_email;
DROP INDEX notices_pending;
ALTER TABLE notices DROP COLUMN updated_at;
ALTER TABLE notices DROP COLUMN sent_at;
ALTER TABLE notices DROP COLUMN status_reason;
ALTER TABLE notices DROP COLUMN status;

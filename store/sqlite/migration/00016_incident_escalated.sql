-- +goose Up

-- When an incident was escalated to the operators (open longer than its
-- kind's bound, health.Config.EscalateAfter); NULL while it was not.
-- INTEGER microseconds since the Unix epoch, UTC.
ALTER TABLE incidents ADD COLUMN escalated_at INTEGER;

-- +goose Down
ALTER TABLE incidents DROP COLUMN escalated_at;

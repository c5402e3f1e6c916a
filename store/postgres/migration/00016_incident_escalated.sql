-- +goose Up

-- When an incident was escalated to the operators (open longer than its
-- kind's bound, health.Config.EscalateAfter); NULL while it was not.
ALTER TABLE incidents ADD COLUMN escalated_at timestamptz;

-- +goose Down
ALTER TABLE incidents DROP COLUMN escalated_at;

-- +goose Up

-- The dashboard lists an inbox's held actions and notices newest first,
-- and the resolved follow-up reads an inbox's newest notice.
CREATE INDEX held_actions_inbox ON held_actions (inbox_id, id);
CREATE INDEX notices_inbox ON notices (inbox_id, id);

-- +goose Down
DROP INDEX notices_inbox;
DROP INDEX held_actions_inbox;

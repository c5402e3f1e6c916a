-- +goose Up

-- Durable sequences of IDs. 'health' numbers incidents and held actions
-- together; the monitor reserves blocks of it (ReserveIDs), so that no ID
-- is issued twice across restarts or nodes. It starts after every ID
-- stored so far.
CREATE TABLE id_sequences (
    name text   NOT NULL PRIMARY KEY,
    next bigint NOT NULL
);

INSERT INTO id_sequences (name, next)
SELECT 'health', 1 + greatest(
    coalesce((SELECT max(id) FROM incidents), 0),
    coalesce((SELECT max(id) FROM held_actions), 0));

-- +goose Down
DROP TABLE id_sequences;

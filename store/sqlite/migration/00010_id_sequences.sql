-- +goose Up

-- Durable sequences of IDs. 'health' numbers incidents and held actions
-- together; the monitor reserves blocks of it (ReserveIDs), so that no ID
-- is issued twice across restarts. It starts after every ID stored so far.
CREATE TABLE id_sequences (
    name TEXT    NOT NULL PRIMARY KEY,
    next INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO id_sequences (name, next)
SELECT 'health', 1 + max(
    coalesce((SELECT max(id) FROM incidents), 0),
    coalesce((SELECT max(id) FROM held_actions), 0));

-- +goose Down
DROP TABLE id_sequences;

-- +goose Up

-- The nodes of a cluster and the leases of the sync partitions
-- (holdfast.LeaseStore). Times are INTEGER microseconds since the Unix
-- epoch, UTC.
CREATE TABLE cluster_nodes (
    id           TEXT    NOT NULL PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- One row per partition ever leased; node is '' once released.
CREATE TABLE partition_leases (
    part         INTEGER NOT NULL PRIMARY KEY,
    node         TEXT    NOT NULL,
    leased_until INTEGER NOT NULL,
    epoch        INTEGER NOT NULL
) STRICT;

CREATE INDEX partition_leases_node ON partition_leases (node);

-- Each inbox's sync partition (holdfast.PartitionOf its ID), set on
-- insert; the store fills in those of older rows after migrating
-- (sqlstore.Store.BackfillPartitions). A node loads its partitions'
-- inboxes through (part, id).
ALTER TABLE inboxes ADD COLUMN part INTEGER;
CREATE INDEX inboxes_part ON inboxes (part, id);

-- +goose Down
DROP INDEX inboxes_part;
ALTER TABLE inboxes DROP COLUMN part;
DROP TABLE partition_leases;
DROP TABLE cluster_nodes;

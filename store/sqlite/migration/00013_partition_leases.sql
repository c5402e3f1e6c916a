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

-- +goose Down
DROP TABLE partition_leases;
DROP TABLE cluster_nodes;

-- +goose Up

-- The nodes of a cluster and the leases of the sync partitions
-- (holdfast.LeaseStore).
CREATE TABLE cluster_nodes (
    id           text        NOT NULL PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL
);

-- One row per partition ever leased; node is '' once released.
CREATE TABLE partition_leases (
    part         integer     NOT NULL PRIMARY KEY,
    node         text        NOT NULL,
    leased_until timestamptz NOT NULL,
    epoch        bigint      NOT NULL
);

CREATE INDEX partition_leases_node ON partition_leases (node);

-- +goose Down
DROP TABLE partition_leases;
DROP TABLE cluster_nodes;

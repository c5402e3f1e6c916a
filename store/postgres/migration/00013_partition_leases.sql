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

-- Each inbox's sync partition (holdfast.PartitionOf its ID), set on
-- insert; the store fills in those of older rows after migrating
-- (sqlstore.Store.BackfillPartitions). A node loads its partitions'
-- inboxes through (part, id).
ALTER TABLE inboxes ADD COLUMN part integer;
CREATE INDEX inboxes_part ON inboxes (part, id);

-- +goose Down
DROP INDEX inboxes_part;
ALTER TABLE inboxes DROP COLUMN part;
DROP TABLE partition_leases;
DROP TABLE cluster_nodes;

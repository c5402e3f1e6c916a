-- +goose Up

-- The health engine's fleet view across nodes (holdfast.FleetStore).


-- The leader's lease: one row per name ('health').
CREATE TABLE leader_leases (
    name         text NOT NULL PRIMARY KEY,
    node         text NOT NULL,
    leased_until timestamptz NOT NULL,
    epoch        bigint NOT NULL
);

-- Each node's detector counters per bucket, as it shipped them.
CREATE TABLE fleet_counters (
    node   text NOT NULL,
    bucket bigint NOT NULL,
    data   bytea NOT NULL,
    PRIMARY KEY (node, bucket)
);

CREATE INDEX fleet_counters_bucket ON fleet_counters (bucket);

-- The destructive-action budget: token buckets changed by compare-and-set
-- on version.
CREATE TABLE budget_permits (
    key       text NOT NULL PRIMARY KEY,
    tokens    double precision NOT NULL,
    filled_at timestamptz NOT NULL,
    version   bigint NOT NULL
);

-- +goose Down
DROP TABLE budget_permits;
DROP INDEX fleet_counters_bucket;
DROP TABLE fleet_counters;
DROP TABLE leader_leases;

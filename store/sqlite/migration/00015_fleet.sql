-- +goose Up

-- The health engine's fleet view across nodes (holdfast.FleetStore).
-- Times are INTEGER microseconds since the Unix epoch, UTC.

-- The leader's lease: one row per name ('health').
CREATE TABLE leader_leases (
    name         TEXT NOT NULL PRIMARY KEY,
    node         TEXT NOT NULL,
    leased_until INTEGER NOT NULL,
    epoch        INTEGER NOT NULL
) STRICT;

-- Each node's detector counters per bucket, as it shipped them.
CREATE TABLE fleet_counters (
    node   TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (node, bucket)
) STRICT;

CREATE INDEX fleet_counters_bucket ON fleet_counters (bucket);

-- The destructive-action budget: token buckets changed by compare-and-set
-- on version.
CREATE TABLE budget_permits (
    key       TEXT NOT NULL PRIMARY KEY,
    tokens    REAL NOT NULL,
    filled_at INTEGER NOT NULL,
    version   INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE budget_permits;
DROP INDEX fleet_counters_bucket;
DROP TABLE fleet_counters;
DROP TABLE leader_leases;

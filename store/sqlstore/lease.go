package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/holdfast/holdfast"
)

// Heartbeat records node's heartbeat at at, forgets nodes silent for
// longer than forget, and returns the live nodes, in one transaction.
func (s *Store) Heartbeat(ctx context.Context, node string, at time.Time, ttl, forget time.Duration) ([]holdfast.Node, error) {
	if node == "" {
		return nil, holdfast.Invalidf("node", "heartbeat: node is empty")
	}
	if ttl <= 0 || forget < ttl {
		return nil, holdfast.Invalidf("ttl", "heartbeat: ttl %v must be positive and at most forget %v", ttl, forget)
	}
	at = s.orNow(at)
	var live []holdfast.Node
	err := s.db.Tx(ctx, func(tx Executor) error {
		if _, err := tx.Exec(ctx, queryHeartbeat, node, s.time(at)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, queryForgetNodes, s.time(at.Add(-forget))); err != nil {
			return err
		}
		var err error
		live, err = all(ctx, tx, scanNode, queryLiveNodes, s.sinceTime(at.Add(-ttl)))
		return err
	})
	return live, wrapf(err, "heartbeat of node %s", node)
}

func scanNode(r Row) (holdfast.Node, error) {
	var n holdfast.Node
	err := r.Scan(&n.ID, timeDest(&n.StartedAt), timeDest(&n.HeartbeatAt))
	return n, err
}

// PartitionLeases returns every partition's lease row, by partition.
func (s *Store) PartitionLeases(ctx context.Context) ([]holdfast.PartitionLease, error) {
	out, err := all(ctx, s.db, func(r Row) (holdfast.PartitionLease, error) {
		var l holdfast.PartitionLease
		err := r.Scan(&l.Partition, &l.Node, timeDest(&l.Until), &l.Epoch)
		return l, err
	}, queryPartitionLeases)
	return out, wrapf(err, "list partition leases")
}

// checkLease validates the arguments of a lease change.
func checkLease(node string, parts []int, now, until time.Time) error {
	if node == "" {
		return holdfast.Invalidf("node", "node is empty")
	}
	if !until.After(now) {
		return holdfast.Invalidf("until", "lease until %v is not after now %v", until, now)
	}
	for _, p := range parts {
		if p < 0 || p >= holdfast.PartitionCount {
			return holdfast.Invalidf("partition", "partition %d is out of range [0, %d)", p, holdfast.PartitionCount)
		}
	}
	return nil
}

// AcquirePartitions leases to node each of parts it can have, one
// conditional upsert per partition, in one transaction.
func (s *Store) AcquirePartitions(ctx context.Context, node string, parts []int, now, until time.Time) ([]int, error) {
	now, until = s.orNow(now), orTime(until, time.Time{})
	if err := checkLease(node, parts, now, until); err != nil {
		return nil, fmt.Errorf("acquire partitions: %w", err)
	}
	// In partition order, so that nodes acquiring at once lock rows in one
	// order and never deadlock.
	parts = slices.Compact(slices.Sorted(slices.Values(parts)))
	var got []int
	err := s.db.Tx(ctx, func(tx Executor) error {
		got = got[:0]
		for _, p := range parts {
			var part int
			err := tx.QueryRow(ctx, queryAcquirePartition, p, node, s.time(until), s.time(now)).Scan(&part)
			if errors.Is(err, sql.ErrNoRows) {
				continue // held by another node
			}
			if err != nil {
				return err
			}
			got = append(got, part)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("node %s acquire %d partitions: %w", node, len(parts), err)
	}
	return got, nil
}

// RenewPartitions extends node's unexpired leases to until.
func (s *Store) RenewPartitions(ctx context.Context, node string, now, until time.Time) ([]int, error) {
	now, until = s.orNow(now), orTime(until, time.Time{})
	if err := checkLease(node, nil, now, until); err != nil {
		return nil, fmt.Errorf("renew partitions: %w", err)
	}
	held, err := all(ctx, s.db, func(r Row) (int, error) {
		var p int
		err := r.Scan(&p)
		return p, err
	}, queryRenewPartitions, node, s.time(now), s.time(until))
	if err != nil {
		return nil, fmt.Errorf("node %s renew partitions: %w", node, err)
	}
	slices.Sort(held)
	return held, nil
}

// ReleasePartitions gives up node's leases of parts, in one transaction.
func (s *Store) ReleasePartitions(ctx context.Context, node string, parts []int) error {
	if node == "" {
		return fmt.Errorf("release partitions: %w", holdfast.Invalidf("node", "node is empty"))
	}
	parts = slices.Sorted(slices.Values(parts))
	err := s.db.Tx(ctx, func(tx Executor) error {
		for _, p := range parts {
			if _, err := tx.Exec(ctx, queryReleasePartition, node, p); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapf(err, "node %s release %d partitions", node, len(parts))
}

// LeaveCluster releases every lease of node and deletes its node row.
func (s *Store) LeaveCluster(ctx context.Context, node string) error {
	if node == "" {
		return fmt.Errorf("leave cluster: %w", holdfast.Invalidf("node", "node is empty"))
	}
	err := s.db.Tx(ctx, func(tx Executor) error {
		if _, err := tx.Exec(ctx, queryReleaseAll, node); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, queryForgetNode, node)
		return err
	})
	return wrapf(err, "node %s leave the cluster", node)
}

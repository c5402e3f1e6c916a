package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/holdfast/holdfast"
)

// leaderName is the one leadership the store keeps today.
const leaderName = "health"

// countersKept is how many buckets of a node's counters ShipCounters keeps.
const countersKept = 256

// permitAttempts bounds TakePermit's compare-and-set retries.
const permitAttempts = 8

// AcquireLeadership takes or renews node's leadership with a conditional
// upsert and reads it back, in one transaction.
func (s *Store) AcquireLeadership(ctx context.Context, node string, now, until time.Time) (holdfast.Leadership, error) {
	now, until = s.orNow(now), orTime(until, time.Time{})
	if err := checkLease(node, nil, now, until); err != nil {
		return holdfast.Leadership{}, fmt.Errorf("acquire leadership: %w", err)
	}
	var l holdfast.Leadership
	err := s.db.Tx(ctx, func(tx Executor) error {
		if _, err := tx.Exec(ctx, queryAcquireLeadership, leaderName, node, s.time(until), s.time(now)); err != nil {
			return err
		}
		return tx.QueryRow(ctx, queryLeadership, leaderName).Scan(&l.Node, timeDest(&l.Until), &l.Epoch)
	})
	return l, wrapf(err, "node %s acquire leadership", node)
}

// ReleaseLeadership gives up node's leadership.
func (s *Store) ReleaseLeadership(ctx context.Context, node string) error {
	if node == "" {
		return fmt.Errorf("release leadership: %w", holdfast.Invalidf("node", "node is empty"))
	}
	_, err := s.db.Exec(ctx, queryReleaseLeadership, leaderName, node)
	return wrapf(err, "node %s release leadership", node)
}

// ShipCounters replaces node's counters of bucket and prunes its old ones.
func (s *Store) ShipCounters(ctx context.Context, node string, bucket int64, data []byte) error {
	if node == "" {
		return fmt.Errorf("ship counters: %w", holdfast.Invalidf("node", "node is empty"))
	}
	err := s.db.Tx(ctx, func(tx Executor) error {
		if _, err := tx.Exec(ctx, queryShipCounters, node, bucket, nonNilBytes(data)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, queryPruneCounters, node, bucket-countersKept)
		return err
	})
	return wrapf(err, "node %s ship counters of bucket %d", node, bucket)
}

// FleetCounters returns every node's counters from bucket from on.
func (s *Store) FleetCounters(ctx context.Context, from int64) ([]holdfast.NodeCounters, error) {
	out, err := all(ctx, s.db, func(r Row) (holdfast.NodeCounters, error) {
		var c holdfast.NodeCounters
		err := r.Scan(&c.Node, &c.Bucket, &c.Data)
		return c, err
	}, queryFleetCounters, from)
	return out, wrapf(err, "fleet counters from bucket %d", from)
}

// TakePermit takes one permit from token bucket key by compare-and-set.
func (s *Store) TakePermit(ctx context.Context, key string, ratePerHour, burst float64, now time.Time) (bool, error) {
	if key == "" {
		return false, fmt.Errorf("take permit: %w", holdfast.Invalidf("key", "key is empty"))
	}
	if !(ratePerHour > 0) || !(burst > 0) || math.IsInf(ratePerHour, 0) || math.IsInf(burst, 0) {
		return false, fmt.Errorf("take permit %s: %w", key, holdfast.Invalidf("rate", "rate %v/h and burst %v must be positive numbers", ratePerHour, burst))
	}
	now = s.orNow(now)
	for range permitAttempts {
		var (
			tokens  float64
			at      time.Time
			version int64
		)
		err := s.db.QueryRow(ctx, queryPermit, key).Scan(&tokens, timeDest(&at), &version)
		if errors.Is(err, sql.ErrNoRows) {
			// A new bucket starts full; a concurrent insert wins and the
			// next round reads it.
			if _, err := s.db.Exec(ctx, queryInsertPermit, key, burst, s.time(now)); err != nil {
				return false, fmt.Errorf("take permit %s: %w", key, err)
			}
			continue
		}
		if err != nil {
			return false, fmt.Errorf("take permit %s: %w", key, err)
		}
		refill := max(0, now.Sub(at).Seconds()) * ratePerHour / 3600
		tok := min(burst, tokens+refill)
		if !(tok >= 1) {
			return false, nil
		}
		n, err := s.db.Exec(ctx, querySwapPermit, key, tok-1, s.time(latest(now, at)), version)
		if err != nil {
			return false, fmt.Errorf("take permit %s: %w", key, err)
		}
		if n == 1 {
			return true, nil
		}
	}
	return false, nil
}

// latest returns the later of a and b: a bucket's fill time never goes
// back, whatever the caller's clock.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
)

// AppendFleetSnapshot records counts as taken at at, in one transaction.
// It returns ErrConflict if a count for the same moment, provider and state
// exists.
func (s *Store) AppendFleetSnapshot(ctx context.Context, at time.Time, counts []holdfast.InboxCount) error {
	if len(counts) == 0 {
		return nil
	}
	at = s.orNow(at)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, c := range counts {
			_, err := tx.ExecContext(ctx, queryInsertFleetCount, micros(at), string(c.Provider), string(c.State), c.Count)
			if isUnique(err) {
				return fmt.Errorf("%w: %w", holdfast.ErrConflict, err)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append fleet snapshot at %s: %w", at.Format(time.RFC3339Nano), err)
	}
	return nil
}

// FleetSnapshots returns the snapshots taken at or after since, oldest
// first, each with its counts ordered by provider and state.
func (s *Store) FleetSnapshots(ctx context.Context, since time.Time) ([]holdfast.FleetSnapshot, error) {
	rows, err := s.db.QueryContext(ctx, queryFleetSnapshots, micros(ceilMicro(since)))
	if err != nil {
		return nil, fmt.Errorf("fleet snapshots: %w", err)
	}
	defer rows.Close()
	var out []holdfast.FleetSnapshot
	for rows.Next() {
		var (
			at              int64
			provider, state string
			n               int64
		)
		if err := rows.Scan(&at, &provider, &state, &n); err != nil {
			return nil, fmt.Errorf("fleet snapshots: %w", err)
		}
		t := fromMicros(at)
		if len(out) == 0 || !out[len(out)-1].At.Equal(t) {
			out = append(out, holdfast.FleetSnapshot{At: t})
		}
		last := &out[len(out)-1]
		last.Counts = append(last.Counts, holdfast.InboxCount{Provider: holdfast.Provider(provider), State: holdfast.State(state), Count: n})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fleet snapshots: %w", err)
	}
	return out, nil
}

// PruneFleetSnapshots deletes the snapshots taken before before, at most
// s.pruneBatchSize rows per statement (10,000), each statement its own transaction,
// and returns the number of rows deleted. Between statements the
// connection is free for others, River included.
func (s *Store) PruneFleetSnapshots(ctx context.Context, before time.Time) (int64, error) {
	// Stored times are whole microseconds, so "before before" and "before
	// before rounded up" select the same rows.
	before = ceilMicro(before)
	var total int64
	for {
		res, err := s.db.ExecContext(ctx, queryPruneFleetSnapshots, micros(before), s.pruneBatchSize)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return total, fmt.Errorf("prune fleet snapshots before %s: %w", before.UTC().Format(time.RFC3339Nano), err)
		}
		total += n
		if n < int64(s.pruneBatchSize) {
			return total, nil
		}
	}
}

// ceilMicro rounds t up to the store's precision, so that "at or after t"
// keeps its meaning for a t between two stored values.
func ceilMicro(t time.Time) time.Time {
	r := t.Truncate(holdfast.StoreTimePrecision)
	if r.Before(t) {
		r = r.Add(holdfast.StoreTimePrecision)
	}
	return r
}

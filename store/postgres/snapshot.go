package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
)

// AppendFleetSnapshot records counts as taken at at, in one statement. It
// returns ErrConflict if a count for the same moment, provider and state
// exists.
func (s *Store) AppendFleetSnapshot(ctx context.Context, at time.Time, counts []holdfast.InboxCount) error {
	if len(counts) == 0 {
		return nil
	}
	at = s.orNow(at)
	providers := make([]string, len(counts))
	states := make([]string, len(counts))
	ns := make([]int64, len(counts))
	for i, c := range counts {
		providers[i], states[i], ns[i] = string(c.Provider), string(c.State), c.Count
	}
	_, err := s.pool.Exec(ctx, queryInsertFleetCounts, at, providers, states, ns)
	if isUnique(err) {
		err = fmt.Errorf("%w: %w", holdfast.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("append fleet snapshot at %s: %w", at.Format(time.RFC3339Nano), err)
	}
	return nil
}

// FleetSnapshots returns the snapshots taken at or after since, oldest
// first, each with its counts ordered by provider and state.
func (s *Store) FleetSnapshots(ctx context.Context, since time.Time) ([]holdfast.FleetSnapshot, error) {
	rows, err := s.pool.Query(ctx, queryFleetSnapshots, ceilMicro(since))
	if err != nil {
		return nil, fmt.Errorf("fleet snapshots: %w", err)
	}
	defer rows.Close()
	var out []holdfast.FleetSnapshot
	for rows.Next() {
		var (
			at              time.Time
			provider, state string
			n               int64
		)
		if err := rows.Scan(&at, &provider, &state, &n); err != nil {
			return nil, fmt.Errorf("fleet snapshots: %w", err)
		}
		at = at.UTC()
		if len(out) == 0 || !out[len(out)-1].At.Equal(at) {
			out = append(out, holdfast.FleetSnapshot{At: at})
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
// and returns the number of rows deleted.
func (s *Store) PruneFleetSnapshots(ctx context.Context, before time.Time) (int64, error) {
	// Stored times are whole microseconds, so "before before" and "before
	// before rounded up" select the same rows.
	before = ceilMicro(before)
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, queryPruneFleetSnapshots, before, s.pruneBatchSize)
		if err != nil {
			return total, fmt.Errorf("prune fleet snapshots before %s: %w", before.UTC().Format(time.RFC3339Nano), err)
		}
		n := tag.RowsAffected()
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

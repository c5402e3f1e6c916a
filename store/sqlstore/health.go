package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// SaveIncident inserts or replaces the incident with in.ID. Times are
// rounded down to the store's precision; a zero ResolvedAt is stored as
// NULL (open), a zero EscalatedAt as NULL (not escalated), and a stored
// EscalatedAt is kept (the first escalation counts). announce, if not nil, is given the incident as stored
// before (nil for a new one), and its events are appended to the outbox,
// in the same transaction. in is not modified.
func (s *Store) SaveIncident(ctx context.Context, in *holdfast.Incident, announce holdfast.Announce[*holdfast.Incident]) error {
	timeline, err := encodeTimeline(in.Timeline)
	if err != nil {
		return fmt.Errorf("save incident %d: timeline: %w", in.ID, err)
	}
	save := func(e Executor) error {
		_, err := e.Exec(ctx, queryUpsertIncident,
			in.ID, in.Kind, string(in.Provider), in.Tenant, s.time(in.OpenedAt),
			s.nullTime(in.ResolvedAt), in.Evidence, in.Affected, in.Recovered, timeline, s.nullTime(in.EscalatedAt))
		return err
	}
	if announce == nil {
		err = save(s.db)
	} else {
		err = s.db.Tx(ctx, func(tx Executor) error {
			prev, err := one(ctx, tx, scanIncident, s.sql.LockIncident, in.ID)
			if errors.Is(err, holdfast.ErrNotFound) {
				prev, err = nil, nil
			}
			if err != nil {
				return err
			}
			if err := save(tx); err != nil {
				return err
			}
			evs, err := announce(prev)
			if err != nil {
				return fmt.Errorf("announce: %w", err)
			}
			return s.appendOutbox(ctx, tx, evs)
		})
	}
	if err != nil {
		return fmt.Errorf("save incident %d: %w", in.ID, err)
	}
	return nil
}

// Incidents returns at most n incidents (zero or less means 100, at most
// 1000), newest first by ID, only the open ones if openOnly.
func (s *Store) Incidents(ctx context.Context, openOnly bool, n int) ([]*holdfast.Incident, error) {
	q := queryIncidents
	if openOnly {
		q = queryOpenIncidents
	}
	out, err := all(ctx, s.db, scanIncident, q, limit(n))
	return out, wrapf(err, "list incidents")
}

// OpenIncidents returns at most n open incidents (zero or less means 100,
// at most 1000) whose ID is greater than afterID, oldest first by ID.
func (s *Store) OpenIncidents(ctx context.Context, afterID int64, n int) ([]*holdfast.Incident, error) {
	out, err := all(ctx, s.db, scanIncident, queryOpenIncidentsAfter, afterID, limit(n))
	return out, wrapf(err, "list open incidents after %d", afterID)
}

// IncidentByID returns the incident with the given ID, or ErrNotFound.
func (s *Store) IncidentByID(ctx context.Context, id int64) (*holdfast.Incident, error) {
	in, err := one(ctx, s.db, scanIncident, queryIncident, id)
	return in, wrapf(err, "incident %d", id)
}

// SaveHeldAction inserts or replaces the held action with h.ID. Times are
// rounded down to the store's precision; a zero ClosedAt is stored as NULL.
// h is not modified.
func (s *Store) SaveHeldAction(ctx context.Context, h *holdfast.HeldAction) error {
	_, err := s.db.Exec(ctx, queryUpsertHeldAction,
		h.ID, h.InboxID, string(h.Provider), h.Tenant, string(h.To), h.Reason, h.Why,
		s.time(h.HeldAt), h.Done, h.Outcome, s.nullTime(h.ClosedAt))
	if err != nil {
		return fmt.Errorf("save held action %d for inbox %s: %w", h.ID, h.InboxID, err)
	}
	return nil
}

// FindHeldActions returns the held actions f selects, oldest first by ID
// or, with f.Newest, newest first.
func (s *Store) FindHeldActions(ctx context.Context, f holdfast.HeldActionFilter) ([]*holdfast.HeldAction, error) {
	var (
		q    string
		args []any
	)
	switch {
	case f == (holdfast.HeldActionFilter{PendingOnly: true, Newest: f.Newest, Limit: f.Limit, AfterID: f.AfterID}):
		q, args = order(f.Newest, s.sql.PendingHeldActions, s.sql.NewestPendingHeldActions), []any{limit(f.Limit), f.AfterID}
	default:
		q = order(f.Newest, queryHeldActions, queryNewestHeldActions)
		if f.InboxID != "" {
			q = order(f.Newest, queryInboxHeldActions, queryNewestInboxHeldActions)
		}
		args = []any{f.ID, f.InboxID, f.PendingOnly, f.DoneOnly, string(f.Provider), f.Tenant,
			s.sinceTime(f.Since), s.nullTime(f.Until), limit(f.Limit), f.AfterID}
	}
	out, err := all(ctx, s.db, scanHeldAction, q, args...)
	return out, wrapf(err, "list held actions")
}

// ReserveIDs reserves n consecutive incident and held action IDs and
// returns the first. One statement advances the sequence, so concurrent
// callers, on one node or several, get disjoint blocks.
func (s *Store) ReserveIDs(ctx context.Context, n int) (int64, error) {
	if n < 1 {
		return 0, holdfast.Invalidf("n", "reserve %d IDs: want at least 1", n)
	}
	next, err := one(ctx, s.db, func(r Row) (int64, error) {
		var v int64
		err := r.Scan(&v)
		return v, err
	}, queryReserveIDs, int64(n))
	if err != nil {
		return 0, fmt.Errorf("reserve %d IDs: %w", n, err)
	}
	return next - int64(n), nil
}

// SaveEngineState replaces the health engine's saved state with state,
// saved at at (now if zero). On SQLite the write holds the store's only
// connection for as long as it takes to write state.
func (s *Store) SaveEngineState(ctx context.Context, at time.Time, state []byte) error {
	if _, err := s.db.Exec(ctx, queryUpsertEngineState, s.time(s.orNow(at)), nonNilBytes(state)); err != nil {
		return fmt.Errorf("save engine state (%d bytes): %w", len(state), err)
	}
	return nil
}

// EngineState returns the health engine's saved state and when it was
// saved, or ErrNotFound if none was.
func (s *Store) EngineState(ctx context.Context) (time.Time, []byte, error) {
	type saved struct {
		at    time.Time
		state []byte
	}
	v, err := one(ctx, s.db, func(r Row) (saved, error) {
		var v saved
		err := r.Scan(timeDest(&v.at), &v.state)
		return v, err
	}, queryEngineState)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("engine state: %w", err)
	}
	return v.at, nonNilBytes(v.state), nil
}

// AppendFleetSnapshot records counts as taken at at, in one statement. It
// returns ErrConflict if a count for the same moment, provider and state
// exists.
func (s *Store) AppendFleetSnapshot(ctx context.Context, at time.Time, counts []holdfast.InboxCount) error {
	if len(counts) == 0 {
		return nil
	}
	at = s.orNow(at)
	rows := make([]string, len(counts))
	args := make([]any, 1, 1+3*len(counts))
	args[0] = s.time(at)
	for i, c := range counts {
		n := len(args)
		rows[i] = "($1, $" + strconv.Itoa(n+1) + ", $" + strconv.Itoa(n+2) + ", $" + strconv.Itoa(n+3) + ")"
		args = append(args, string(c.Provider), string(c.State), c.Count)
	}
	if _, err := s.db.Exec(ctx, fmt.Sprintf(queryInsertFleetCounts, strings.Join(rows, ", ")), args...); err != nil {
		return fmt.Errorf("append fleet snapshot at %s: %w", at.Format(time.RFC3339Nano), s.conflict(err))
	}
	return nil
}

// FleetSnapshots returns the snapshots taken at or after since, oldest
// first, each with its counts ordered by provider and state.
func (s *Store) FleetSnapshots(ctx context.Context, since time.Time) ([]holdfast.FleetSnapshot, error) {
	type count struct {
		at time.Time
		c  holdfast.InboxCount
	}
	counts, err := all(ctx, s.db, func(r Row) (count, error) {
		var (
			v               count
			provider, state string
		)
		err := r.Scan(timeDest(&v.at), &provider, &state, &v.c.Count)
		v.c.Provider, v.c.State = holdfast.Provider(provider), holdfast.State(state)
		return v, err
	}, s.sql.FleetSnapshots, s.time(ceilMicro(since)))
	if err != nil {
		return nil, fmt.Errorf("fleet snapshots: %w", err)
	}
	var out []holdfast.FleetSnapshot
	for _, v := range counts {
		if len(out) == 0 || !out[len(out)-1].At.Equal(v.at) {
			out = append(out, holdfast.FleetSnapshot{At: v.at})
		}
		last := &out[len(out)-1]
		last.Counts = append(last.Counts, v.c)
	}
	return out, nil
}

// PruneFleetSnapshots deletes the snapshots taken before before, at most
// s.pruneBatchSize rows per statement, each statement its own
// transaction, and returns the number of rows deleted. Between statements
// the database is free for others (on SQLite, its only connection, River
// included).
func (s *Store) PruneFleetSnapshots(ctx context.Context, before time.Time) (int64, error) {
	// Stored times are whole microseconds, so "before before" and "before
	// before rounded up" select the same rows.
	before = ceilMicro(before)
	var total int64
	for {
		n, err := s.db.Exec(ctx, s.sql.PruneFleetSnapshots, s.time(before), s.pruneBatchSize)
		if err != nil {
			return total, fmt.Errorf("prune fleet snapshots before %s: %w", before.UTC().Format(time.RFC3339Nano), err)
		}
		total += n
		if n < int64(s.pruneBatchSize) {
			return total, nil
		}
	}
}

// scanIncident reads one row of IncidentColumns.
func scanIncident(r Row) (*holdfast.Incident, error) {
	var (
		in       holdfast.Incident
		provider string
		timeline string
	)
	err := r.Scan(&in.ID, &in.Kind, &provider, &in.Tenant, timeDest(&in.OpenedAt), timeDest(&in.ResolvedAt),
		&in.Evidence, &in.Affected, &in.Recovered, &timeline, timeDest(&in.EscalatedAt))
	if err != nil {
		return nil, err
	}
	in.Provider = holdfast.Provider(provider)
	if in.Timeline, err = decodeEntries(timeline, func(e *holdfast.IncidentEntry) *time.Time { return &e.At }); err != nil {
		return nil, fmt.Errorf("timeline of incident %d: %w", in.ID, err)
	}
	return &in, nil
}

// scanHeldAction reads one row of heldActionColumns.
func scanHeldAction(r Row) (*holdfast.HeldAction, error) {
	var (
		h            holdfast.HeldAction
		provider, to string
	)
	if err := r.Scan(&h.ID, &h.InboxID, &provider, &h.Tenant, &to, &h.Reason, &h.Why,
		timeDest(&h.HeldAt), &h.Done, &h.Outcome, timeDest(&h.ClosedAt)); err != nil {
		return nil, err
	}
	h.Provider, h.To = holdfast.Provider(provider), holdfast.State(to)
	return &h, nil
}

// encodeTimeline returns tl as a JSON array, its times in UTC at the
// store's precision.
func encodeTimeline(tl []holdfast.IncidentEntry) (string, error) {
	out := make([]holdfast.IncidentEntry, len(tl))
	for i, e := range tl {
		out[i] = holdfast.IncidentEntry{At: orTime(e.At, time.Time{}), What: e.What}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

// decodeEntries decodes s, a JSON array of entries that have a time (at
// returns where), with their times in UTC; an empty array is nil.
func decodeEntries[T any](s string, at func(*T) *time.Time) ([]T, error) {
	var out []T
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, nil
	}
	for i := range out {
		t := at(&out[i])
		*t = t.UTC()
	}
	return out, nil
}

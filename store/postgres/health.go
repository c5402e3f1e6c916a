package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/holdfast/holdfast"
)

// SaveIncident inserts or replaces the incident with in.ID. Times are
// rounded down to the store's precision; a zero ResolvedAt is stored as
// NULL (open). in is not modified.
func (s *Store) SaveIncident(ctx context.Context, in *holdfast.Incident) error {
	_, err := s.pool.Exec(ctx, queryUpsertIncident,
		in.ID, in.Kind, string(in.Provider), in.Tenant, orTime(in.OpenedAt, time.Time{}),
		nullTime(in.ResolvedAt), in.Evidence, in.Affected, in.Recovered, storedTimeline(in.Timeline))
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
	rows, err := s.pool.Query(ctx, q, limit(n))
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	defer rows.Close()
	var out []*holdfast.Incident
	for rows.Next() {
		in, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("list incidents: %w", err)
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	return out, nil
}

// IncidentByID returns the incident with the given ID, or ErrNotFound.
func (s *Store) IncidentByID(ctx context.Context, id int64) (*holdfast.Incident, error) {
	in, err := scanIncident(s.pool.QueryRow(ctx, queryIncident, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("incident %d: %w", id, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("incident %d: %w", id, err)
	}
	return in, nil
}

// SaveHeldAction inserts or replaces the held action with h.ID. Times are
// rounded down to the store's precision; a zero ClosedAt is stored as NULL.
// h is not modified.
func (s *Store) SaveHeldAction(ctx context.Context, h *holdfast.HeldAction) error {
	_, err := s.pool.Exec(ctx, queryUpsertHeldAction,
		h.ID, h.InboxID, string(h.Provider), h.Tenant, string(h.To), h.Reason, h.Why,
		orTime(h.HeldAt, time.Time{}), h.Done, h.Outcome, nullTime(h.ClosedAt))
	if err != nil {
		return fmt.Errorf("save held action %d for inbox %s: %w", h.ID, h.InboxID, err)
	}
	return nil
}

// FindHeldActions returns the held actions f selects, oldest first by ID
// or, with f.Newest, newest first.
func (s *Store) FindHeldActions(ctx context.Context, f holdfast.HeldActionFilter) ([]*holdfast.HeldAction, error) {
	var (
		rows pgx.Rows
		err  error
	)
	switch {
	case f == (holdfast.HeldActionFilter{PendingOnly: true, Newest: f.Newest, Limit: f.Limit}):
		rows, err = s.pool.Query(ctx, order(f.Newest, queryPendingHeldActions, queryNewestPendingHeldActions), limit(f.Limit))
	default:
		q := order(f.Newest, queryHeldActions, queryNewestHeldActions)
		if f.InboxID != "" {
			q = order(f.Newest, queryInboxHeldActions, queryNewestInboxHeldActions)
		}
		rows, err = s.pool.Query(ctx, q, f.ID, f.InboxID, f.PendingOnly, f.DoneOnly, string(f.Provider), f.Tenant,
			sinceTime(f.Since), nullTime(f.Until), limit(f.Limit))
	}
	if err != nil {
		return nil, fmt.Errorf("list held actions: %w", err)
	}
	defer rows.Close()
	var out []*holdfast.HeldAction
	for rows.Next() {
		var (
			h            holdfast.HeldAction
			provider, to string
			closedAt     *time.Time
		)
		if err := rows.Scan(&h.ID, &h.InboxID, &provider, &h.Tenant, &to, &h.Reason, &h.Why,
			&h.HeldAt, &h.Done, &h.Outcome, &closedAt); err != nil {
			return nil, fmt.Errorf("list held actions: %w", err)
		}
		h.Provider = holdfast.Provider(provider)
		h.To = holdfast.State(to)
		h.HeldAt = h.HeldAt.UTC()
		h.ClosedAt = fromNullTime(closedAt)
		out = append(out, &h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list held actions: %w", err)
	}
	return out, nil
}

// AppendNotice records n and sets n.ID. A zero n.At is set to now; the time
// is rounded down to the store's precision and set back in n. It returns
// ErrConflict if a notice for the same inbox and episode exists.
func (s *Store) AppendNotice(ctx context.Context, n *holdfast.Notice) error {
	at := s.orNow(n.At)
	var id int64
	err := s.pool.QueryRow(ctx, queryInsertNotice, n.InboxID, n.Episode, n.Admin, n.Reason, at).Scan(&id)
	if isUnique(err) {
		return fmt.Errorf("append notice for inbox %s episode %d: %w: %w", n.InboxID, n.Episode, holdfast.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("append notice for inbox %s episode %d: %w", n.InboxID, n.Episode, err)
	}
	n.ID, n.At = id, at
	return nil
}

// Notices returns the notices recorded for the inbox, oldest first.
func (s *Store) Notices(ctx context.Context, inboxID string) ([]*holdfast.Notice, error) {
	rows, err := s.pool.Query(ctx, queryNotices, inboxID)
	if err != nil {
		return nil, fmt.Errorf("notices of inbox %s: %w", inboxID, err)
	}
	defer rows.Close()
	var out []*holdfast.Notice
	for rows.Next() {
		var n holdfast.Notice
		if err := rows.Scan(&n.ID, &n.InboxID, &n.Episode, &n.Admin, &n.Reason, &n.At); err != nil {
			return nil, fmt.Errorf("notices of inbox %s: %w", inboxID, err)
		}
		n.At = n.At.UTC()
		out = append(out, &n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notices of inbox %s: %w", inboxID, err)
	}
	return out, nil
}

// SaveEngineState replaces the health engine's saved state with state,
// saved at at (now if zero).
func (s *Store) SaveEngineState(ctx context.Context, at time.Time, state []byte) error {
	if state == nil {
		state = []byte{}
	}
	if _, err := s.pool.Exec(ctx, queryUpsertEngineState, s.orNow(at), state); err != nil {
		return fmt.Errorf("save engine state (%d bytes): %w", len(state), err)
	}
	return nil
}

// EngineState returns the health engine's saved state and when it was
// saved, or ErrNotFound if none was.
func (s *Store) EngineState(ctx context.Context) (time.Time, []byte, error) {
	var (
		at    time.Time
		state []byte
	)
	err := s.pool.QueryRow(ctx, queryEngineState).Scan(&at, &state)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil, fmt.Errorf("engine state: %w", holdfast.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("engine state: %w", err)
	}
	if state == nil {
		state = []byte{}
	}
	return at.UTC(), state, nil
}

// scanIncident reads one row of incidentColumns.
func scanIncident(r pgx.Row) (*holdfast.Incident, error) {
	var (
		in         holdfast.Incident
		provider   string
		resolvedAt *time.Time
	)
	err := r.Scan(&in.ID, &in.Kind, &provider, &in.Tenant, &in.OpenedAt, &resolvedAt,
		&in.Evidence, &in.Affected, &in.Recovered, &in.Timeline)
	if err != nil {
		return nil, err
	}
	in.Provider = holdfast.Provider(provider)
	in.OpenedAt = in.OpenedAt.UTC()
	in.ResolvedAt = fromNullTime(resolvedAt)
	for i := range in.Timeline {
		in.Timeline[i].At = in.Timeline[i].At.UTC()
	}
	if len(in.Timeline) == 0 {
		in.Timeline = nil
	}
	return &in, nil
}

// storedTimeline returns tl as stored: never nil, so that it encodes as a
// JSON array, with its times in UTC at the store's precision.
func storedTimeline(tl []holdfast.IncidentEntry) []holdfast.IncidentEntry {
	out := make([]holdfast.IncidentEntry, len(tl))
	for i, e := range tl {
		out[i] = holdfast.IncidentEntry{At: orTime(e.At, time.Time{}), What: e.What}
	}
	return out
}

// nullTime returns t in UTC at the store's precision, or nil (NULL) when t
// is zero.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = orTime(t, time.Time{})
	return &t
}

// sinceTime returns the lower bound t of a range in UTC, rounded up to the
// store's precision so that "at or after t" keeps its meaning, or nil
// (NULL, open) when t is zero.
func sinceTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = ceilMicro(t).UTC()
	return &t
}

// fromNullTime reverses nullTime.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
)

// SaveIncident inserts or replaces the incident with in.ID. Times are
// rounded down to the store's precision; a zero ResolvedAt is stored as
// NULL (open). in is not modified.
func (s *Store) SaveIncident(ctx context.Context, in *holdfast.Incident) error {
	timeline, err := encodeTimeline(in.Timeline)
	if err != nil {
		return fmt.Errorf("save incident %d: timeline: %w", in.ID, err)
	}
	_, err = s.db.ExecContext(ctx, queryUpsertIncident,
		in.ID, in.Kind, string(in.Provider), in.Tenant, micros(in.OpenedAt),
		nullMicros(in.ResolvedAt), in.Evidence, in.Affected, in.Recovered, timeline)
	if err != nil {
		return fmt.Errorf("save incident %d: %w", in.ID, err)
	}
	return nil
}

// Incidents returns at most n incidents (zero or less means 100, at
// most 1000), newest first by ID, only the open ones if openOnly.
func (s *Store) Incidents(ctx context.Context, openOnly bool, n int) ([]*holdfast.Incident, error) {
	q := queryIncidents
	if openOnly {
		q = queryOpenIncidents
	}
	rows, err := s.db.QueryContext(ctx, q, limit(n))
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
	in, err := scanIncident(s.db.QueryRowContext(ctx, queryIncident, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	_, err := s.db.ExecContext(ctx, queryUpsertHeldAction,
		h.ID, h.InboxID, string(h.Provider), h.Tenant, string(h.To), h.Reason, h.Why,
		micros(h.HeldAt), h.Done, h.Outcome, nullMicros(h.ClosedAt))
	if err != nil {
		return fmt.Errorf("save held action %d for inbox %s: %w", h.ID, h.InboxID, err)
	}
	return nil
}

// FindHeldActions returns the held actions f selects, oldest first by ID
// or, with f.Newest, newest first.
func (s *Store) FindHeldActions(ctx context.Context, f holdfast.HeldActionFilter) ([]*holdfast.HeldAction, error) {
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case f == (holdfast.HeldActionFilter{PendingOnly: true, Newest: f.Newest, Limit: f.Limit}):
		rows, err = s.db.QueryContext(ctx, order(f.Newest, queryPendingHeldActions, queryNewestPendingHeldActions), limit(f.Limit))
	default:
		q := order(f.Newest, queryHeldActions, queryNewestHeldActions)
		if f.InboxID != "" {
			q = order(f.Newest, queryInboxHeldActions, queryNewestInboxHeldActions)
		}
		rows, err = s.db.QueryContext(ctx, q, f.ID, f.InboxID, f.PendingOnly, f.DoneOnly, string(f.Provider), f.Tenant,
			sinceMicros(f.Since), nullMicros(f.Until), limit(f.Limit))
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
			heldAt       int64
			closedAt     sql.NullInt64
		)
		if err := rows.Scan(&h.ID, &h.InboxID, &provider, &h.Tenant, &to, &h.Reason, &h.Why,
			&heldAt, &h.Done, &h.Outcome, &closedAt); err != nil {
			return nil, fmt.Errorf("list held actions: %w", err)
		}
		h.Provider = holdfast.Provider(provider)
		h.To = holdfast.State(to)
		h.HeldAt = fromMicros(heldAt)
		h.ClosedAt = fromNullMicros(closedAt)
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
	err := s.db.QueryRowContext(ctx, queryInsertNotice, n.InboxID, n.Episode, n.Admin, n.Reason, micros(at)).Scan(&id)
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
	rows, err := s.db.QueryContext(ctx, queryNotices, inboxID)
	if err != nil {
		return nil, fmt.Errorf("notices of inbox %s: %w", inboxID, err)
	}
	defer rows.Close()
	var out []*holdfast.Notice
	for rows.Next() {
		var (
			n  holdfast.Notice
			at int64
		)
		if err := rows.Scan(&n.ID, &n.InboxID, &n.Episode, &n.Admin, &n.Reason, &at); err != nil {
			return nil, fmt.Errorf("notices of inbox %s: %w", inboxID, err)
		}
		n.At = fromMicros(at)
		out = append(out, &n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("notices of inbox %s: %w", inboxID, err)
	}
	return out, nil
}

// SaveEngineState replaces the health engine's saved state with state,
// saved at at (now if zero). The write holds the store's only connection
// for as long as it takes to write state.
func (s *Store) SaveEngineState(ctx context.Context, at time.Time, state []byte) error {
	if state == nil {
		state = []byte{}
	}
	if _, err := s.db.ExecContext(ctx, queryUpsertEngineState, micros(s.orNow(at)), state); err != nil {
		return fmt.Errorf("save engine state (%d bytes): %w", len(state), err)
	}
	return nil
}

// EngineState returns the health engine's saved state and when it was
// saved, or ErrNotFound if none was.
func (s *Store) EngineState(ctx context.Context) (time.Time, []byte, error) {
	var (
		at    int64
		state []byte
	)
	err := s.db.QueryRowContext(ctx, queryEngineState).Scan(&at, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil, fmt.Errorf("engine state: %w", holdfast.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("engine state: %w", err)
	}
	if state == nil {
		state = []byte{}
	}
	return fromMicros(at), state, nil
}

// scanIncident reads one row of incidentColumns.
func scanIncident(r rowScanner) (*holdfast.Incident, error) {
	var (
		in         holdfast.Incident
		provider   string
		openedAt   int64
		resolvedAt sql.NullInt64
		timeline   string
	)
	err := r.Scan(&in.ID, &in.Kind, &provider, &in.Tenant, &openedAt, &resolvedAt,
		&in.Evidence, &in.Affected, &in.Recovered, &timeline)
	if err != nil {
		return nil, err
	}
	in.Provider = holdfast.Provider(provider)
	in.OpenedAt = fromMicros(openedAt)
	in.ResolvedAt = fromNullMicros(resolvedAt)
	if err := json.Unmarshal([]byte(timeline), &in.Timeline); err != nil {
		return nil, fmt.Errorf("timeline of incident %d: %w", in.ID, err)
	}
	if len(in.Timeline) == 0 {
		in.Timeline = nil
	}
	return &in, nil
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

// nullMicros converts t to the stored form, or NULL when t is zero.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: micros(t), Valid: true}
}

// sinceMicros converts the lower bound t of a range to the stored form,
// rounded up so that "at or after t" keeps its meaning, or NULL (open)
// when t is zero.
func sinceMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return nullMicros(ceilMicro(t))
}

// fromNullMicros reverses nullMicros.
func fromNullMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}

package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/holdfast/holdfast"
)

// CreateInbox stores in and appends ev, its creation event, in one
// transaction. Zero times in in are filled from the store's clock (UpdatedAt
// and Since from CreatedAt); all times are rounded down to the store's
// precision and set back in in, so in matches what Inbox returns. ev gets
// in's ID, its time defaults to CreatedAt and its new state to in.State.
// It returns ErrConflict if the ID, or the provider and email, are taken.
func (s *Store) CreateInbox(ctx context.Context, in *holdfast.Inbox, ev holdfast.Event) error {
	if err := validateInbox(in, ev); err != nil {
		return fmt.Errorf("create inbox %s: %w", in.ID, err)
	}
	in.CreatedAt = s.orNow(in.CreatedAt)
	in.UpdatedAt = orTime(in.UpdatedAt, in.CreatedAt)
	in.Since = orTime(in.Since, in.CreatedAt)
	in.LastSyncAt = orTime(in.LastSyncAt, time.Time{})
	ev.InboxID = in.ID
	ev.At = orTime(ev.At, in.CreatedAt)
	if ev.NewState == "" {
		ev.NewState = in.State
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, queryInsertInbox,
			in.ID, in.Email, string(in.Provider), in.Tenant, in.Username, in.IMAP, in.SMTP, in.Credentials,
			string(in.State), in.Reason, in.Message, in.Since, in.CreatedAt, in.UpdatedAt,
			in.SyncCursor, nullTime(in.LastSyncAt), nullText(in.OwnerEmail),
		); err != nil {
			if isUnique(err) {
				return fmt.Errorf("%w: %w", holdfast.ErrConflict, err)
			}
			return err
		}
		return s.insertEvent(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("create inbox %s: %w", in.ID, err)
	}
	return nil
}

// Inbox returns the inbox with the given ID, or ErrNotFound.
func (s *Store) Inbox(ctx context.Context, id string) (*holdfast.Inbox, error) {
	in, err := scanInbox(s.pool.QueryRow(ctx, queryInbox, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("inbox %s: %w", id, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("inbox %s: %w", id, err)
	}
	return in, nil
}

// Inboxes returns one page of inboxes ordered by ID, filtered by f.
func (s *Store) Inboxes(ctx context.Context, f holdfast.InboxFilter) ([]*holdfast.Inbox, error) {
	var (
		rows pgx.Rows
		err  error
		n    = limit(f.Limit)
	)
	switch {
	case f.State != "" && f.Provider != "":
		rows, err = s.pool.Query(ctx, queryInboxesByStateProvider, string(f.State), string(f.Provider), f.After, n)
	case f.State != "":
		rows, err = s.pool.Query(ctx, queryInboxesByState, string(f.State), f.After, n)
	case f.Provider != "":
		rows, err = s.pool.Query(ctx, queryInboxesByProvider, string(f.Provider), f.After, n)
	default:
		rows, err = s.pool.Query(ctx, queryInboxes, f.After, n)
	}
	if err != nil {
		return nil, fmt.Errorf("list inboxes: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*holdfast.Inbox, error) { return scanInbox(r) })
	if err != nil {
		return nil, fmt.Errorf("list inboxes: %w", err)
	}
	return out, nil
}

// DeleteInbox removes the inbox and appends ev, its deletion event, in one
// transaction. ev gets the inbox's ID; its old state defaults to the state
// the inbox was in and its time to now. It returns ErrNotFound if the inbox
// does not exist.
func (s *Store) DeleteInbox(ctx context.Context, id string, ev holdfast.Event) error {
	ev.InboxID = id
	ev.At = s.orNow(ev.At)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var state string
		err := tx.QueryRow(ctx, queryDeleteInbox, id).Scan(&state)
		if errors.Is(err, pgx.ErrNoRows) {
			return holdfast.ErrNotFound
		}
		if err != nil {
			return err
		}
		if ev.OldState == "" {
			ev.OldState = holdfast.State(state)
		}
		return s.insertEvent(ctx, tx, ev)
	})
	if err != nil {
		return fmt.Errorf("delete inbox %s: %w", id, err)
	}
	return nil
}

// ChangeState moves the inbox to c.To and appends the event, in one
// transaction. Since changes only when the state does; a zero c.At means
// now. It returns ErrNotFound for an unknown inbox and ErrConflict when
// c.From is set and the inbox is no longer in it.
func (s *Store) ChangeState(ctx context.Context, id string, c holdfast.StateChange) (*holdfast.Inbox, error) {
	if !c.To.Valid() {
		return nil, fmt.Errorf("change state of inbox %s: %w", id, holdfast.Invalidf("state", "unknown state %q", c.To))
	}
	at := s.orNow(c.At)
	var in *holdfast.Inbox
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var old string
		err := tx.QueryRow(ctx, queryLockInboxState, id).Scan(&old)
		if errors.Is(err, pgx.ErrNoRows) {
			return holdfast.ErrNotFound
		}
		if err != nil {
			return err
		}
		if c.From != "" && holdfast.State(old) != c.From {
			return fmt.Errorf("%w: inbox is %s, not %s", holdfast.ErrConflict, old, c.From)
		}
		in, err = scanInbox(tx.QueryRow(ctx, queryUpdateState, string(c.To), at, c.Reason, c.Message, id))
		if err != nil {
			return err
		}
		return s.insertEvent(ctx, tx, holdfast.Event{
			InboxID:  id,
			At:       at,
			OldState: holdfast.State(old),
			NewState: c.To,
			Reason:   c.Reason,
			Message:  c.Message,
			Cause:    c.Cause,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("change state of inbox %s: %w", id, err)
	}
	return in, nil
}

// SetOwnerEmail sets the inbox's owner address, NULL when owner is empty,
// and returns the inbox. It returns ErrNotFound for an unknown inbox.
func (s *Store) SetOwnerEmail(ctx context.Context, id, owner string) (*holdfast.Inbox, error) {
	in, err := scanInbox(s.pool.QueryRow(ctx, querySetOwnerEmail, nullText(owner), s.now(), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("set owner of inbox %s: %w", id, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("set owner of inbox %s: %w", id, err)
	}
	return in, nil
}

// nullText returns &s, or nil (NULL) when s is empty.
func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// SetCredentials replaces the inbox's sealed credentials. It returns
// ErrNotFound for an unknown inbox.
func (s *Store) SetCredentials(ctx context.Context, id string, sealed []byte) error {
	tag, err := s.pool.Exec(ctx, queryUpdateCredentials, sealed, s.now(), id)
	if err != nil {
		return fmt.Errorf("set credentials of inbox %s: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("set credentials of inbox %s: %w", id, holdfast.ErrNotFound)
	}
	return nil
}

// SwapCredentials replaces the inbox's sealed credentials with sealed if
// they are still byte-equal to old (no credentials and empty credentials
// are equal). It returns ErrNotFound for an unknown inbox and ErrConflict,
// with nothing changed, when the credentials are no longer old. The
// compare-and-set is one UPDATE, which rechecks the credentials once a
// concurrent change has committed.
func (s *Store) SwapCredentials(ctx context.Context, id string, old, sealed []byte) error {
	if old == nil {
		old = []byte{} // compared with coalesce(credentials, ''), never NULL
	}
	tag, err := s.pool.Exec(ctx, querySwapCredentials, sealed, s.now(), id, old)
	if err != nil {
		return fmt.Errorf("swap credentials of inbox %s: %w", id, err)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	// Either no such inbox, or its credentials changed.
	var ok bool
	err = s.pool.QueryRow(ctx, queryInboxExists, id).Scan(&ok)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("swap credentials of inbox %s: %w", id, holdfast.ErrNotFound)
	case err != nil:
		return fmt.Errorf("swap credentials of inbox %s: %w", id, err)
	}
	return fmt.Errorf("swap credentials of inbox %s: %w: credentials changed", id, holdfast.ErrConflict)
}

// Events returns one page of the inbox's event log, newest first. The log
// outlives the inbox: an unknown or deleted inbox's events are still
// returned, and an inbox that never existed has none.
func (s *Store) Events(ctx context.Context, inboxID string, f holdfast.EventFilter) ([]holdfast.Event, error) {
	before := f.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	rows, err := s.pool.Query(ctx, queryEvents, inboxID, before, limit(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("events of inbox %s: %w", inboxID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (holdfast.Event, error) {
		var (
			ev                        holdfast.Event
			oldState, newState, cause string
		)
		err := r.Scan(&ev.ID, &ev.InboxID, &ev.At, &oldState, &newState, &ev.Reason, &ev.Message, &cause)
		ev.At = ev.At.UTC()
		ev.OldState, ev.NewState, ev.Cause = holdfast.State(oldState), holdfast.State(newState), holdfast.Cause(cause)
		return ev, err
	})
	if err != nil {
		return nil, fmt.Errorf("events of inbox %s: %w", inboxID, err)
	}
	return out, nil
}

// CountInboxes counts inboxes per provider and state, ordered by provider
// and state.
func (s *Store) CountInboxes(ctx context.Context) ([]holdfast.InboxCount, error) {
	rows, err := s.pool.Query(ctx, queryCountInboxes)
	if err != nil {
		return nil, fmt.Errorf("count inboxes: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanCount)
	if err != nil {
		return nil, fmt.Errorf("count inboxes: %w", err)
	}
	return out, nil
}

// scanCount reads provider, state and count.
func scanCount(r pgx.CollectableRow) (holdfast.InboxCount, error) {
	var (
		c               holdfast.InboxCount
		provider, state string
	)
	err := r.Scan(&provider, &state, &c.Count)
	c.Provider, c.State = holdfast.Provider(provider), holdfast.State(state)
	return c, err
}

// insertEvent appends ev within tx.
func (s *Store) insertEvent(ctx context.Context, tx pgx.Tx, ev holdfast.Event) error {
	_, err := tx.Exec(ctx, queryInsertEvent,
		ev.InboxID, s.orNow(ev.At), string(ev.OldState), string(ev.NewState), ev.Reason, ev.Message, string(ev.Cause))
	if err != nil {
		return fmt.Errorf("append event: %w", err)
	}
	return nil
}

// validateInbox checks what the schema cannot.
func validateInbox(in *holdfast.Inbox, ev holdfast.Event) error {
	switch {
	case in.ID == "":
		return holdfast.Invalidf("id", "must not be empty")
	case in.Email == "":
		return holdfast.Invalidf("email", "must not be empty")
	case !in.Provider.Valid():
		return holdfast.Invalidf("provider", "unknown provider %q", in.Provider)
	case !in.State.Valid():
		return holdfast.Invalidf("state", "unknown state %q", in.State)
	case ev.InboxID != "" && ev.InboxID != in.ID:
		return holdfast.Invalidf("", "creation event is for inbox %s", ev.InboxID)
	}
	return nil
}

// scanInbox reads one row of inboxColumns.
func scanInbox(r pgx.Row) (*holdfast.Inbox, error) {
	var (
		in              holdfast.Inbox
		provider, state string
		lastSyncAt      *time.Time
		owner           *string
	)
	err := r.Scan(&in.ID, &in.Email, &provider, &in.Tenant, &in.Username, &in.IMAP, &in.SMTP, &in.Credentials,
		&state, &in.Reason, &in.Message, &in.Since, &in.CreatedAt, &in.UpdatedAt, &in.SyncCursor, &lastSyncAt, &owner)
	if err != nil {
		return nil, err
	}
	if owner != nil {
		in.OwnerEmail = *owner
	}
	in.Provider, in.State = holdfast.Provider(provider), holdfast.State(state)
	in.Since, in.CreatedAt, in.UpdatedAt = in.Since.UTC(), in.CreatedAt.UTC(), in.UpdatedAt.UTC()
	in.LastSyncAt = fromNullTime(lastSyncAt)
	return &in, nil
}

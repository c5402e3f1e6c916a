package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

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
	imap, err := encodeServer(in.IMAP)
	if err != nil {
		return fmt.Errorf("create inbox %s: imap: %w", in.ID, err)
	}
	smtp, err := encodeServer(in.SMTP)
	if err != nil {
		return fmt.Errorf("create inbox %s: smtp: %w", in.ID, err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, queryInsertInbox,
			in.ID, in.Email, string(in.Provider), in.Tenant, in.Username, imap, smtp, in.Credentials,
			string(in.State), in.Reason, in.Message, micros(in.Since), micros(in.CreatedAt), micros(in.UpdatedAt),
			in.SyncCursor, nullMicros(in.LastSyncAt), nullString(in.OwnerEmail),
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
	in, err := scanInbox(s.db.QueryRowContext(ctx, queryInbox, id))
	if errors.Is(err, sql.ErrNoRows) {
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
		rows *sql.Rows
		err  error
		n    = limit(f.Limit)
	)
	switch {
	case f.State != "" && f.Provider != "":
		rows, err = s.db.QueryContext(ctx, queryInboxesByStateProvider, string(f.State), string(f.Provider), f.After, n)
	case f.State != "":
		rows, err = s.db.QueryContext(ctx, queryInboxesByState, string(f.State), f.After, n)
	case f.Provider != "":
		rows, err = s.db.QueryContext(ctx, queryInboxesByProvider, string(f.Provider), f.After, n)
	default:
		rows, err = s.db.QueryContext(ctx, queryInboxes, f.After, n)
	}
	if err != nil {
		return nil, fmt.Errorf("list inboxes: %w", err)
	}
	out, err := scanInboxes(rows)
	if err != nil {
		return nil, fmt.Errorf("list inboxes: %w", err)
	}
	return out, nil
}

// scanInboxes reads every inbox of rows and closes them.
func scanInboxes(rows *sql.Rows) ([]*holdfast.Inbox, error) {
	defer rows.Close()
	var out []*holdfast.Inbox
	for rows.Next() {
		in, err := scanInbox(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// DeleteInbox removes the inbox and appends ev, its deletion event, in one
// transaction. ev gets the inbox's ID; its old state defaults to the state
// the inbox was in and its time to now. It returns ErrNotFound if the inbox
// does not exist.
func (s *Store) DeleteInbox(ctx context.Context, id string, ev holdfast.Event) error {
	ev.InboxID = id
	ev.At = s.orNow(ev.At)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var state string
		err := tx.QueryRowContext(ctx, queryDeleteInbox, id).Scan(&state)
		if errors.Is(err, sql.ErrNoRows) {
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
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var old string
		err := tx.QueryRowContext(ctx, queryInboxState, id).Scan(&old)
		if errors.Is(err, sql.ErrNoRows) {
			return holdfast.ErrNotFound
		}
		if err != nil {
			return err
		}
		if c.From != "" && holdfast.State(old) != c.From {
			return fmt.Errorf("%w: inbox is %s, not %s", holdfast.ErrConflict, old, c.From)
		}
		in, err = scanInbox(tx.QueryRowContext(ctx, queryUpdateState,
			string(c.To), micros(at), c.Reason, c.Message, id))
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
	in, err := scanInbox(s.db.QueryRowContext(ctx, querySetOwnerEmail, nullString(owner), micros(s.now()), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("set owner of inbox %s: %w", id, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("set owner of inbox %s: %w", id, err)
	}
	return in, nil
}

// SetCredentials replaces the inbox's sealed credentials. It returns
// ErrNotFound for an unknown inbox.
func (s *Store) SetCredentials(ctx context.Context, id string, sealed []byte) error {
	res, err := s.db.ExecContext(ctx, queryUpdateCredentials, sealed, micros(s.now()), id)
	if err != nil {
		return fmt.Errorf("set credentials of inbox %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("set credentials of inbox %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("set credentials of inbox %s: %w", id, holdfast.ErrNotFound)
	}
	return nil
}

// SwapCredentials replaces the inbox's sealed credentials with sealed if
// they are still byte-equal to old (no credentials and empty credentials
// are equal). It returns ErrNotFound for an unknown inbox and ErrConflict,
// with nothing changed, when the credentials are no longer old.
func (s *Store) SwapCredentials(ctx context.Context, id string, old, sealed []byte) error {
	if old == nil {
		old = []byte{} // compared with coalesce(credentials, X''), never NULL
	}
	res, err := s.db.ExecContext(ctx, querySwapCredentials, sealed, micros(s.now()), id, old)
	if err != nil {
		return fmt.Errorf("swap credentials of inbox %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("swap credentials of inbox %s: %w", id, err)
	}
	if n > 0 {
		return nil
	}
	// Either no such inbox, or its credentials changed.
	var one int
	err = s.db.QueryRowContext(ctx, queryInboxExists, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
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
	rows, err := s.db.QueryContext(ctx, queryEvents, inboxID, before, limit(f.Limit))
	if err != nil {
		return nil, fmt.Errorf("events of inbox %s: %w", inboxID, err)
	}
	defer rows.Close()
	var out []holdfast.Event
	for rows.Next() {
		var (
			ev                 holdfast.Event
			at                 int64
			oldState, newState string
			cause              string
		)
		if err := rows.Scan(&ev.ID, &ev.InboxID, &at, &oldState, &newState, &ev.Reason, &ev.Message, &cause); err != nil {
			return nil, fmt.Errorf("events of inbox %s: %w", inboxID, err)
		}
		ev.At = fromMicros(at)
		ev.OldState = holdfast.State(oldState)
		ev.NewState = holdfast.State(newState)
		ev.Cause = holdfast.Cause(cause)
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("events of inbox %s: %w", inboxID, err)
	}
	return out, nil
}

// CountInboxes counts inboxes per provider and state, ordered by provider
// and state.
func (s *Store) CountInboxes(ctx context.Context) ([]holdfast.InboxCount, error) {
	rows, err := s.db.QueryContext(ctx, queryCountInboxes)
	if err != nil {
		return nil, fmt.Errorf("count inboxes: %w", err)
	}
	defer rows.Close()
	var out []holdfast.InboxCount
	for rows.Next() {
		var provider, state string
		var n int64
		if err := rows.Scan(&provider, &state, &n); err != nil {
			return nil, fmt.Errorf("count inboxes: %w", err)
		}
		out = append(out, holdfast.InboxCount{Provider: holdfast.Provider(provider), State: holdfast.State(state), Count: n})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count inboxes: %w", err)
	}
	return out, nil
}

// insertEvent appends ev within tx.
func (s *Store) insertEvent(ctx context.Context, tx *sql.Tx, ev holdfast.Event) error {
	_, err := tx.ExecContext(ctx, queryInsertEvent,
		ev.InboxID, micros(s.orNow(ev.At)), string(ev.OldState), string(ev.NewState), ev.Reason, ev.Message, string(ev.Cause))
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

// rowScanner is *sql.Row or *sql.Rows.
type rowScanner interface {
	Scan(dest ...any) error
}

// scanInbox reads one row of inboxColumns.
func scanInbox(r rowScanner) (*holdfast.Inbox, error) {
	var (
		in                          holdfast.Inbox
		provider, state             string
		imap, smtp                  sql.NullString
		since, createdAt, updatedAt int64
		lastSyncAt                  sql.NullInt64
		owner                       sql.NullString
	)
	err := r.Scan(&in.ID, &in.Email, &provider, &in.Tenant, &in.Username, &imap, &smtp, &in.Credentials,
		&state, &in.Reason, &in.Message, &since, &createdAt, &updatedAt, &in.SyncCursor, &lastSyncAt, &owner)
	if err != nil {
		return nil, err
	}
	in.OwnerEmail = owner.String
	in.Provider = holdfast.Provider(provider)
	in.State = holdfast.State(state)
	in.Since = fromMicros(since)
	in.CreatedAt = fromMicros(createdAt)
	in.UpdatedAt = fromMicros(updatedAt)
	in.LastSyncAt = fromNullMicros(lastSyncAt)
	if in.IMAP, err = decodeServer(imap); err != nil {
		return nil, fmt.Errorf("imap of inbox %s: %w", in.ID, err)
	}
	if in.SMTP, err = decodeServer(smtp); err != nil {
		return nil, fmt.Errorf("smtp of inbox %s: %w", in.ID, err)
	}
	return &in, nil
}

// nullString returns s, or NULL when s is empty.
func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// encodeServer returns c as JSON text, or NULL when c is nil.
func encodeServer(c *holdfast.ServerConfig) (sql.NullString, error) {
	if c == nil {
		return sql.NullString{}, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return sql.NullString{}, err
	}
	return sql.NullString{String: string(b), Valid: true}, nil
}

// decodeServer reverses encodeServer.
func decodeServer(s sql.NullString) (*holdfast.ServerConfig, error) {
	if !s.Valid {
		return nil, nil
	}
	var c holdfast.ServerConfig
	if err := json.Unmarshal([]byte(s.String), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

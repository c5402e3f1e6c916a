package sqlstore

import (
	"context"
	"encoding/json"
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
	err = s.db.Tx(ctx, func(tx Executor) error {
		if _, err := tx.Exec(ctx, queryInsertInbox,
			in.ID, in.Email, string(in.Provider), in.Tenant, in.Username, imap, smtp, in.Credentials,
			string(in.State), in.Reason, in.Message, s.time(in.Since), s.time(in.CreatedAt), s.time(in.UpdatedAt),
			in.SyncCursor, s.nullTime(in.LastSyncAt), nullString(in.OwnerEmail), holdfast.PartitionOf(in.ID),
		); err != nil {
			return s.conflict(err)
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
	in, err := one(ctx, s.db, scanInbox, queryInbox, id)
	return in, wrapf(err, "inbox %s", id)
}

// Inboxes returns one page of inboxes ordered by ID, filtered by f.
func (s *Store) Inboxes(ctx context.Context, f holdfast.InboxFilter) ([]*holdfast.Inbox, error) {
	n := limit(f.Limit)
	q, args := queryInboxes, []any{f.After, n}
	switch {
	case f.State != "" && f.Provider != "":
		q, args = queryInboxesByStateProvider, []any{string(f.State), string(f.Provider), f.After, n}
	case f.State != "":
		q, args = queryInboxesByState, []any{string(f.State), f.After, n}
	case f.Provider != "":
		q, args = queryInboxesByProvider, []any{string(f.Provider), f.After, n}
	}
	out, err := all(ctx, s.db, scanInbox, q, args...)
	return out, wrapf(err, "list inboxes")
}

// PartitionInboxes returns one page of the inboxes of partition part,
// ordered by ID.
func (s *Store) PartitionInboxes(ctx context.Context, part int, after string, n int) ([]*holdfast.Inbox, error) {
	if part < 0 || part >= holdfast.PartitionCount {
		return nil, fmt.Errorf("list inboxes of a partition: %w",
			holdfast.Invalidf("partition", "partition %d is out of range [0, %d)", part, holdfast.PartitionCount))
	}
	out, err := all(ctx, s.db, scanInbox, queryPartitionInboxes, part, after, limit(n))
	return out, wrapf(err, "list inboxes of partition %d", part)
}

// BackfillPartitions sets the partition of every inbox stored before
// inboxes had one (migration 00013), a thousand per transaction, and
// returns how many it set. The engines' Migrate run it.
func (s *Store) BackfillPartitions(ctx context.Context) (int, error) {
	const batch = 1000
	total := 0
	for {
		ids, err := all(ctx, s.db, scanString, queryUnpartitionedInboxes, batch)
		if err != nil {
			return total, fmt.Errorf("backfill inbox partitions: %w", err)
		}
		err = s.db.Tx(ctx, func(tx Executor) error {
			for _, id := range ids {
				if _, err := tx.Exec(ctx, querySetInboxPartition, id, holdfast.PartitionOf(id)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("backfill inbox partitions: %w", err)
		}
		total += len(ids)
		if len(ids) < batch {
			return total, nil
		}
	}
}

// InboxByEmail returns the inbox of provider p whose email is email,
// ignoring the case of ASCII letters, or ErrNotFound.
func (s *Store) InboxByEmail(ctx context.Context, p holdfast.Provider, email string) (*holdfast.Inbox, error) {
	in, err := one(ctx, s.db, scanInbox, queryInboxByEmail, string(p), email)
	return in, wrapf(err, "%s inbox of %s", p, email)
}

// InboxesByOwner returns, ordered by ID, the inboxes whose owner address
// is email, or that have none and whose email is, ignoring the case of
// ASCII letters.
func (s *Store) InboxesByOwner(ctx context.Context, email string) ([]*holdfast.Inbox, error) {
	out, err := all(ctx, s.db, scanInbox, QueryInboxesByOwner, email)
	return out, wrapf(err, "inboxes of owner %s", email)
}

// DeleteInbox removes the inbox and appends ev, its deletion event, in one
// transaction. ev gets the inbox's ID; its old state defaults to the state
// the inbox was in and its time to now. It returns ErrNotFound if the inbox
// does not exist.
func (s *Store) DeleteInbox(ctx context.Context, id string, ev holdfast.Event) error {
	ev.InboxID = id
	ev.At = s.orNow(ev.At)
	err := s.db.Tx(ctx, func(tx Executor) error {
		state, err := one(ctx, tx, scanString, queryDeleteInbox, id)
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
	err := s.db.Tx(ctx, func(tx Executor) error {
		old, err := one(ctx, tx, scanString, s.sql.LockInboxState, id)
		if err != nil {
			return err
		}
		if c.From != "" && holdfast.State(old) != c.From {
			return fmt.Errorf("%w: inbox is %s, not %s", holdfast.ErrConflict, old, c.From)
		}
		in, err = scanInbox(tx.QueryRow(ctx, queryUpdateState, string(c.To), s.time(at), c.Reason, c.Message, id))
		if err != nil {
			return err
		}
		if err := s.insertEvent(ctx, tx, holdfast.Event{
			InboxID: id, At: at, OldState: holdfast.State(old), NewState: c.To,
			Reason: c.Reason, Message: c.Message, Cause: c.Cause,
		}); err != nil {
			return err
		}
		if c.Announce == nil {
			return nil
		}
		evs, err := c.Announce(in)
		if err != nil {
			return fmt.Errorf("announce: %w", err)
		}
		return s.appendOutbox(ctx, tx, evs)
	})
	if err != nil {
		return nil, fmt.Errorf("change state of inbox %s: %w", id, err)
	}
	return in, nil
}

// SetOwnerEmail sets the inbox's owner address, NULL when owner is empty,
// and returns the inbox. It returns ErrNotFound for an unknown inbox.
func (s *Store) SetOwnerEmail(ctx context.Context, id, owner string) (*holdfast.Inbox, error) {
	in, err := one(ctx, s.db, scanInbox, querySetOwnerEmail, nullString(owner), s.time(s.now()), id)
	return in, wrapf(err, "set owner of inbox %s", id)
}

// SetCredentials replaces the inbox's sealed credentials. It returns
// ErrNotFound for an unknown inbox.
func (s *Store) SetCredentials(ctx context.Context, id string, sealed []byte) error {
	if err := changeOne(ctx, s.db, queryUpdateCredentials, sealed, s.time(s.now()), id); err != nil {
		return fmt.Errorf("set credentials of inbox %s: %w", id, err)
	}
	return nil
}

// SwapCredentials replaces the inbox's sealed credentials with sealed if
// they are still byte-equal to old (no credentials and empty credentials
// are equal). It returns ErrNotFound for an unknown inbox and ErrConflict,
// with nothing changed, when the credentials are no longer old. The
// compare-and-set is one UPDATE, which on PostgreSQL rechecks the
// credentials once a concurrent change has committed.
func (s *Store) SwapCredentials(ctx context.Context, id string, old, sealed []byte) error {
	if old == nil {
		old = []byte{} // compared with the credentials or an empty value, never NULL
	}
	err := swapOne(ctx, s.db, "credentials changed", s.sql.SwapCredentials, queryInboxExists,
		id, sealed, s.time(s.now()), old)
	if err != nil {
		return fmt.Errorf("swap credentials of inbox %s: %w", id, err)
	}
	return nil
}

// Events returns one page of the inbox's event log, newest first. The log
// outlives the inbox: an unknown or deleted inbox's events are still
// returned, and an inbox that never existed has none.
func (s *Store) Events(ctx context.Context, inboxID string, f holdfast.EventFilter) ([]holdfast.Event, error) {
	before := f.Before
	if before <= 0 {
		before = math.MaxInt64
	}
	out, err := all(ctx, s.db, scanEvent, queryEvents, inboxID, before, limit(f.Limit))
	return out, wrapf(err, "events of inbox %s", inboxID)
}

// CountInboxes counts inboxes per provider and state, ordered by provider
// and state.
func (s *Store) CountInboxes(ctx context.Context) ([]holdfast.InboxCount, error) {
	out, err := all(ctx, s.db, scanCount, s.sql.CountInboxes)
	return out, wrapf(err, "count inboxes")
}

// insertEvent appends ev within tx.
func (s *Store) insertEvent(ctx context.Context, tx Executor, ev holdfast.Event) error {
	_, err := tx.Exec(ctx, queryInsertEvent,
		ev.InboxID, s.time(s.orNow(ev.At)), string(ev.OldState), string(ev.NewState), ev.Reason, ev.Message, string(ev.Cause))
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
func scanInbox(r Row) (*holdfast.Inbox, error) {
	var (
		in              holdfast.Inbox
		provider, state string
		imap, smtp      *string
		owner           *string
	)
	err := r.Scan(&in.ID, &in.Email, &provider, &in.Tenant, &in.Username, &imap, &smtp, &in.Credentials,
		&state, &in.Reason, &in.Message, timeDest(&in.Since), timeDest(&in.CreatedAt), timeDest(&in.UpdatedAt),
		&in.SyncCursor, timeDest(&in.LastSyncAt), &owner)
	if err != nil {
		return nil, err
	}
	if owner != nil {
		in.OwnerEmail = *owner
	}
	in.Provider, in.State = holdfast.Provider(provider), holdfast.State(state)
	if in.IMAP, err = decodeServer(imap); err != nil {
		return nil, fmt.Errorf("imap of inbox %s: %w", in.ID, err)
	}
	if in.SMTP, err = decodeServer(smtp); err != nil {
		return nil, fmt.Errorf("smtp of inbox %s: %w", in.ID, err)
	}
	return &in, nil
}

// scanEvent reads one row of an inbox's event log.
func scanEvent(r Row) (holdfast.Event, error) {
	var (
		ev                        holdfast.Event
		oldState, newState, cause string
	)
	err := r.Scan(&ev.ID, &ev.InboxID, timeDest(&ev.At), &oldState, &newState, &ev.Reason, &ev.Message, &cause)
	ev.OldState, ev.NewState, ev.Cause = holdfast.State(oldState), holdfast.State(newState), holdfast.Cause(cause)
	return ev, err
}

// scanCount reads provider, state and count.
func scanCount(r Row) (holdfast.InboxCount, error) {
	var (
		c               holdfast.InboxCount
		provider, state string
	)
	err := r.Scan(&provider, &state, &c.Count)
	c.Provider, c.State = holdfast.Provider(provider), holdfast.State(state)
	return c, err
}

// scanString reads a row of one text column.
func scanString(r Row) (string, error) {
	var v string
	err := r.Scan(&v)
	return v, err
}

// encodeServer returns c as JSON text, or NULL when c is nil.
func encodeServer(c *holdfast.ServerConfig) (any, error) {
	if c == nil {
		return nil, nil
	}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// decodeServer reverses encodeServer.
func decodeServer(s *string) (*holdfast.ServerConfig, error) {
	if s == nil {
		return nil, nil
	}
	var c holdfast.ServerConfig
	if err := json.Unmarshal([]byte(*s), &c); err != nil {
		return nil, err
	}
	return &c, nil
}

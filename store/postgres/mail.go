package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/holdfast/holdfast"
)

// SaveSync stores msgs and the inbox's new cursor in one transaction. A
// message whose ProviderID the inbox knows, or else whose non-empty
// InternetMessageID it knows, updates that stored message (taking the new
// ProviderID); any other is added with a new ID. Each msgs[i] gets its
// stored ID and InboxID and its times rounded as stored. A zero at means
// now; the inbox's UpdatedAt does not change. It returns how many messages
// were added, or ErrNotFound, with nothing stored, for an unknown inbox.
// Syncs of one inbox are serialised by a lock on the inbox's row.
func (s *Store) SaveSync(ctx context.Context, inboxID string, msgs []holdfast.Message, cursor string, at time.Time) (int, error) {
	now := s.now()
	at = s.orNow(at)
	added := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		added = 0
		tag, err := tx.Exec(ctx, querySaveSyncCursor, cursor, at, inboxID)
		if err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return holdfast.ErrNotFound
		}
		for i := range msgs {
			m := &msgs[i]
			m.InboxID = inboxID
			m.ReceivedAt = orTime(m.ReceivedAt, time.Time{})
			isNew, err := saveMessage(ctx, tx, m, now)
			if err != nil {
				return fmt.Errorf("message %q: %w", m.ProviderID, err)
			}
			m.Added = isNew
			if isNew {
				added++
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("save sync of inbox %s: %w", inboxID, err)
	}
	return added, nil
}

// saveMessage updates or inserts m within tx and sets m.ID. It reports
// whether m was inserted.
func saveMessage(ctx context.Context, tx pgx.Tx, m *holdfast.Message, now time.Time) (bool, error) {
	to, cc, flags := nonNil(m.To), nonNil(m.Cc), nonNil(m.Flags)
	args := []any{m.InboxID, m.ProviderID, m.InternetMessageID, m.From, to, cc,
		m.Subject, m.ReceivedAt, m.Snippet, flags, now}
	err := tx.QueryRow(ctx, queryUpdateMessageByProviderID, args...).Scan(&m.ID)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return false, err
	}
	if m.InternetMessageID != "" {
		err := tx.QueryRow(ctx, queryRekeyMessage, args...).Scan(&m.ID)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return false, err
		}
	}
	m.ID = holdfast.NewID("msg", now)
	if _, err := tx.Exec(ctx, queryInsertMessage,
		m.ID, m.InboxID, m.ProviderID, m.InternetMessageID, m.From, to, cc,
		m.Subject, m.ReceivedAt, m.Snippet, flags, now, now,
	); err != nil {
		return false, err
	}
	return true, nil
}

// Messages returns one page of the inbox's messages, newest first. The
// cursor applies when f.BeforeTime is set. An unknown inbox has none.
func (s *Store) Messages(ctx context.Context, inboxID string, f holdfast.MessageFilter) ([]*holdfast.Message, error) {
	var (
		rows pgx.Rows
		err  error
	)
	if f.BeforeTime.IsZero() {
		rows, err = s.pool.Query(ctx, queryMessages, inboxID, limit(f.Limit))
	} else {
		rows, err = s.pool.Query(ctx, queryMessagesBefore, inboxID, orTime(f.BeforeTime, time.Time{}), f.BeforeID, limit(f.Limit))
	}
	if err != nil {
		return nil, fmt.Errorf("messages of inbox %s: %w", inboxID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*holdfast.Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, fmt.Errorf("messages of inbox %s: %w", inboxID, err)
	}
	return out, nil
}

// Message returns one message of the inbox, or ErrNotFound.
func (s *Store) Message(ctx context.Context, inboxID, id string) (*holdfast.Message, error) {
	m, err := scanMessage(s.pool.QueryRow(ctx, queryMessage, inboxID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("message %s of inbox %s: %w", id, inboxID, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("message %s of inbox %s: %w", id, inboxID, err)
	}
	return m, nil
}

// CreateSend stores sd and returns it as stored, or, if the inbox has a
// send with the same non-empty IdempotencyKey, stores nothing and returns
// that one with existing true. A zero CreatedAt means now, a zero UpdatedAt
// or SendAt means CreatedAt, an empty State means SendScheduled and an
// empty ID a new one. sd is not modified. It returns ErrNotFound for an
// unknown inbox and ErrConflict if the ID is taken.
//
// Concurrent creates with one key are decided by the unique index: the
// insert that loses waits for the winner to commit, inserts nothing, and
// reads the winner's send.
func (s *Store) CreateSend(ctx context.Context, sd *holdfast.Send) (*holdfast.Send, bool, error) {
	n, err := s.prepareSend(sd)
	if err != nil {
		return nil, false, fmt.Errorf("create send for inbox %s: %w", sd.InboxID, err)
	}
	var id string
	err = s.pool.QueryRow(ctx, queryInsertSend,
		n.ID, n.InboxID, n.IdempotencyKey, n.MessageID, nonNil(n.To), nonNil(n.Cc), nonNil(n.Bcc),
		n.Subject, n.Text, n.HTML, n.SendAt, string(n.State), n.Reason, n.Attempts,
		n.CreatedAt, n.UpdatedAt, nullTime(n.SentAt),
	).Scan(&id)
	switch {
	case err == nil:
		return n, false, nil
	case errors.Is(err, pgx.ErrNoRows):
		// The idempotency key is taken; the winner has committed.
		old, err := scanSend(s.pool.QueryRow(ctx, querySendByKey, n.InboxID, n.IdempotencyKey))
		if err != nil {
			return nil, false, fmt.Errorf("create send for inbox %s: existing send with key %q: %w", n.InboxID, n.IdempotencyKey, err)
		}
		return old, true, nil
	case isForeignKey(err):
		return nil, false, fmt.Errorf("create send for inbox %s: %w", n.InboxID, holdfast.ErrNotFound)
	case isUnique(err):
		return nil, false, fmt.Errorf("create send %s for inbox %s: %w: %w", n.ID, n.InboxID, holdfast.ErrConflict, err)
	}
	return nil, false, fmt.Errorf("create send for inbox %s: %w", n.InboxID, err)
}

// prepareSend returns a copy of sd with its defaults filled in and its times
// as stored.
func (s *Store) prepareSend(sd *holdfast.Send) (*holdfast.Send, error) {
	n := *sd
	if n.InboxID == "" {
		return nil, holdfast.Invalidf("inbox_id", "must not be empty")
	}
	if n.State == "" {
		n.State = holdfast.SendScheduled
	}
	if !n.State.Valid() {
		return nil, holdfast.Invalidf("state", "unknown send state %q", n.State)
	}
	n.CreatedAt = s.orNow(n.CreatedAt)
	n.UpdatedAt = orTime(n.UpdatedAt, n.CreatedAt)
	n.SendAt = orTime(n.SendAt, n.CreatedAt)
	n.SentAt = orTime(n.SentAt, time.Time{})
	if n.ID == "" {
		n.ID = holdfast.NewID("snd", n.CreatedAt)
	}
	n.To, n.Cc, n.Bcc = nilIfEmpty(n.To), nilIfEmpty(n.Cc), nilIfEmpty(n.Bcc)
	return &n, nil
}

// SendByID returns one send, or ErrNotFound.
func (s *Store) SendByID(ctx context.Context, id string) (*holdfast.Send, error) {
	sd, err := scanSend(s.pool.QueryRow(ctx, querySend, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("send %s: %w", id, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("send %s: %w", id, err)
	}
	return sd, nil
}

// ChangeSend moves the send to c.To with c.Reason (an empty one clears it),
// adds one to Attempts if c.Attempt, and sets SentAt when c.To is
// SendSent; a zero c.At means now. It returns the send as changed,
// ErrNotFound for an unknown send and ErrConflict when c.From is set and
// the send is no longer in it. The compare-and-set is one UPDATE, which
// rechecks the state once a concurrent change has committed.
func (s *Store) ChangeSend(ctx context.Context, id string, c holdfast.SendChange) (*holdfast.Send, error) {
	if !c.To.Valid() {
		return nil, fmt.Errorf("change send %s: %w", id, holdfast.Invalidf("state", "unknown send state %q", c.To))
	}
	at := s.orNow(c.At)
	attempt := 0
	if c.Attempt {
		attempt = 1
	}
	sd, err := scanSend(s.pool.QueryRow(ctx, queryChangeSend,
		id, string(c.From), string(c.To), c.Reason, attempt, at, c.To == holdfast.SendSent))
	if errors.Is(err, pgx.ErrNoRows) {
		// Either no such send, or it left c.From.
		var ok bool
		err = s.pool.QueryRow(ctx, querySendExists, id).Scan(&ok)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return nil, fmt.Errorf("change send %s: %w", id, holdfast.ErrNotFound)
		case err == nil:
			return nil, fmt.Errorf("change send %s: %w: send is no longer %s", id, holdfast.ErrConflict, c.From)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("change send %s: %w", id, err)
	}
	return sd, nil
}

// DueSends returns at most n sends (zero or less means 100, at most 1000)
// in one of states whose SendAt is at or before dueBy, oldest SendAt first,
// then by ID.
func (s *Store) DueSends(ctx context.Context, states []holdfast.SendState, dueBy time.Time, n int) ([]*holdfast.Send, error) {
	if len(states) == 0 {
		return nil, nil
	}
	ss := make([]string, len(states))
	for i, st := range states {
		ss[i] = string(st)
	}
	rows, err := s.pool.Query(ctx, queryDueSends, ss, orTime(dueBy, time.Time{}), limit(n))
	if err != nil {
		return nil, fmt.Errorf("due sends: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*holdfast.Send, error) { return scanSend(r) })
	if err != nil {
		return nil, fmt.Errorf("due sends: %w", err)
	}
	return out, nil
}

// scanMessage reads one row of messageColumns.
func scanMessage(r pgx.Row) (*holdfast.Message, error) {
	var m holdfast.Message
	if err := r.Scan(&m.ID, &m.InboxID, &m.ProviderID, &m.InternetMessageID, &m.From, &m.To, &m.Cc,
		&m.Subject, &m.ReceivedAt, &m.Snippet, &m.Flags); err != nil {
		return nil, err
	}
	m.ReceivedAt = m.ReceivedAt.UTC()
	m.To, m.Cc, m.Flags = nilIfEmpty(m.To), nilIfEmpty(m.Cc), nilIfEmpty(m.Flags)
	return &m, nil
}

// scanSend reads one row of sendColumns.
func scanSend(r pgx.Row) (*holdfast.Send, error) {
	var (
		sd     holdfast.Send
		state  string
		sentAt *time.Time
	)
	if err := r.Scan(&sd.ID, &sd.InboxID, &sd.IdempotencyKey, &sd.MessageID, &sd.To, &sd.Cc, &sd.Bcc,
		&sd.Subject, &sd.Text, &sd.HTML, &sd.SendAt, &state, &sd.Reason, &sd.Attempts,
		&sd.CreatedAt, &sd.UpdatedAt, &sentAt); err != nil {
		return nil, err
	}
	sd.State = holdfast.SendState(state)
	sd.SendAt, sd.CreatedAt, sd.UpdatedAt = sd.SendAt.UTC(), sd.CreatedAt.UTC(), sd.UpdatedAt.UTC()
	sd.SentAt = fromNullTime(sentAt)
	sd.To, sd.Cc, sd.Bcc = nilIfEmpty(sd.To), nilIfEmpty(sd.Cc), nilIfEmpty(sd.Bcc)
	return &sd, nil
}

// nonNil returns l, or an empty list for nil, so that it is stored as the
// JSON array [] rather than null.
func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// nilIfEmpty returns nil for an empty l, as the store reads it back.
func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// isForeignKey reports whether err is a violation of a foreign key.
func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

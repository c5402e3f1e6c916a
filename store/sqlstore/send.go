package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// CreateSend stores sd and returns it as stored, or, if the inbox has a
// send with the same non-empty IdempotencyKey, stores nothing and returns
// that one with existing true. A zero CreatedAt means now, a zero UpdatedAt
// or SendAt means CreatedAt, an empty State means SendScheduled and an
// empty ID a new one. sd is not modified. It returns ErrNotFound for an
// unknown inbox and ErrConflict if the ID is taken.
//
// Concurrent creates with one key are decided by the unique index: the
// insert that loses (on PostgreSQL, after waiting for the winner to
// commit) inserts nothing, and reads the winner's send.
func (s *Store) CreateSend(ctx context.Context, sd *holdfast.Send) (*holdfast.Send, bool, error) {
	n, err := s.prepareSend(sd)
	if err != nil {
		return nil, false, fmt.Errorf("create send for inbox %s: %w", sd.InboxID, err)
	}
	_, err = one(ctx, s.db, scanString, queryInsertSend,
		n.ID, n.InboxID, n.IdempotencyKey, n.MessageID, encodeList(n.To), encodeList(n.Cc), encodeList(n.Bcc),
		n.Subject, n.Text, n.HTML, s.time(n.SendAt), string(n.State), n.Reason, n.Attempts,
		s.time(n.CreatedAt), s.time(n.UpdatedAt), s.nullTime(n.SentAt))
	switch {
	case err == nil:
		return n, false, nil
	case errors.Is(err, holdfast.ErrNotFound):
		// The idempotency key is taken: the unique index decided.
		old, err := one(ctx, s.db, scanSend, querySendByKey, n.InboxID, n.IdempotencyKey)
		if err != nil {
			return nil, false, fmt.Errorf("create send for inbox %s: existing send with key %q: %w", n.InboxID, n.IdempotencyKey, err)
		}
		return old, true, nil
	case s.dialect.IsForeignKeyViolation(err):
		return nil, false, fmt.Errorf("create send for inbox %s: %w", n.InboxID, holdfast.ErrNotFound)
	case s.dialect.IsUniqueViolation(err):
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
	sd, err := one(ctx, s.db, scanSend, querySend, id)
	return sd, wrapf(err, "send %s", id)
}

// ChangeSend moves the send to c.To with c.Reason (an empty one clears it),
// adds one to Attempts if c.Attempt, and sets SentAt when c.To is
// SendSent; a zero c.At means now. It returns the send as changed,
// ErrNotFound for an unknown send and ErrConflict when c.From is set and
// the send is no longer in it. The compare-and-set is one UPDATE, which on
// PostgreSQL rechecks the state once a concurrent change has committed.
func (s *Store) ChangeSend(ctx context.Context, id string, c holdfast.SendChange) (*holdfast.Send, error) {
	if !c.To.Valid() {
		return nil, fmt.Errorf("change send %s: %w", id, holdfast.Invalidf("state", "unknown send state %q", c.To))
	}
	attempt := 0
	if c.Attempt {
		attempt = 1
	}
	sd, err := announced(ctx, s, func(e Executor) (*holdfast.Send, error) {
		sd, err := one(ctx, e, scanSend, queryChangeSend,
			id, string(c.From), string(c.To), c.Reason, attempt, s.time(s.orNow(c.At)), c.To == holdfast.SendSent)
		if errors.Is(err, holdfast.ErrNotFound) {
			// Either no such send, or it left c.From.
			err = notFoundOr(ctx, e, "send is no longer "+string(c.From), querySendExists, id)
		}
		return sd, err
	}, c.Announce)
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
	params := make([]string, len(states))
	args := []any{s.time(dueBy), limit(n)}
	for i, st := range states {
		params[i] = "$" + strconv.Itoa(len(args)+1)
		args = append(args, string(st))
	}
	out, err := all(ctx, s.db, scanSend, fmt.Sprintf(queryDueSends, strings.Join(params, ", ")), args...)
	return out, wrapf(err, "due sends")
}

// scanSend reads one row of sendColumns.
func scanSend(r Row) (*holdfast.Send, error) {
	var (
		sd    holdfast.Send
		state string
	)
	err := r.Scan(&sd.ID, &sd.InboxID, &sd.IdempotencyKey, &sd.MessageID, listDest(&sd.To), listDest(&sd.Cc), listDest(&sd.Bcc),
		&sd.Subject, &sd.Text, &sd.HTML, timeDest(&sd.SendAt), &state, &sd.Reason, &sd.Attempts,
		timeDest(&sd.CreatedAt), timeDest(&sd.UpdatedAt), timeDest(&sd.SentAt))
	sd.State = holdfast.SendState(state)
	return &sd, err
}

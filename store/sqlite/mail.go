package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/holdfast/holdfast"
)

// SaveSync stores msgs and the inbox's new cursor in one transaction. A
// message whose ProviderID the inbox knows, or else whose non-empty
// InternetMessageID it knows, updates that stored message (taking the new
// ProviderID); any other is added with a new ID. Each msgs[i] gets its
// stored ID and InboxID, Added set if it was added, and its times rounded
// as stored. A zero at means
// now; the inbox's UpdatedAt does not change. It returns how many messages
// were added, or ErrNotFound, with nothing stored, for an unknown inbox.
func (s *Store) SaveSync(ctx context.Context, inboxID string, msgs []holdfast.Message, cursor string, at time.Time) (int, error) {
	now := s.now()
	at = s.orNow(at)
	added := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		added = 0
		res, err := tx.ExecContext(ctx, querySaveSyncCursor, cursor, micros(at), inboxID)
		if err != nil {
			return fmt.Errorf("save cursor: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("save cursor: %w", err)
		} else if n == 0 {
			return holdfast.ErrNotFound
		}
		if len(msgs) == 0 {
			return nil
		}
		st, err := prepareMessageStmts(ctx, tx)
		if err != nil {
			return err
		}
		defer st.close()
		for i := range msgs {
			m := &msgs[i]
			m.InboxID = inboxID
			m.ReceivedAt = orTime(m.ReceivedAt, time.Time{})
			isNew, err := st.save(ctx, m, now)
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

// messageStmts are the statements SaveSync runs per message, prepared once
// per transaction: preparing them for every message was the largest cost
// of a sync.
type messageStmts struct {
	update, rekey, insert *sql.Stmt
}

func prepareMessageStmts(ctx context.Context, tx *sql.Tx) (*messageStmts, error) {
	st := &messageStmts{}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{{&st.update, queryUpdateMessageByProviderID}, {&st.rekey, queryRekeyMessage}, {&st.insert, queryInsertMessage}} {
		stmt, err := tx.PrepareContext(ctx, p.query)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("prepare message statements: %w", err)
		}
		*p.dst = stmt
	}
	return st, nil
}

func (st *messageStmts) close() {
	for _, s := range []*sql.Stmt{st.update, st.rekey, st.insert} {
		if s != nil {
			s.Close()
		}
	}
}

// save updates or inserts m and sets m.ID. It reports whether m was
// inserted.
func (st *messageStmts) save(ctx context.Context, m *holdfast.Message, now time.Time) (bool, error) {
	to, cc, flags := encodeList(m.To), encodeList(m.Cc), encodeList(m.Flags)
	args := []any{m.InboxID, m.ProviderID, m.InternetMessageID, m.From, to, cc,
		m.Subject, micros(m.ReceivedAt), m.Snippet, flags, micros(now)}
	err := st.update.QueryRowContext(ctx, args...).Scan(&m.ID)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if m.InternetMessageID != "" {
		err := st.rekey.QueryRowContext(ctx, args...).Scan(&m.ID)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
	}
	m.ID = holdfast.NewID("msg", now)
	if _, err := st.insert.ExecContext(ctx,
		m.ID, m.InboxID, m.ProviderID, m.InternetMessageID, m.From, to, cc,
		m.Subject, micros(m.ReceivedAt), m.Snippet, flags, micros(now), micros(now),
	); err != nil {
		return false, err
	}
	return true, nil
}

// Messages returns one page of the inbox's messages, newest first. The
// cursor applies when f.BeforeTime is set. An unknown inbox has none.
func (s *Store) Messages(ctx context.Context, inboxID string, f holdfast.MessageFilter) ([]*holdfast.Message, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if f.BeforeTime.IsZero() {
		rows, err = s.db.QueryContext(ctx, queryMessages, inboxID, limit(f.Limit))
	} else {
		rows, err = s.db.QueryContext(ctx, queryMessagesBefore, inboxID, micros(orTime(f.BeforeTime, time.Time{})), f.BeforeID, limit(f.Limit))
	}
	if err != nil {
		return nil, fmt.Errorf("messages of inbox %s: %w", inboxID, err)
	}
	defer rows.Close()
	var out []*holdfast.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, fmt.Errorf("messages of inbox %s: %w", inboxID, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("messages of inbox %s: %w", inboxID, err)
	}
	return out, nil
}

// Message returns one message of the inbox, or ErrNotFound.
func (s *Store) Message(ctx context.Context, inboxID, id string) (*holdfast.Message, error) {
	m, err := scanMessage(s.db.QueryRowContext(ctx, queryMessage, inboxID, id))
	if errors.Is(err, sql.ErrNoRows) {
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
func (s *Store) CreateSend(ctx context.Context, sd *holdfast.Send) (*holdfast.Send, bool, error) {
	n, err := s.prepareSend(sd)
	if err != nil {
		return nil, false, fmt.Errorf("create send for inbox %s: %w", sd.InboxID, err)
	}
	var id string
	err = s.db.QueryRowContext(ctx, queryInsertSend,
		n.ID, n.InboxID, n.IdempotencyKey, n.MessageID, encodeList(n.To), encodeList(n.Cc), encodeList(n.Bcc),
		n.Subject, n.Text, n.HTML, micros(n.SendAt), string(n.State), n.Reason, n.Attempts,
		micros(n.CreatedAt), micros(n.UpdatedAt), nullMicros(n.SentAt),
	).Scan(&id)
	switch {
	case err == nil:
		return n, false, nil
	case errors.Is(err, sql.ErrNoRows):
		// The idempotency key is taken: the unique index decided.
		old, err := scanSend(s.db.QueryRowContext(ctx, querySendByKey, n.InboxID, n.IdempotencyKey))
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
	sd, err := scanSend(s.db.QueryRowContext(ctx, querySend, id))
	if errors.Is(err, sql.ErrNoRows) {
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
// the send is no longer in it.
func (s *Store) ChangeSend(ctx context.Context, id string, c holdfast.SendChange) (*holdfast.Send, error) {
	if !c.To.Valid() {
		return nil, fmt.Errorf("change send %s: %w", id, holdfast.Invalidf("state", "unknown send state %q", c.To))
	}
	at := s.orNow(c.At)
	attempt := 0
	if c.Attempt {
		attempt = 1
	}
	sd, err := scanSend(s.db.QueryRowContext(ctx, queryChangeSend,
		id, string(c.From), string(c.To), c.Reason, attempt, micros(at), c.To == holdfast.SendSent))
	if errors.Is(err, sql.ErrNoRows) {
		// Either no such send, or it left c.From. The single connection
		// makes the two statements see the same state.
		var one int
		err = s.db.QueryRowContext(ctx, querySendExists, id).Scan(&one)
		switch {
		case errors.Is(err, sql.ErrNoRows):
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
	ss, err := json.Marshal(states)
	if err != nil {
		return nil, fmt.Errorf("due sends: %w", err)
	}
	rows, err := s.db.QueryContext(ctx, queryDueSends, string(ss), micros(orTime(dueBy, time.Time{})), limit(n))
	if err != nil {
		return nil, fmt.Errorf("due sends: %w", err)
	}
	defer rows.Close()
	var out []*holdfast.Send
	for rows.Next() {
		sd, err := scanSend(rows)
		if err != nil {
			return nil, fmt.Errorf("due sends: %w", err)
		}
		out = append(out, sd)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due sends: %w", err)
	}
	return out, nil
}

// scanMessage reads one row of messageColumns.
func scanMessage(r rowScanner) (*holdfast.Message, error) {
	var (
		m                holdfast.Message
		to, cc, flags    string
		receivedAtMicros int64
	)
	if err := r.Scan(&m.ID, &m.InboxID, &m.ProviderID, &m.InternetMessageID, &m.From, &to, &cc,
		&m.Subject, &receivedAtMicros, &m.Snippet, &flags); err != nil {
		return nil, err
	}
	m.ReceivedAt = fromMicros(receivedAtMicros)
	var err error
	if m.To, err = decodeList(to); err != nil {
		return nil, fmt.Errorf("to of message %s: %w", m.ID, err)
	}
	if m.Cc, err = decodeList(cc); err != nil {
		return nil, fmt.Errorf("cc of message %s: %w", m.ID, err)
	}
	if m.Flags, err = decodeList(flags); err != nil {
		return nil, fmt.Errorf("flags of message %s: %w", m.ID, err)
	}
	return &m, nil
}

// scanSend reads one row of sendColumns.
func scanSend(r rowScanner) (*holdfast.Send, error) {
	var (
		sd                           holdfast.Send
		to, cc, bcc, state           string
		sendAt, createdAt, updatedAt int64
		sentAt                       sql.NullInt64
	)
	if err := r.Scan(&sd.ID, &sd.InboxID, &sd.IdempotencyKey, &sd.MessageID, &to, &cc, &bcc,
		&sd.Subject, &sd.Text, &sd.HTML, &sendAt, &state, &sd.Reason, &sd.Attempts,
		&createdAt, &updatedAt, &sentAt); err != nil {
		return nil, err
	}
	sd.State = holdfast.SendState(state)
	sd.SendAt, sd.CreatedAt, sd.UpdatedAt = fromMicros(sendAt), fromMicros(createdAt), fromMicros(updatedAt)
	sd.SentAt = fromNullMicros(sentAt)
	var err error
	if sd.To, err = decodeList(to); err != nil {
		return nil, fmt.Errorf("to of send %s: %w", sd.ID, err)
	}
	if sd.Cc, err = decodeList(cc); err != nil {
		return nil, fmt.Errorf("cc of send %s: %w", sd.ID, err)
	}
	if sd.Bcc, err = decodeList(bcc); err != nil {
		return nil, fmt.Errorf("bcc of send %s: %w", sd.ID, err)
	}
	return &sd, nil
}

// encodeList returns l as a JSON array; nil is "[]".
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always encodes
	return string(b)
}

// decodeList reverses encodeList; "[]" is nil.
func decodeList(s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, err
	}
	return nilIfEmpty(l), nil
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
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

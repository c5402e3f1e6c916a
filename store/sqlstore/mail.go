package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/holdfast/holdfast"
)

// SaveSync stores msgs and the inbox's new cursor in one transaction. A
// message whose ProviderID the inbox knows, or else whose non-empty
// InternetMessageID it knows, updates that stored message (taking the new
// ProviderID); any other is added with a new ID. Each msgs[i] gets its
// stored ID and InboxID, Added set if it was added, and its times rounded
// as stored. A zero at means now; the inbox's UpdatedAt does not change.
// It returns how many messages were added, or ErrNotFound, with nothing
// stored, for an unknown inbox. Syncs of one inbox are serialised: on
// PostgreSQL by the lock the cursor's update takes on the inbox's row, on
// SQLite by its single writer.
//
// announce, if not nil, is called with msgs as stored within the
// transaction, and the events it returns are appended to the outbox there.
func (s *Store) SaveSync(ctx context.Context, inboxID string, msgs []holdfast.Message, cursor string, at time.Time, announce holdfast.Announce[[]holdfast.Message]) (int, error) {
	now := s.now()
	at = s.orNow(at)
	added := 0
	err := s.db.Tx(ctx, func(tx Executor) error {
		added = 0
		if err := changeOne(ctx, tx, querySaveSyncCursor, cursor, s.time(at), inboxID); err != nil {
			if errors.Is(err, holdfast.ErrNotFound) {
				return err
			}
			return fmt.Errorf("save cursor: %w", err)
		}
		for i := range msgs {
			m := &msgs[i]
			m.InboxID = inboxID
			m.ReceivedAt = orTime(m.ReceivedAt, time.Time{})
			isNew, err := s.saveMessage(ctx, tx, m, now)
			if err != nil {
				return fmt.Errorf("message %q: %w", m.ProviderID, err)
			}
			m.Added = isNew
			if isNew {
				added++
			}
		}
		if announce == nil {
			return nil
		}
		evs, err := announce(msgs)
		if err != nil {
			return fmt.Errorf("announce: %w", err)
		}
		return s.appendOutbox(ctx, tx, evs)
	})
	if err != nil {
		return 0, fmt.Errorf("save sync of inbox %s: %w", inboxID, err)
	}
	return added, nil
}

// TouchSynced moves each inbox's last sync time forward, in one
// transaction, in ID order (so concurrent callers lock rows in one order).
func (s *Store) TouchSynced(ctx context.Context, synced map[string]time.Time) error {
	if len(synced) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(synced))
	err := s.db.Tx(ctx, func(tx Executor) error {
		for _, id := range ids {
			if _, err := tx.Exec(ctx, queryTouchSynced, s.time(s.orNow(synced[id])), id); err != nil {
				return err
			}
		}
		return nil
	})
	return wrapf(err, "touch the last sync time of %d inboxes", len(ids))
}

// saveMessage updates or inserts m within tx and sets m.ID. It reports
// whether m was inserted.
func (s *Store) saveMessage(ctx context.Context, tx Executor, m *holdfast.Message, now time.Time) (bool, error) {
	to, cc, flags := encodeList(m.To), encodeList(m.Cc), encodeList(m.Flags)
	received, stamp := s.dialect.Time(m.ReceivedAt), s.dialect.Time(now)
	args := []any{m.InboxID, m.ProviderID, m.InternetMessageID, m.From, to, cc,
		m.Subject, received, m.Snippet, flags, stamp}
	err := tx.QueryRow(ctx, queryUpdateMessageByProviderID, args...).Scan(&m.ID)
	if !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if m.InternetMessageID != "" {
		err := tx.QueryRow(ctx, queryRekeyMessage, args...).Scan(&m.ID)
		if !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
	}
	m.ID = holdfast.NewID("msg", now)
	if _, err := tx.Exec(ctx, queryInsertMessage,
		m.ID, m.InboxID, m.ProviderID, m.InternetMessageID, m.From, to, cc,
		m.Subject, received, m.Snippet, flags, stamp, stamp,
	); err != nil {
		return false, err
	}
	return true, nil
}

// Messages returns one page of the inbox's messages, newest first. The
// cursor applies when f.BeforeTime is set. An unknown inbox has none.
func (s *Store) Messages(ctx context.Context, inboxID string, f holdfast.MessageFilter) ([]*holdfast.Message, error) {
	q, args := queryMessages, []any{inboxID, limit(f.Limit)}
	if !f.BeforeTime.IsZero() {
		q, args = queryMessagesBefore, []any{inboxID, s.time(f.BeforeTime), f.BeforeID, limit(f.Limit)}
	}
	out, err := all(ctx, s.db, scanMessage, q, args...)
	return out, wrapf(err, "messages of inbox %s", inboxID)
}

// Message returns one message of the inbox, or ErrNotFound.
func (s *Store) Message(ctx context.Context, inboxID, id string) (*holdfast.Message, error) {
	m, err := one(ctx, s.db, scanMessage, queryMessage, inboxID, id)
	return m, wrapf(err, "message %s of inbox %s", id, inboxID)
}

// scanMessage reads one row of messageColumns.
func scanMessage(r Row) (*holdfast.Message, error) {
	var m holdfast.Message
	err := r.Scan(&m.ID, &m.InboxID, &m.ProviderID, &m.InternetMessageID, &m.From, listDest(&m.To), listDest(&m.Cc),
		&m.Subject, timeDest(&m.ReceivedAt), &m.Snippet, listDest(&m.Flags))
	return &m, err
}

// encodeList returns l as a JSON array; nil is "[]".
func encodeList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(l) // a []string always encodes
	return string(b)
}

// scanList is a scan target for a JSON list of strings, as encodeList
// writes it; an empty list is nil.
type scanList []string

// Scan implements sql.Scanner, which pgx honours too.
func (l *scanList) Scan(src any) error {
	var b []byte
	switch v := src.(type) {
	case string:
		b = []byte(v)
	case []byte:
		b = v
	default:
		return fmt.Errorf("scan %T into a list", src)
	}
	var out []string
	if err := json.Unmarshal(b, &out); err != nil {
		return err
	}
	*l = nilIfEmpty(out)
	return nil
}

// listDest returns a scan target that stores into *l.
func listDest(l *[]string) *scanList { return (*scanList)(l) }

// nilIfEmpty returns nil for an empty l, as the store reads it back.
func nilIfEmpty(l []string) []string {
	if len(l) == 0 {
		return nil
	}
	return l
}

// nonNilBytes returns b, or an empty slice for nil: the columns are NOT
// NULL.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

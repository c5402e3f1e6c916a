package sqlstore

import (
	"context"
	"fmt"

	"github.com/holdfast/holdfast"
)

// AppendNotice records n and sets n.ID. A zero n.At is set to now; the time
// is rounded down to the store's precision and set back in n. It returns
// ErrConflict if a notice for the same inbox and episode exists.
func (s *Store) AppendNotice(ctx context.Context, n *holdfast.Notice) error {
	at := s.orNow(n.At)
	var id int64
	err := s.db.QueryRow(ctx, queryInsertNotice, n.InboxID, n.Episode, n.Admin, n.Reason, s.time(at)).Scan(&id)
	if err != nil {
		return fmt.Errorf("append notice for inbox %s episode %d: %w", n.InboxID, n.Episode, s.conflict(err))
	}
	n.ID, n.At = id, at
	return nil
}

// Notices returns the notices recorded for the inbox, oldest first.
func (s *Store) Notices(ctx context.Context, inboxID string) ([]*holdfast.Notice, error) {
	out, err := all(ctx, s.db, func(r Row) (*holdfast.Notice, error) {
		var n holdfast.Notice
		err := r.Scan(&n.ID, &n.InboxID, &n.Episode, &n.Admin, &n.Reason, timeDest(&n.At))
		return &n, err
	}, queryNotices, inboxID)
	if err != nil {
		return nil, fmt.Errorf("notices of inbox %s: %w", inboxID, err)
	}
	return out, nil
}

// NoticeRecords returns the notices f selects with their outbox status,
// oldest first by ID or, with f.Newest, newest first.
func (s *Store) NoticeRecords(ctx context.Context, f holdfast.NoticeFilter) ([]*holdfast.NoticeRecord, error) {
	out, err := s.noticeRecords(ctx, s.db, f)
	return out, wrapf(err, "list notices")
}

// noticeRecords is NoticeRecords on e.
func (s *Store) noticeRecords(ctx context.Context, e Executor, f holdfast.NoticeFilter) ([]*holdfast.NoticeRecord, error) {
	var (
		q    string
		args []any
	)
	switch {
	case f == (holdfast.NoticeFilter{Status: holdfast.NoticePending, Newest: f.Newest, Limit: f.Limit}):
		q, args = order(f.Newest, queryPendingNoticeRecords, queryNewestPendingNoticeRecords), []any{limit(f.Limit)}
	default:
		q = order(f.Newest, queryNoticeRecords, queryNewestNoticeRecords)
		switch {
		case f.ID != 0:
			q = QueryNoticeRecordByID
		case f.InboxID != "":
			q = order(f.Newest, queryInboxNoticeRecords, queryNewestInboxNoticeRecords)
		}
		args = []any{f.ID, f.InboxID, f.Recipient, string(f.Status), f.StatusReason,
			s.sinceTime(f.UpdatedSince), s.nullTime(f.UpdatedUntil), limit(f.Limit)}
	}
	return all(ctx, e, scanNoticeRecord, q, args...)
}

// ChangeNotice moves notice id from c.From to c.To, appends c.Events to
// the outbox if it moved, and returns it.
func (s *Store) ChangeNotice(ctx context.Context, id int64, c holdfast.NoticeChange) (*holdfast.NoticeRecord, error) {
	var announce holdfast.Announce[*holdfast.NoticeRecord]
	if len(c.Events) > 0 {
		announce = func(*holdfast.NoticeRecord) ([]holdfast.OutboxEvent, error) { return c.Events, nil }
	}
	rec, err := announced(ctx, s, func(e Executor) (*holdfast.NoticeRecord, error) {
		n, err := e.Exec(ctx, queryChangeNotice, id, string(c.From), string(c.To), c.Reason, s.time(s.orNow(c.At)))
		if err != nil {
			return nil, err
		}
		got, err := s.noticeRecords(ctx, e, holdfast.NoticeFilter{ID: id, Limit: 1})
		switch {
		case err != nil:
			return nil, err
		case len(got) == 0:
			return nil, holdfast.ErrNotFound
		case n == 0:
			return nil, fmt.Errorf("is %s, not %s: %w", got[0].Status, c.From, holdfast.ErrConflict)
		}
		return got[0], nil
	}, announce)
	if err != nil {
		return nil, fmt.Errorf("change notice %d to %s: %w", id, c.To, err)
	}
	return rec, nil
}

// scanNoticeRecord reads one row of noticeRecordColumns.
func scanNoticeRecord(r Row) (*holdfast.NoticeRecord, error) {
	var (
		n      holdfast.NoticeRecord
		status string
	)
	err := r.Scan(&n.ID, &n.InboxID, &n.Episode, &n.Admin, &n.Reason, timeDest(&n.At),
		&n.Recipient, &status, &n.StatusReason, timeDest(&n.SentAt), timeDest(&n.UpdatedAt))
	n.Status = holdfast.NoticeStatus(status)
	return &n, err
}

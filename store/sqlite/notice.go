package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/holdfast/holdfast"
)

// NoticeRecords returns the notices f selects with their outbox status,
// oldest first by ID or, with f.Newest, newest first.
func (s *Store) NoticeRecords(ctx context.Context, f holdfast.NoticeFilter) ([]*holdfast.NoticeRecord, error) {
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case f == (holdfast.NoticeFilter{Status: holdfast.NoticePending, Newest: f.Newest, Limit: f.Limit}):
		rows, err = s.db.QueryContext(ctx, order(f.Newest, queryPendingNoticeRecords, queryNewestPendingNoticeRecords), limit(f.Limit))
	default:
		q := order(f.Newest, queryNoticeRecords, queryNewestNoticeRecords)
		switch {
		case f.ID != 0:
			q = queryNoticeRecordByID
		case f.InboxID != "":
			q = order(f.Newest, queryInboxNoticeRecords, queryNewestInboxNoticeRecords)
		}
		rows, err = s.db.QueryContext(ctx, q, f.ID, f.InboxID, f.Recipient, string(f.Status), f.StatusReason,
			sinceMicros(f.UpdatedSince), nullMicros(f.UpdatedUntil), limit(f.Limit))
	}
	if err != nil {
		return nil, fmt.Errorf("list notices: %w", err)
	}
	defer rows.Close()
	var out []*holdfast.NoticeRecord
	for rows.Next() {
		var (
			n             holdfast.NoticeRecord
			at, updatedAt int64
			sentAt        sql.NullInt64
			status        string
		)
		if err := rows.Scan(&n.ID, &n.InboxID, &n.Episode, &n.Admin, &n.Reason, &at,
			&n.Recipient, &status, &n.StatusReason, &sentAt, &updatedAt); err != nil {
			return nil, fmt.Errorf("list notices: %w", err)
		}
		n.At, n.UpdatedAt, n.SentAt = fromMicros(at), fromMicros(updatedAt), fromNullMicros(sentAt)
		n.Status = holdfast.NoticeStatus(status)
		out = append(out, &n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list notices: %w", err)
	}
	return out, nil
}

// ChangeNotice moves notice id from c.From to c.To and returns it.
func (s *Store) ChangeNotice(ctx context.Context, id int64, c holdfast.NoticeChange) (*holdfast.NoticeRecord, error) {
	at := s.orNow(c.At)
	res, err := s.db.ExecContext(ctx, queryChangeNotice, id, string(c.From), string(c.To), c.Reason, micros(at))
	if err != nil {
		return nil, fmt.Errorf("change notice %d to %s: %w", id, c.To, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("change notice %d to %s: %w", id, c.To, err)
	}
	got, err := s.NoticeRecords(ctx, holdfast.NoticeFilter{ID: id, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("change notice %d to %s: %w", id, c.To, err)
	}
	if len(got) == 0 {
		return nil, fmt.Errorf("change notice %d to %s: %w", id, c.To, holdfast.ErrNotFound)
	}
	if n == 0 {
		return nil, fmt.Errorf("change notice %d to %s: is %s, not %s: %w", id, c.To, got[0].Status, c.From, holdfast.ErrConflict)
	}
	return got[0], nil
}

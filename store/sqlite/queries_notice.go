package sqlite

// The notification outbox's queries (migration 00006).
const (
	noticeRecordColumns = `n.id, n.inbox_id, n.episode, n.admin, n.reason, n.at,
	coalesce(i.email, ''), n.status, n.status_reason, n.sent_at, n.updated_at`

	// queryNoticeRecords selects by any of ID, inbox, recipient (the
	// inbox's email, case-insensitive) and status; zero values select all.
	queryNoticeRecords = `SELECT ` + noticeRecordColumns + `
	FROM notices n LEFT JOIN inboxes i ON i.id = n.inbox_id
	WHERE (?1 = 0 OR n.id = ?1)
	  AND (?2 = '' OR n.inbox_id = ?2)
	  AND (?3 = '' OR lower(i.email) = lower(?3))
	  AND (?4 = '' OR n.status = ?4)
	ORDER BY n.id LIMIT ?5`

	// queryPendingNoticeRecords uses the partial index notices_pending,
	// whose WHERE it repeats word for word.
	queryPendingNoticeRecords = `SELECT ` + noticeRecordColumns + `
	FROM notices n LEFT JOIN inboxes i ON i.id = n.inbox_id
	WHERE n.status = 'pending' ORDER BY n.id LIMIT ?`

	queryChangeNotice = `UPDATE notices SET status = ?3, status_reason = ?4, updated_at = ?5,
	sent_at = CASE WHEN ?3 = 'sent' THEN ?5 ELSE sent_at END
	WHERE id = ?1 AND status = ?2`
)

package postgres

// The notification outbox's queries (migrations 00006, 00008 and 00009).
const (
	noticeRecordColumns = `n.id, n.inbox_id, n.episode, n.admin, n.reason, n.at,
	coalesce(i.owner_email, i.email, ''), n.status, n.status_reason, n.sent_at, n.updated_at`

	noticeRecordsFrom = `SELECT ` + noticeRecordColumns + `
	FROM notices n LEFT JOIN inboxes i ON i.id = n.inbox_id `

	// noticeRecordsWhere selects by any of ID, recipient (the inbox's
	// owner address, else its email; case-insensitive), status, status reason and a range of
	// updated_at (NULL bounds are open); zero values select all. The
	// queries put the inbox ($2) in front of it.
	noticeRecordsWhere = `
	  AND ($1::bigint = 0 OR n.id = $1)
	  AND ($3::text = '' OR lower(coalesce(i.owner_email, i.email)) = lower($3))
	  AND ($4::text = '' OR n.status = $4)
	  AND ($5::text = '' OR n.status_reason = $5)
	  AND n.updated_at BETWEEN coalesce($6::timestamptz, n.updated_at) AND coalesce($7::timestamptz, n.updated_at)`

	// queryNoticeRecords selects by inbox too, '' selecting all.
	queryNoticeRecords = noticeRecordsFrom + `WHERE ($2::text = '' OR n.inbox_id = $2)` + noticeRecordsWhere + `
	ORDER BY n.id LIMIT $8`
	queryNewestNoticeRecords = noticeRecordsFrom + `WHERE ($2::text = '' OR n.inbox_id = $2)` + noticeRecordsWhere + `
	ORDER BY n.id DESC LIMIT $8`

	// queryInboxNoticeRecords is queryNoticeRecords for one inbox; it uses
	// the index notices_inbox (migration 00008).
	queryInboxNoticeRecords = noticeRecordsFrom + `WHERE n.inbox_id = $2::text` + noticeRecordsWhere + `
	ORDER BY n.id LIMIT $8`
	queryNewestInboxNoticeRecords = noticeRecordsFrom + `WHERE n.inbox_id = $2::text` + noticeRecordsWhere + `
	ORDER BY n.id DESC LIMIT $8`

	// queryNoticeRecordByID is queryNoticeRecords for one notice: with the
	// ID outside the optional filters its plan reads the primary key,
	// where a generic plan of queryNoticeRecords scans the table.
	queryNoticeRecordByID = noticeRecordsFrom + `WHERE n.id = $1::bigint AND ($2::text = '' OR n.inbox_id = $2)` + noticeRecordsWhere + `
	LIMIT $8`

	// queryPendingNoticeRecords uses the partial index notices_pending,
	// whose WHERE it repeats word for word.
	queryPendingNoticeRecords = noticeRecordsFrom + `
	WHERE n.status = 'pending' ORDER BY n.id LIMIT $1`
	queryNewestPendingNoticeRecords = noticeRecordsFrom + `
	WHERE n.status = 'pending' ORDER BY n.id DESC LIMIT $1`

	queryChangeNotice = `UPDATE notices SET status = $3, status_reason = $4, updated_at = $5,
	sent_at = CASE WHEN $3 = 'sent' THEN $5 ELSE sent_at END
	WHERE id = $1 AND status = $2`
)

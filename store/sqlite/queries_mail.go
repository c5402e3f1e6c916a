package sqlite

// The SQL of synced messages and sends; see queries.go.

const messageColumns = `id, inbox_id, provider_id, internet_message_id, from_addr, to_addrs, cc_addrs,
	subject, received_at, snippet, flags`

const sendColumns = `id, inbox_id, idempotency_key, message_id, to_addrs, cc_addrs, bcc_addrs,
	subject, text_body, html_body, send_at, state, reason, attempts, created_at, updated_at, sent_at`

const (
	// querySaveSyncCursor also tells SaveSync whether the inbox exists.
	querySaveSyncCursor = `UPDATE inboxes SET sync_cursor = ?, last_sync_at = ? WHERE id = ?`

	// queryUpdateMessageByProviderID updates the message the provider knows
	// as ?2 (in inbox ?1).
	queryUpdateMessageByProviderID = `UPDATE messages SET
		internet_message_id = ?3, from_addr = ?4, to_addrs = ?5, cc_addrs = ?6,
		subject = ?7, received_at = ?8, snippet = ?9, flags = ?10, updated_at = ?11
	WHERE inbox_id = ?1 AND provider_id = ?2
	RETURNING id`

	// queryRekeyMessage gives the message with Message-ID ?3 in inbox ?1
	// the provider ID ?2: the same message, seen again after a cursor
	// reset. Should several share the Message-ID, the oldest is taken.
	queryRekeyMessage = `UPDATE messages SET
		provider_id = ?2, from_addr = ?4, to_addrs = ?5, cc_addrs = ?6,
		subject = ?7, received_at = ?8, snippet = ?9, flags = ?10, updated_at = ?11
	WHERE id = (SELECT id FROM messages WHERE inbox_id = ?1 AND internet_message_id = ?3 ORDER BY id LIMIT 1)
	RETURNING id`

	queryInsertMessage = `INSERT INTO messages (` + messageColumns + `, created_at, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	queryMessage = `SELECT ` + messageColumns + ` FROM messages WHERE inbox_id = ? AND id = ?`

	// The two paging queries read messages_inbox_received in order.
	queryMessages = `SELECT ` + messageColumns + ` FROM messages
	WHERE inbox_id = ? ORDER BY received_at DESC, id DESC LIMIT ?`
	queryMessagesBefore = `SELECT ` + messageColumns + ` FROM messages
	WHERE inbox_id = ? AND (received_at, id) < (?, ?) ORDER BY received_at DESC, id DESC LIMIT ?`

	// queryInsertSend stores nothing when the inbox has a send with the
	// same non-empty idempotency key; its conflict target repeats the
	// partial index sends_inbox_idempotency_key.
	queryInsertSend = `INSERT INTO sends (` + sendColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (inbox_id, idempotency_key) WHERE idempotency_key <> '' DO NOTHING
	RETURNING id`

	querySendByKey = `SELECT ` + sendColumns + ` FROM sends WHERE inbox_id = ? AND idempotency_key = ?`

	querySend = `SELECT ` + sendColumns + ` FROM sends WHERE id = ?`

	querySendExists = `SELECT 1 FROM sends WHERE id = ?`

	// queryChangeSend is a compare-and-set when ?2 (From) is not empty; ?7
	// is true when the send was sent at ?6.
	queryChangeSend = `UPDATE sends SET
		state = ?3, reason = ?4, attempts = attempts + ?5, updated_at = ?6,
		sent_at = CASE WHEN ?7 THEN ?6 ELSE sent_at END
	WHERE id = ?1 AND (?2 = '' OR state = ?2)
	RETURNING ` + sendColumns

	// queryDueSends takes the states as a JSON array of strings.
	queryDueSends = `SELECT ` + sendColumns + ` FROM sends
	WHERE state IN (SELECT value FROM json_each(?)) AND send_at <= ?
	ORDER BY send_at, id LIMIT ?`
)

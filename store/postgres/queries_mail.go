package postgres

// The SQL of synced messages and sends; see queries.go.

const messageColumns = `id, inbox_id, provider_id, internet_message_id, from_addr, to_addrs, cc_addrs,
	subject, received_at, snippet, flags`

const sendColumns = `id, inbox_id, idempotency_key, message_id, to_addrs, cc_addrs, bcc_addrs,
	subject, text_body, html_body, send_at, state, reason, attempts, created_at, updated_at, sent_at`

const (
	// querySaveSyncCursor also tells SaveSync whether the inbox exists, and
	// locks the inbox's row until the transaction ends, so that two syncs
	// of one inbox cannot both add the same message.
	querySaveSyncCursor = `UPDATE inboxes SET sync_cursor = $1, last_sync_at = $2 WHERE id = $3`

	// queryUpdateMessageByProviderID updates the message the provider knows
	// as $2 (in inbox $1).
	queryUpdateMessageByProviderID = `UPDATE messages SET
		internet_message_id = $3, from_addr = $4, to_addrs = $5, cc_addrs = $6,
		subject = $7, received_at = $8, snippet = $9, flags = $10, updated_at = $11
	WHERE inbox_id = $1 AND provider_id = $2
	RETURNING id`

	// queryRekeyMessage gives the message with Message-ID $3 in inbox $1
	// the provider ID $2: the same message, seen again after a cursor
	// reset. Should several share the Message-ID, the oldest is taken.
	queryRekeyMessage = `UPDATE messages SET
		provider_id = $2, from_addr = $4, to_addrs = $5, cc_addrs = $6,
		subject = $7, received_at = $8, snippet = $9, flags = $10, updated_at = $11
	WHERE id = (SELECT id FROM messages WHERE inbox_id = $1 AND internet_message_id = $3 ORDER BY id LIMIT 1)
	RETURNING id`

	queryInsertMessage = `INSERT INTO messages (` + messageColumns + `, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`

	queryMessage = `SELECT ` + messageColumns + ` FROM messages WHERE inbox_id = $1 AND id = $2`

	// The two paging queries read messages_inbox_received in order.
	queryMessages = `SELECT ` + messageColumns + ` FROM messages
	WHERE inbox_id = $1 ORDER BY received_at DESC, id DESC LIMIT $2`
	queryMessagesBefore = `SELECT ` + messageColumns + ` FROM messages
	WHERE inbox_id = $1 AND (received_at, id) < ($2, $3) ORDER BY received_at DESC, id DESC LIMIT $4`

	// queryInsertSend stores nothing when the inbox has a send with the
	// same non-empty idempotency key; its conflict target names the
	// partial index sends_inbox_idempotency_key.
	queryInsertSend = `INSERT INTO sends (` + sendColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
	ON CONFLICT (inbox_id, idempotency_key) WHERE idempotency_key <> '' DO NOTHING
	RETURNING id`

	querySendByKey = `SELECT ` + sendColumns + ` FROM sends WHERE inbox_id = $1 AND idempotency_key = $2`

	querySend = `SELECT ` + sendColumns + ` FROM sends WHERE id = $1`

	querySendExists = `SELECT true FROM sends WHERE id = $1`

	// queryChangeSend is a compare-and-set when $2 (From) is not empty; $7
	// is true when the send was sent at $6.
	queryChangeSend = `UPDATE sends SET
		state = $3, reason = $4, attempts = attempts + $5, updated_at = $6,
		sent_at = CASE WHEN $7::boolean THEN $6 ELSE sent_at END
	WHERE id = $1 AND ($2 = '' OR state = $2)
	RETURNING ` + sendColumns

	queryDueSends = `SELECT ` + sendColumns + ` FROM sends
	WHERE state = ANY($1::text[]) AND send_at <= $2
	ORDER BY send_at, id LIMIT $3`
)

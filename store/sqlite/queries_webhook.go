package sqlite

// The SQL of webhooks and their deliveries; see queries.go.

const webhookColumns = `id, url, events, secret, created_at, disabled_at, disabled_reason`

const deliveryColumns = `id, webhook_id, event_id, event_type, payload, state, attempts, created_at, updated_at`

const (
	queryInsertWebhook = `INSERT INTO webhooks (` + webhookColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)`

	queryWebhook = `SELECT ` + webhookColumns + ` FROM webhooks WHERE id = ?`

	queryWebhooks = `SELECT ` + webhookColumns + ` FROM webhooks ORDER BY id`

	queryDeleteWebhook = `DELETE FROM webhooks WHERE id = ?`

	// querySetWebhookSecret replaces the sealed signing secret.
	querySetWebhookSecret = `UPDATE webhooks SET secret = ? WHERE id = ?`
	// querySwapWebhookSecret is a compare-and-set on the sealed secret,
	// which is never NULL; queryWebhookExists then tells an unknown webhook
	// from a changed secret.
	querySwapWebhookSecret = `UPDATE webhooks SET secret = ? WHERE id = ? AND secret = ?`
	// queryDisableWebhook keeps the first disabling; queryWebhookExists
	// then tells an unknown webhook from one disabled already.
	queryDisableWebhook = `UPDATE webhooks SET disabled_at = ?, disabled_reason = ?
	WHERE id = ? AND disabled_at IS NULL`
	queryWebhookExists = `SELECT 1 FROM webhooks WHERE id = ?`

	// queryRecordAttempt creates the delivery of (?2, ?3) with the attempt
	// ?7 (a JSON object) as its only one, or appends ?7 to the existing
	// delivery's attempts.
	queryRecordAttempt = `INSERT INTO webhook_deliveries (` + deliveryColumns + `)
	VALUES (?1, ?2, ?3, ?4, ?5, ?6, json_array(json(?7)), ?8, ?9)
	ON CONFLICT (webhook_id, event_id) DO UPDATE SET
		state = excluded.state,
		attempts = json_insert(webhook_deliveries.attempts, '$[#]', json(?7)),
		updated_at = excluded.updated_at
	RETURNING ` + deliveryColumns

	queryDelivery = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE webhook_id = ? AND id = ?`

	// The paging queries read webhook_deliveries_webhook_id in order.
	queryDeliveries = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries
	WHERE webhook_id = ? ORDER BY id DESC LIMIT ?`
	queryDeliveriesBefore = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries
	WHERE webhook_id = ? AND id < ? ORDER BY id DESC LIMIT ?`

	// queryChangeDelivery is a compare-and-set on the state ?3.
	queryChangeDelivery = `UPDATE webhook_deliveries SET state = ?4, updated_at = ?5
	WHERE webhook_id = ?1 AND id = ?2 AND state = ?3
	RETURNING ` + deliveryColumns

	queryDeliveryExists = `SELECT 1 FROM webhook_deliveries WHERE webhook_id = ? AND id = ?`
)

package postgres

// The SQL of webhooks and their deliveries; see queries.go.

const webhookColumns = `id, url, events, secret, created_at, disabled_at, disabled_reason`

const deliveryColumns = `id, webhook_id, event_id, event_type, payload, state, attempts, created_at, updated_at`

const (
	queryInsertWebhook = `INSERT INTO webhooks (` + webhookColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`

	queryWebhook = `SELECT ` + webhookColumns + ` FROM webhooks WHERE id = $1`

	queryWebhooks = `SELECT ` + webhookColumns + ` FROM webhooks ORDER BY id`

	queryDeleteWebhook = `DELETE FROM webhooks WHERE id = $1`

	// querySetWebhookSecret replaces the sealed signing secret.
	querySetWebhookSecret = `UPDATE webhooks SET secret = $1 WHERE id = $2`
	// querySwapWebhookSecret is a compare-and-set on the sealed secret,
	// which is never NULL; queryWebhookExists then tells an unknown webhook
	// from a changed secret.
	querySwapWebhookSecret = `UPDATE webhooks SET secret = $1 WHERE id = $2 AND secret = $3`
	// queryDisableWebhook keeps the first disabling; queryWebhookExists
	// then tells an unknown webhook from one disabled already.
	queryDisableWebhook = `UPDATE webhooks SET disabled_at = $1, disabled_reason = $2
	WHERE id = $3 AND disabled_at IS NULL`
	queryWebhookExists = `SELECT true FROM webhooks WHERE id = $1`

	// queryRecordAttempt creates the delivery of ($2, $3) with the attempt
	// $7 (a JSON object) as its only one, or appends $7 to the existing
	// delivery's attempts.
	queryRecordAttempt = `INSERT INTO webhook_deliveries (` + deliveryColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, jsonb_build_array($7::jsonb), $8, $9)
	ON CONFLICT (webhook_id, event_id) DO UPDATE SET
		state = excluded.state,
		attempts = webhook_deliveries.attempts || jsonb_build_array($7::jsonb),
		updated_at = excluded.updated_at
	RETURNING ` + deliveryColumns

	queryDelivery = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2`

	// The paging queries read webhook_deliveries_webhook_id in order.
	queryDeliveries = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries
	WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2`
	queryDeliveriesBefore = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries
	WHERE webhook_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`

	// queryChangeDelivery is a compare-and-set on the state $3.
	queryChangeDelivery = `UPDATE webhook_deliveries SET state = $4, updated_at = $5
	WHERE webhook_id = $1 AND id = $2 AND state = $3
	RETURNING ` + deliveryColumns

	queryDeliveryExists = `SELECT true FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2`
)

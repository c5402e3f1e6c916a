package sqlstore

// Every SQL statement the store runs at run time is here, written once for
// both engines with $N placeholders, or in Statements where the engines
// spell it differently; the schema is in each engine's migration/. Table
// names are unqualified. Where a parameter is used more than once, its
// first use fixes its type on PostgreSQL, so it comes where the column it
// is compared with says that type.

// Statements are the statements whose SQL differs per engine; each
// Dialect fills in all of them.
type Statements struct {
	// LockInboxState reads an inbox's state ($1: ID) within a transaction,
	// locking the row where the engine has row locks, so that a
	// compare-and-set sees the latest committed state.
	LockInboxState string
	// LockIncident reads an incident ($1: ID; IncidentColumns) within a
	// transaction, locking its row where the engine has row locks, so that
	// two nodes saving it at once see each other's change (and announce a
	// resolution once).
	LockIncident string
	// SwapCredentials sets credentials $2 and updated_at $3 of inbox $1 if
	// its credentials are still $4 (never NULL); NULL credentials compare
	// equal to an empty value.
	SwapCredentials string
	// CountInboxes counts inboxes per provider and state, ordered by both
	// byte-wise.
	CountInboxes string
	// FleetSnapshots returns the counts taken at or after $1, ordered by
	// time, then provider and state byte-wise.
	FleetSnapshots string
	// PruneFleetSnapshots deletes at most $2 of the counts taken before
	// $1, oldest first.
	PruneFleetSnapshots string
	// RecordAttempt creates the delivery ($1 ID, $2 webhook, $3 event, $4
	// event type, $5 payload, $6 state, $8 created, $9 updated) with the
	// attempt $7 (a JSON object) as its only one, or appends $7 to the
	// existing delivery's attempts and sets its state and updated_at;
	// it returns DeliveryColumns.
	RecordAttempt string
	// PendingHeldActions and NewestPendingHeldActions return at most $1
	// pending held actions whose ID is greater than $2, oldest or newest
	// first, through the partial index held_actions_pending, whose WHERE
	// they repeat.
	PendingHeldActions, NewestPendingHeldActions string
}

const inboxColumns = `id, email, provider, tenant, username, imap, smtp, credentials,
	state, reason, message, since, created_at, updated_at, sync_cursor, last_sync_at, owner_email`

const (
	queryInsertInbox = `INSERT INTO inboxes (` + inboxColumns + `, part)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`

	// queryPartitionInboxes reads the index inboxes_part (migration 00013).
	queryPartitionInboxes = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE part = $1 AND id > $2 ORDER BY id LIMIT $3`
	queryUnpartitionedInboxes = `SELECT id FROM inboxes WHERE part IS NULL LIMIT $1`
	querySetInboxPartition    = `UPDATE inboxes SET part = $2 WHERE id = $1`

	queryInbox = `SELECT ` + inboxColumns + ` FROM inboxes WHERE id = $1`

	// The four listing queries differ only in their filters, so that each
	// has a plan that uses its index: (state, id), (provider, id) or the
	// primary key. One query with "$1 = '' OR state = $1" would get a
	// generic plan that scans.
	queryInboxes = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE id > $1 ORDER BY id LIMIT $2`
	queryInboxesByState = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3`
	queryInboxesByProvider = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE provider = $1 AND id > $2 ORDER BY id LIMIT $3`
	queryInboxesByStateProvider = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE state = $1 AND provider = $2 AND id > $3 ORDER BY id LIMIT $4`

	// queryInboxByEmail reads the unique index inboxes_provider_email.
	queryInboxByEmail = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE provider = $1 AND lower(email) = lower($2)`

	// QueryInboxesByOwner reads the index inboxes_owner_email for the
	// inboxes with an owner and inboxes_unowned_email for those without,
	// whose WHERE it repeats (migration 00009). It is exported for tests
	// of its plan.
	QueryInboxesByOwner = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE lower(owner_email) = lower($1)
	UNION ALL
	SELECT ` + inboxColumns + ` FROM inboxes
	WHERE owner_email IS NULL AND lower(email) = lower($1)
	ORDER BY id`

	queryDeleteInbox = `DELETE FROM inboxes WHERE id = $1 RETURNING state`

	// queryUpdateState keeps since when the state does not change.
	queryUpdateState = `UPDATE inboxes SET
		since = CASE WHEN state = $1 THEN since ELSE $2 END,
		state = $1, reason = $3, message = $4, updated_at = $2
	WHERE id = $5
	RETURNING ` + inboxColumns

	// querySetOwnerEmail takes NULL to clear the owner (migration 00009).
	querySetOwnerEmail = `UPDATE inboxes SET owner_email = $1, updated_at = $2 WHERE id = $3
	RETURNING ` + inboxColumns

	queryUpdateCredentials = `UPDATE inboxes SET credentials = $1, updated_at = $2 WHERE id = $3`

	queryInboxExists = `SELECT 1 FROM inboxes WHERE id = $1`

	queryInsertEvent = `INSERT INTO inbox_events
	(inbox_id, at, old_state, new_state, reason, message, cause)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

	queryEvents = `SELECT id, inbox_id, at, old_state, new_state, reason, message, cause
	FROM inbox_events WHERE inbox_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`
)

const messageColumns = `id, inbox_id, provider_id, internet_message_id, from_addr, to_addrs, cc_addrs,
	subject, received_at, snippet, flags`

const (
	// querySaveSyncCursor also tells SaveSync whether the inbox exists; on
	// PostgreSQL it locks the inbox's row until the transaction ends, so
	// that two syncs of one inbox cannot both add the same message.
	querySaveSyncCursor = `UPDATE inboxes SET sync_cursor = $1, last_sync_at = $2 WHERE id = $3`
	queryTouchSynced    = `UPDATE inboxes SET last_sync_at = $1 WHERE id = $2 AND (last_sync_at IS NULL OR last_sync_at < $1)`

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
)

const sendColumns = `id, inbox_id, idempotency_key, message_id, to_addrs, cc_addrs, bcc_addrs,
	subject, text_body, html_body, send_at, state, reason, attempts, created_at, updated_at, sent_at`

const (
	// queryInsertSend stores nothing when the inbox has a send with the
	// same non-empty idempotency key; its conflict target repeats the
	// partial index sends_inbox_idempotency_key.
	queryInsertSend = `INSERT INTO sends (` + sendColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
	ON CONFLICT (inbox_id, idempotency_key) WHERE idempotency_key <> '' DO NOTHING
	RETURNING id`

	querySendByKey = `SELECT ` + sendColumns + ` FROM sends WHERE inbox_id = $1 AND idempotency_key = $2`

	querySend = `SELECT ` + sendColumns + ` FROM sends WHERE id = $1`

	querySendExists = `SELECT 1 FROM sends WHERE id = $1`

	// queryChangeSend is a compare-and-set when $2 (From) is not empty; $7
	// is true when the send was sent at $6.
	queryChangeSend = `UPDATE sends SET
		state = $3, reason = $4, attempts = attempts + $5, updated_at = $6,
		sent_at = CASE WHEN $7 THEN $6 ELSE sent_at END
	WHERE id = $1 AND ($2 = '' OR state = $2)
	RETURNING ` + sendColumns

	// queryDueSends is completed by DueSends with the list of states, $3
	// onwards.
	queryDueSends = `SELECT ` + sendColumns + ` FROM sends
	WHERE send_at <= $1 AND state IN (%s)
	ORDER BY send_at, id LIMIT $2`
)

const (
	// IncidentColumns are the incidents table's columns, in the order the
	// store scans them; Statements.LockIncident returns them.
	IncidentColumns = `id, kind, provider, tenant, opened_at, resolved_at, evidence, affected, recovered, timeline, escalated_at`
	// HeldActionColumns are the columns of a held action, in the order the
	// store scans them; Statements.PendingHeldActions returns them.
	HeldActionColumns = `id, inbox_id, provider, tenant, to_state, reason, why, held_at, done, outcome, closed_at`
	heldActionColumns = HeldActionColumns
)

const (
	queryUpsertIncident = `INSERT INTO incidents (` + IncidentColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT (id) DO UPDATE SET
		kind = excluded.kind, provider = excluded.provider, tenant = excluded.tenant,
		opened_at = excluded.opened_at, resolved_at = excluded.resolved_at,
		evidence = excluded.evidence, affected = excluded.affected,
		recovered = excluded.recovered, timeline = excluded.timeline,
		escalated_at = COALESCE(incidents.escalated_at, excluded.escalated_at)
	WHERE incidents.resolved_at IS NULL OR excluded.resolved_at IS NOT NULL`

	queryIncident = `SELECT ` + IncidentColumns + ` FROM incidents WHERE id = $1`

	queryIncidents = `SELECT ` + IncidentColumns + ` FROM incidents ORDER BY id DESC LIMIT $1`

	// queryOpenIncidents uses the partial index incidents_open.
	queryOpenIncidents = `SELECT ` + IncidentColumns + ` FROM incidents
	WHERE resolved_at IS NULL ORDER BY id DESC LIMIT $1`

	// queryOpenIncidentsAfter pages through the open incidents, oldest
	// first, through the partial index incidents_open.
	queryOpenIncidentsAfter = `SELECT ` + IncidentColumns + ` FROM incidents
	WHERE resolved_at IS NULL AND id > $1 ORDER BY id LIMIT $2`

	queryUpsertHeldAction = `INSERT INTO held_actions (` + heldActionColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT (id) DO UPDATE SET
		inbox_id = excluded.inbox_id, provider = excluded.provider, tenant = excluded.tenant,
		to_state = excluded.to_state, reason = excluded.reason, why = excluded.why,
		held_at = excluded.held_at, done = excluded.done, outcome = excluded.outcome,
		closed_at = excluded.closed_at
	WHERE NOT held_actions.done`

	// heldActionsWhere selects by any of ID, pending only, done only,
	// provider, tenant (case-insensitive), a range that held_at or
	// closed_at is in (NULL bounds are open) and a lower bound of the ID
	// ($10, excluded); zero values select all. The queries put the inbox
	// ($2) in front of it.
	heldActionsWhere = `
	  AND (id = $1 OR $1 = 0)
	  AND id > $10
	  AND (NOT $3 OR NOT done)
	  AND (NOT $4 OR done)
	  AND ($5 = '' OR provider = $5)
	  AND ($6 = '' OR lower(tenant) = lower($6))
	  AND (held_at BETWEEN coalesce($7, held_at) AND coalesce($8, held_at)
	    OR closed_at BETWEEN coalesce($7, closed_at) AND coalesce($8, closed_at))`

	// queryHeldActions selects by inbox too, '' selecting all.
	queryHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE ($2 = '' OR inbox_id = $2)` + heldActionsWhere + `
	ORDER BY id LIMIT $9`
	queryNewestHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE ($2 = '' OR inbox_id = $2)` + heldActionsWhere + `
	ORDER BY id DESC LIMIT $9`

	// queryInboxHeldActions is queryHeldActions for one inbox; it uses the
	// index held_actions_inbox (migration 00008).
	queryInboxHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE inbox_id = $2` + heldActionsWhere + `
	ORDER BY id LIMIT $9`
	queryNewestInboxHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE inbox_id = $2` + heldActionsWhere + `
	ORDER BY id DESC LIMIT $9`

	queryUpsertEngineState = `INSERT INTO engine_state (id, saved_at, state) VALUES (1, $1, $2)
	ON CONFLICT (id) DO UPDATE SET saved_at = excluded.saved_at, state = excluded.state`

	queryEngineState = `SELECT saved_at, state FROM engine_state WHERE id = 1`

	// queryReserveIDs advances the sequence of incident and held action
	// IDs by $1 and returns its new next value (migration 00010).
	queryReserveIDs = `UPDATE id_sequences SET next = next + $1 WHERE name = 'health' RETURNING next`

	// queryInsertFleetCounts is completed by AppendFleetSnapshot with one
	// row of values per count, the time being $1.
	queryInsertFleetCounts = `INSERT INTO fleet_snapshots (at, provider, state, count) VALUES %s`
)

const (
	queryInsertNotice = `INSERT INTO notices (inbox_id, episode, admin, reason, at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`

	queryNotices = `SELECT id, inbox_id, episode, admin, reason, at FROM notices
	WHERE inbox_id = $1 ORDER BY id`

	noticeRecordColumns = `n.id, n.inbox_id, n.episode, n.admin, n.reason, n.at,
	coalesce(i.owner_email, i.email, ''), n.status, n.status_reason, n.sent_at, n.updated_at`

	noticeRecordsFrom = `SELECT ` + noticeRecordColumns + `
	FROM notices n LEFT JOIN inboxes i ON i.id = n.inbox_id `

	// noticeRecordsWhere selects by any of ID, recipient (the inbox's
	// owner address, else its email; case-insensitive), status, status
	// reason and a range of updated_at (NULL bounds are open); zero values
	// select all. The queries put the inbox ($2) in front of it.
	noticeRecordsWhere = `
	  AND (n.id = $1 OR $1 = 0)
	  AND ($3 = '' OR lower(coalesce(i.owner_email, i.email)) = lower($3))
	  AND ($4 = '' OR n.status = $4)
	  AND ($5 = '' OR n.status_reason = $5)
	  AND n.updated_at BETWEEN coalesce($6, n.updated_at) AND coalesce($7, n.updated_at)`

	// queryNoticeRecords selects by inbox too, '' selecting all.
	queryNoticeRecords = noticeRecordsFrom + `WHERE ($2 = '' OR n.inbox_id = $2)` + noticeRecordsWhere + `
	ORDER BY n.id LIMIT $8`
	queryNewestNoticeRecords = noticeRecordsFrom + `WHERE ($2 = '' OR n.inbox_id = $2)` + noticeRecordsWhere + `
	ORDER BY n.id DESC LIMIT $8`

	// queryInboxNoticeRecords is queryNoticeRecords for one inbox; it uses
	// the index notices_inbox (migration 00008).
	queryInboxNoticeRecords = noticeRecordsFrom + `WHERE n.inbox_id = $2` + noticeRecordsWhere + `
	ORDER BY n.id LIMIT $8`
	queryNewestInboxNoticeRecords = noticeRecordsFrom + `WHERE n.inbox_id = $2` + noticeRecordsWhere + `
	ORDER BY n.id DESC LIMIT $8`

	// QueryNoticeRecordByID is queryNoticeRecords for one notice: with the
	// ID outside the optional filters its plan reads the primary key,
	// where a generic plan of queryNoticeRecords scans the table. It is
	// exported for tests of its plan.
	QueryNoticeRecordByID = noticeRecordsFrom + `WHERE n.id = $1 AND ($2 = '' OR n.inbox_id = $2)` + noticeRecordsWhere + `
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

const (
	webhookColumns = `id, url, events, secret, created_at, disabled_at, disabled_reason`
	// DeliveryColumns are the columns of a webhook delivery, in the order
	// the store scans them; Statements.RecordAttempt returns them.
	DeliveryColumns = `id, webhook_id, event_id, event_type, payload, state, attempts, created_at, updated_at`
	deliveryColumns = DeliveryColumns
)

const (
	queryInsertWebhook = `INSERT INTO webhooks (` + webhookColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)`

	queryWebhook = `SELECT ` + webhookColumns + ` FROM webhooks WHERE id = $1`

	queryWebhooks = `SELECT ` + webhookColumns + ` FROM webhooks ORDER BY id`

	queryDeleteWebhook = `DELETE FROM webhooks WHERE id = $1`

	// querySetWebhookSecret replaces the sealed signing secret.
	querySetWebhookSecret = `UPDATE webhooks SET secret = $2 WHERE id = $1`
	// querySwapWebhookSecret is a compare-and-set on the sealed secret,
	// which is never NULL; queryWebhookExists then tells an unknown webhook
	// from a changed secret.
	querySwapWebhookSecret = `UPDATE webhooks SET secret = $2 WHERE id = $1 AND secret = $3`
	// queryDisableWebhook keeps the first disabling; queryWebhookExists
	// then tells an unknown webhook from one disabled already.
	queryDisableWebhook = `UPDATE webhooks SET disabled_at = $2, disabled_reason = $3
	WHERE id = $1 AND disabled_at IS NULL`
	queryWebhookExists = `SELECT 1 FROM webhooks WHERE id = $1`

	queryDelivery = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2`

	// The paging queries read webhook_deliveries_webhook_id in order.
	queryDeliveries = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries
	WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2`
	queryDeliveriesBefore = `SELECT ` + deliveryColumns + ` FROM webhook_deliveries
	WHERE webhook_id = $1 AND id < $3 ORDER BY id DESC LIMIT $2`

	queryDeliveryExists = `SELECT 1 FROM webhook_deliveries WHERE webhook_id = $1 AND id = $2`
)

const outboxColumns = `seq, event_id, event_type, payload, created_at, webhook_id, replay, relayed_at`

const (
	queryAppendOutbox = `INSERT INTO webhook_outbox (event_id, event_type, payload, created_at, webhook_id, replay)
	VALUES ($1, $2, $3, $4, $5, $6)`

	// queryUnrelayedOutbox reads webhook_outbox_unrelayed in order; its
	// WHERE repeats the partial index's.
	queryUnrelayedOutbox = `SELECT ` + outboxColumns + ` FROM webhook_outbox
	WHERE relayed_at IS NULL ORDER BY seq LIMIT $1`

	// queryMarkRelayed takes the list of seqs ($2, $3, ...) for its %s.
	queryMarkRelayed = `UPDATE webhook_outbox SET relayed_at = $1 WHERE seq IN (%s) AND relayed_at IS NULL`

	// queryPruneOutbox deletes at most $2 events relayed before $1, through
	// webhook_outbox_relayed_at.
	queryPruneOutbox = `DELETE FROM webhook_outbox WHERE seq IN (
		SELECT seq FROM webhook_outbox WHERE relayed_at IS NOT NULL AND relayed_at < $1 ORDER BY relayed_at LIMIT $2)`

	// queryReplayDelivery is a compare-and-set on the state $3 that makes
	// the delivery pending.
	queryReplayDelivery = `UPDATE webhook_deliveries SET state = $5, updated_at = $4
	WHERE webhook_id = $1 AND id = $2 AND state = $3
	RETURNING ` + deliveryColumns
)

const apiKeyColumns = `id, name, hash, prefix, scope, created_at, revoked_at`

const (
	queryInsertAPIKey = `INSERT INTO api_keys (id, name, hash, prefix, scope, created_at)
	VALUES ($1, $2, $3, $4, $5, $6)`

	queryAPIKeyByHash = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE hash = $1`
	queryAPIKeyByID   = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE id = $1`
	queryAPIKeys      = `SELECT ` + apiKeyColumns + ` FROM api_keys ORDER BY created_at, id`

	// queryRevokeAPIKey keeps the first revocation time.
	queryRevokeAPIKey = `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2)
	WHERE id = $1
	RETURNING ` + apiKeyColumns
)

const oauthStateColumns = `hash, provider, email, verifier, redirect_uri, created_at, expires_at, owner_email`

const (
	queryInsertOAuthState = `INSERT INTO oauth_states (` + oauthStateColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

	queryDeleteExpiredOAuthStates = `DELETE FROM oauth_states WHERE expires_at < $1`

	queryTakeOAuthState = `DELETE FROM oauth_states WHERE hash = $1 RETURNING ` + oauthStateColumns
)

const signingKeyColumns = `generation, sealed, created_at`

const (
	querySigningKeys = `SELECT ` + signingKeyColumns + ` FROM signing_keys ORDER BY generation DESC`

	queryInsertSigningKey = `INSERT INTO signing_keys (` + signingKeyColumns + `) VALUES ($1, $2, $3)`

	// queryPruneSigningKeys keeps the newest two keys.
	queryPruneSigningKeys = `DELETE FROM signing_keys WHERE generation < (
	SELECT MIN(generation) FROM (SELECT generation FROM signing_keys ORDER BY generation DESC LIMIT 2) AS newest)`

	// querySwapSigningKey is a compare-and-set on the sealed key;
	// querySigningKeyExists then tells an unknown generation from a key
	// that changed.
	querySwapSigningKey   = `UPDATE signing_keys SET sealed = $2 WHERE generation = $1 AND sealed = $3`
	querySigningKeyExists = `SELECT 1 FROM signing_keys WHERE generation = $1`
)

const (
	// queryHeartbeat adds node $1 or moves its heartbeat to $2.
	queryHeartbeat = `INSERT INTO cluster_nodes (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
	ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`
	queryForgetNodes = `DELETE FROM cluster_nodes WHERE heartbeat_at < $1`
	queryLiveNodes   = `SELECT id, started_at, heartbeat_at FROM cluster_nodes WHERE heartbeat_at >= $1 ORDER BY id`

	queryPartitionLeases = `SELECT part, node, leased_until, epoch FROM partition_leases ORDER BY part`

	// queryAcquirePartition leases partition $1 to node $2 until $3 if
	// nobody holds it at $4 or $2 does; it returns the partition if so.
	queryAcquirePartition = `INSERT INTO partition_leases (part, node, leased_until, epoch) VALUES ($1, $2, $3, 1)
	ON CONFLICT (part) DO UPDATE SET node = excluded.node, leased_until = excluded.leased_until,
		epoch = CASE WHEN partition_leases.node = excluded.node THEN partition_leases.epoch ELSE partition_leases.epoch + 1 END
	WHERE partition_leases.node = excluded.node OR partition_leases.node = '' OR partition_leases.leased_until <= $4
	RETURNING part`

	// queryRenewPartitions extends node $1's leases unexpired at $2 to $3.
	queryRenewPartitions = `UPDATE partition_leases SET leased_until = $3 WHERE node = $1 AND leased_until > $2 RETURNING part`

	queryReleasePartition = `UPDATE partition_leases SET node = '' WHERE node = $1 AND part = $2`
	queryReleaseAll       = `UPDATE partition_leases SET node = '' WHERE node = $1`
	queryForgetNode       = `DELETE FROM cluster_nodes WHERE id = $1`
)

const (
	// queryAcquireLeadership makes node $2 leader $1 until $3 if nobody
	// holds it at $4 or $2 does.
	queryAcquireLeadership = `INSERT INTO leader_leases (name, node, leased_until, epoch) VALUES ($1, $2, $3, 1)
	ON CONFLICT (name) DO UPDATE SET node = excluded.node, leased_until = excluded.leased_until,
		epoch = CASE WHEN leader_leases.node = excluded.node THEN leader_leases.epoch ELSE leader_leases.epoch + 1 END
	WHERE leader_leases.node = excluded.node OR leader_leases.node = '' OR leader_leases.leased_until <= $4`
	queryLeadership        = `SELECT node, leased_until, epoch FROM leader_leases WHERE name = $1`
	queryReleaseLeadership = `UPDATE leader_leases SET node = '' WHERE name = $1 AND node = $2`

	queryShipCounters = `INSERT INTO fleet_counters (node, bucket, data) VALUES ($1, $2, $3)
	ON CONFLICT (node, bucket) DO UPDATE SET data = excluded.data`
	queryPruneCounters = `DELETE FROM fleet_counters WHERE node = $1 AND bucket < $2`
	queryFleetCounters = `SELECT node, bucket, data FROM fleet_counters WHERE bucket >= $1 ORDER BY bucket, node`

	queryPermit       = `SELECT tokens, filled_at, version FROM budget_permits WHERE key = $1`
	queryInsertPermit = `INSERT INTO budget_permits (key, tokens, filled_at, version) VALUES ($1, $2, $3, 1)
	ON CONFLICT (key) DO NOTHING`
	// querySwapPermit is the compare-and-set on the bucket's version.
	querySwapPermit = `UPDATE budget_permits SET tokens = $2, filled_at = $3, version = version + 1 WHERE key = $1 AND version = $4`
)

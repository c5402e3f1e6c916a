package sqlite

// Every SQL statement the store runs at run time is here; the schema is in
// migration/. Times are bound and read as INTEGER microseconds since the
// Unix epoch, UTC.

const inboxColumns = `id, email, provider, tenant, username, imap, smtp, credentials,
	state, reason, message, since, created_at, updated_at, sync_cursor, last_sync_at, owner_email`

const (
	queryInsertInbox = `INSERT INTO inboxes (` + inboxColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	queryInbox = `SELECT ` + inboxColumns + ` FROM inboxes WHERE id = ?`

	// The four listing queries differ only in their filters, so that each
	// can use its index: (state, id), (provider, id) or the primary key.
	queryInboxes = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE id > ? ORDER BY id LIMIT ?`
	queryInboxesByState = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE state = ? AND id > ? ORDER BY id LIMIT ?`
	queryInboxesByProvider = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE provider = ? AND id > ? ORDER BY id LIMIT ?`
	queryInboxesByStateProvider = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE state = ? AND provider = ? AND id > ? ORDER BY id LIMIT ?`

	queryDeleteInbox = `DELETE FROM inboxes WHERE id = ? RETURNING state`

	queryInboxState = `SELECT state FROM inboxes WHERE id = ?`

	// queryUpdateState keeps since when the state does not change.
	queryUpdateState = `UPDATE inboxes SET
		since = CASE WHEN state = ?1 THEN since ELSE ?2 END,
		state = ?1, reason = ?3, message = ?4, updated_at = ?2
	WHERE id = ?5
	RETURNING ` + inboxColumns

	// querySetOwnerEmail takes NULL to clear the owner (migration 00009).
	querySetOwnerEmail = `UPDATE inboxes SET owner_email = ?, updated_at = ? WHERE id = ?
	RETURNING ` + inboxColumns

	queryUpdateCredentials = `UPDATE inboxes SET credentials = ?, updated_at = ? WHERE id = ?`

	// querySwapCredentials is a compare-and-set on the credentials; NULL
	// and an empty blob compare equal, and the old value is never NULL.
	querySwapCredentials = `UPDATE inboxes SET credentials = ?, updated_at = ?
	WHERE id = ? AND coalesce(credentials, X'') = ?`

	queryInboxExists = `SELECT 1 FROM inboxes WHERE id = ?`

	queryCountInboxes = `SELECT provider, state, count(*) FROM inboxes
	GROUP BY provider, state ORDER BY provider, state`

	queryInsertEvent = `INSERT INTO inbox_events
	(inbox_id, at, old_state, new_state, reason, message, cause)
	VALUES (?, ?, ?, ?, ?, ?, ?)`

	queryEvents = `SELECT id, inbox_id, at, old_state, new_state, reason, message, cause
	FROM inbox_events WHERE inbox_id = ? AND id < ? ORDER BY id DESC LIMIT ?`

	queryInsertAPIKey = `INSERT INTO api_keys (id, name, hash, prefix, created_at)
	VALUES (?, ?, ?, ?, ?)`

	queryAPIKeyByHash = `SELECT id, name, hash, prefix, created_at FROM api_keys WHERE hash = ?`

	queryInsertFleetCount = `INSERT INTO fleet_snapshots (at, provider, state, count)
	VALUES (?, ?, ?, ?)`

	queryFleetSnapshots = `SELECT at, provider, state, count FROM fleet_snapshots
	WHERE at >= ? ORDER BY at, provider, state`

	// queryPruneFleetSnapshots deletes at most ?2 of the rows taken before
	// ?1, oldest first. fleet_snapshots has no rowid, so the subquery picks
	// them by primary key, whose first column is at, and the delete looks
	// each up by the whole key.
	queryPruneFleetSnapshots = `DELETE FROM fleet_snapshots
	WHERE (at, provider, state) IN (
		SELECT at, provider, state FROM fleet_snapshots WHERE at < ?1 ORDER BY at LIMIT ?2)`
)

const (
	incidentColumns   = `id, kind, provider, tenant, opened_at, resolved_at, evidence, affected, recovered, timeline`
	heldActionColumns = `id, inbox_id, provider, tenant, to_state, reason, why, held_at, done, outcome, closed_at`
)

const (
	queryUpsertIncident = `INSERT INTO incidents (` + incidentColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		kind = excluded.kind, provider = excluded.provider, tenant = excluded.tenant,
		opened_at = excluded.opened_at, resolved_at = excluded.resolved_at,
		evidence = excluded.evidence, affected = excluded.affected,
		recovered = excluded.recovered, timeline = excluded.timeline`

	queryIncident = `SELECT ` + incidentColumns + ` FROM incidents WHERE id = ?`

	queryIncidents = `SELECT ` + incidentColumns + ` FROM incidents ORDER BY id DESC LIMIT ?`

	// queryOpenIncidents uses the partial index incidents_open.
	queryOpenIncidents = `SELECT ` + incidentColumns + ` FROM incidents
	WHERE resolved_at IS NULL ORDER BY id DESC LIMIT ?`

	queryUpsertHeldAction = `INSERT INTO held_actions (` + heldActionColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (id) DO UPDATE SET
		inbox_id = excluded.inbox_id, provider = excluded.provider, tenant = excluded.tenant,
		to_state = excluded.to_state, reason = excluded.reason, why = excluded.why,
		held_at = excluded.held_at, done = excluded.done, outcome = excluded.outcome,
		closed_at = excluded.closed_at`

	// heldActionsWhere selects by any of ID, pending only, done only,
	// provider, tenant (case-insensitive) and a range that held_at or
	// closed_at is in (NULL bounds are open); zero values select all. The
	// queries put the inbox (?2) in front of it.
	heldActionsWhere = `
	  AND (?1 = 0 OR id = ?1)
	  AND (?3 = 0 OR done = 0)
	  AND (?4 = 0 OR done = 1)
	  AND (?5 = '' OR provider = ?5)
	  AND (?6 = '' OR lower(tenant) = lower(?6))
	  AND (held_at BETWEEN coalesce(?7, held_at) AND coalesce(?8, held_at)
	    OR closed_at BETWEEN coalesce(?7, closed_at) AND coalesce(?8, closed_at))`

	// queryHeldActions selects by inbox too, '' selecting all.
	queryHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE (?2 = '' OR inbox_id = ?2)` + heldActionsWhere + `
	ORDER BY id LIMIT ?9`
	queryNewestHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE (?2 = '' OR inbox_id = ?2)` + heldActionsWhere + `
	ORDER BY id DESC LIMIT ?9`

	// queryInboxHeldActions is queryHeldActions for one inbox; it uses the
	// index held_actions_inbox (migration 00008).
	queryInboxHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE inbox_id = ?2` + heldActionsWhere + `
	ORDER BY id LIMIT ?9`
	queryNewestInboxHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE inbox_id = ?2` + heldActionsWhere + `
	ORDER BY id DESC LIMIT ?9`

	// queryPendingHeldActions uses the partial index held_actions_pending,
	// whose WHERE it repeats word for word.
	queryPendingHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE done = 0 ORDER BY id LIMIT ?`
	queryNewestPendingHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE done = 0 ORDER BY id DESC LIMIT ?`

	queryInsertNotice = `INSERT INTO notices (inbox_id, episode, admin, reason, at, updated_at)
	VALUES (?1, ?2, ?3, ?4, ?5, ?5) RETURNING id`

	queryNotices = `SELECT id, inbox_id, episode, admin, reason, at FROM notices
	WHERE inbox_id = ? ORDER BY id`

	queryUpsertEngineState = `INSERT INTO engine_state (id, saved_at, state) VALUES (1, ?, ?)
	ON CONFLICT (id) DO UPDATE SET saved_at = excluded.saved_at, state = excluded.state`

	queryEngineState = `SELECT saved_at, state FROM engine_state WHERE id = 1`
)

// defaultPruneBatchSize is the most rows one statement of
// PruneFleetSnapshots deletes, so that no statement holds the single
// connection, and the write lock, for long.
const defaultPruneBatchSize = 10_000

package postgres

// Every SQL statement the store runs at run time is here; the schema is in
// migration/. Table names are unqualified: they resolve through the
// connection's search_path, which WithSchema or the URL sets.

const inboxColumns = `id, email, provider, tenant, username, imap, smtp, credentials,
	state, reason, message, since, created_at, updated_at, sync_cursor, last_sync_at, owner_email`

const (
	// queryCreateSchema takes the schema as a quoted identifier (%s).
	queryCreateSchema = `CREATE SCHEMA IF NOT EXISTS %s`

	queryCurrentSchema = `SELECT current_schema()`

	queryInsertInbox = `INSERT INTO inboxes (` + inboxColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`

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

	queryDeleteInbox = `DELETE FROM inboxes WHERE id = $1 RETURNING state`

	// queryLockInboxState locks the row until the transaction ends, so that
	// a compare-and-set sees the latest committed state.
	queryLockInboxState = `SELECT state FROM inboxes WHERE id = $1 FOR UPDATE`

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

	// querySwapCredentials is a compare-and-set on the credentials; NULL
	// and an empty bytea compare equal, and the old value is never NULL.
	querySwapCredentials = `UPDATE inboxes SET credentials = $1, updated_at = $2
	WHERE id = $3 AND coalesce(credentials, ''::bytea) = $4`

	queryInboxExists = `SELECT true FROM inboxes WHERE id = $1`

	queryCountInboxes = `SELECT provider, state, count(*) FROM inboxes
	GROUP BY provider, state ORDER BY provider COLLATE "C", state COLLATE "C"`

	queryInsertEvent = `INSERT INTO inbox_events
	(inbox_id, at, old_state, new_state, reason, message, cause)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

	queryEvents = `SELECT id, inbox_id, at, old_state, new_state, reason, message, cause
	FROM inbox_events WHERE inbox_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`

	queryInsertAPIKey = `INSERT INTO api_keys (id, name, hash, prefix, created_at)
	VALUES ($1, $2, $3, $4, $5)`

	queryAPIKeyByHash = `SELECT id, name, hash, prefix, created_at FROM api_keys WHERE hash = $1`

	// queryInsertFleetCounts inserts one row per element of the arrays.
	queryInsertFleetCounts = `INSERT INTO fleet_snapshots (at, provider, state, count)
	SELECT $1, p, s, c FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(p, s, c)`

	queryFleetSnapshots = `SELECT at, provider, state, count FROM fleet_snapshots
	WHERE at >= $1 ORDER BY at, provider COLLATE "C", state COLLATE "C"`

	// queryPruneFleetSnapshots deletes at most $2 of the rows taken before
	// $1, oldest first: the subquery finds them with a scan of the primary
	// key, whose first column is at, and the delete fetches them by ctid
	// (a TID scan).
	queryPruneFleetSnapshots = `DELETE FROM fleet_snapshots
	WHERE ctid = ANY(ARRAY(SELECT ctid FROM fleet_snapshots WHERE at < $1 ORDER BY at LIMIT $2))
	AND at < $1`
)

const (
	incidentColumns   = `id, kind, provider, tenant, opened_at, resolved_at, evidence, affected, recovered, timeline`
	heldActionColumns = `id, inbox_id, provider, tenant, to_state, reason, why, held_at, done, outcome, closed_at`
)

const (
	queryUpsertIncident = `INSERT INTO incidents (` + incidentColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
	ON CONFLICT (id) DO UPDATE SET
		kind = EXCLUDED.kind, provider = EXCLUDED.provider, tenant = EXCLUDED.tenant,
		opened_at = EXCLUDED.opened_at, resolved_at = EXCLUDED.resolved_at,
		evidence = EXCLUDED.evidence, affected = EXCLUDED.affected,
		recovered = EXCLUDED.recovered, timeline = EXCLUDED.timeline`

	queryIncident = `SELECT ` + incidentColumns + ` FROM incidents WHERE id = $1`

	queryIncidents = `SELECT ` + incidentColumns + ` FROM incidents ORDER BY id DESC LIMIT $1`

	// queryOpenIncidents uses the partial index incidents_open.
	queryOpenIncidents = `SELECT ` + incidentColumns + ` FROM incidents
	WHERE resolved_at IS NULL ORDER BY id DESC LIMIT $1`

	queryUpsertHeldAction = `INSERT INTO held_actions (` + heldActionColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
	ON CONFLICT (id) DO UPDATE SET
		inbox_id = EXCLUDED.inbox_id, provider = EXCLUDED.provider, tenant = EXCLUDED.tenant,
		to_state = EXCLUDED.to_state, reason = EXCLUDED.reason, why = EXCLUDED.why,
		held_at = EXCLUDED.held_at, done = EXCLUDED.done, outcome = EXCLUDED.outcome,
		closed_at = EXCLUDED.closed_at`

	// heldActionsWhere selects by any of ID, pending only, done only,
	// provider, tenant (case-insensitive) and a range that held_at or
	// closed_at is in (NULL bounds are open); zero values select all. The
	// queries put the inbox ($2) in front of it.
	heldActionsWhere = `
	  AND ($1::bigint = 0 OR id = $1)
	  AND (NOT $3::boolean OR NOT done)
	  AND (NOT $4::boolean OR done)
	  AND ($5::text = '' OR provider = $5)
	  AND ($6::text = '' OR lower(tenant) = lower($6))
	  AND (held_at BETWEEN coalesce($7::timestamptz, held_at) AND coalesce($8::timestamptz, held_at)
	    OR closed_at BETWEEN coalesce($7, closed_at) AND coalesce($8, closed_at))`

	// queryHeldActions selects by inbox too, '' selecting all.
	queryHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE ($2::text = '' OR inbox_id = $2)` + heldActionsWhere + `
	ORDER BY id LIMIT $9`
	queryNewestHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE ($2::text = '' OR inbox_id = $2)` + heldActionsWhere + `
	ORDER BY id DESC LIMIT $9`

	// queryInboxHeldActions is queryHeldActions for one inbox; it uses the
	// index held_actions_inbox (migration 00008).
	queryInboxHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE inbox_id = $2::text` + heldActionsWhere + `
	ORDER BY id LIMIT $9`
	queryNewestInboxHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE inbox_id = $2::text` + heldActionsWhere + `
	ORDER BY id DESC LIMIT $9`

	// queryPendingHeldActions uses the partial index held_actions_pending.
	queryPendingHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE NOT done ORDER BY id LIMIT $1`
	queryNewestPendingHeldActions = `SELECT ` + heldActionColumns + ` FROM held_actions
	WHERE NOT done ORDER BY id DESC LIMIT $1`

	queryInsertNotice = `INSERT INTO notices (inbox_id, episode, admin, reason, at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $5) RETURNING id`

	queryNotices = `SELECT id, inbox_id, episode, admin, reason, at FROM notices
	WHERE inbox_id = $1 ORDER BY id`

	queryUpsertEngineState = `INSERT INTO engine_state (id, saved_at, state) VALUES (1, $1, $2)
	ON CONFLICT (id) DO UPDATE SET saved_at = EXCLUDED.saved_at, state = EXCLUDED.state`

	queryEngineState = `SELECT saved_at, state FROM engine_state WHERE id = 1`
)

// defaultPruneBatchSize is the most rows one statement of
// PruneFleetSnapshots deletes, so that no statement holds its locks, or
// grows the WAL, for long.
const defaultPruneBatchSize = 10_000

package postgres

import (
	"errors"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/holdfast/holdfast/store/sqlstore"
)

// dialect is PostgreSQL's sqlstore.Dialect. Times are timestamptz, JSON is
// jsonb (bound and read as text), blobs are bytea.
type dialect struct{}

// Name implements sqlstore.Dialect.
func (dialect) Name() string { return "postgres" }

// Time implements sqlstore.Dialect.
func (dialect) Time(t time.Time) any { return t }

// IsUniqueViolation implements sqlstore.Dialect.
func (dialect) IsUniqueViolation(err error) bool { return sqlState(err) == "23505" }

// IsForeignKeyViolation implements sqlstore.Dialect.
func (dialect) IsForeignKeyViolation(err error) bool { return sqlState(err) == "23503" }

// Statements implements sqlstore.Dialect.
func (dialect) Statements() *sqlstore.Statements { return &statements }

// sqlState returns the SQLSTATE of a PostgreSQL error, or "".
func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// statements are the statements PostgreSQL spells its own way.
var statements = sqlstore.Statements{
	// LockInboxState locks the row until the transaction ends, so that a
	// compare-and-set sees the latest committed state.
	LockInboxState: `SELECT state FROM inboxes WHERE id = $1 FOR UPDATE`,
	LockIncident:   `SELECT ` + sqlstore.IncidentColumns + ` FROM incidents WHERE id = $1 FOR UPDATE`,

	SwapCredentials: `UPDATE inboxes SET credentials = $2, updated_at = $3
	WHERE id = $1 AND coalesce(credentials, ''::bytea) = $4`,

	CountInboxes: queryCountInboxes,

	FleetSnapshots: `SELECT at, provider, state, count FROM fleet_snapshots
	WHERE at >= $1 ORDER BY at, provider COLLATE "C", state COLLATE "C"`,

	// The subquery finds the rows with a scan of the primary key, whose
	// first column is at, and the delete fetches them by ctid (a TID scan).
	PruneFleetSnapshots: `DELETE FROM fleet_snapshots
	WHERE ctid = ANY(ARRAY(SELECT ctid FROM fleet_snapshots WHERE at < $1 ORDER BY at LIMIT $2))
	AND at < $1`,

	RecordAttempt: `INSERT INTO webhook_deliveries (` + sqlstore.DeliveryColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, jsonb_build_array($7::jsonb), $8, $9)
	ON CONFLICT (webhook_id, event_id) DO UPDATE SET
		state = EXCLUDED.state,
		attempts = webhook_deliveries.attempts || jsonb_build_array($7::jsonb),
		updated_at = EXCLUDED.updated_at
	RETURNING ` + sqlstore.DeliveryColumns,

	// The pending queries use the partial index held_actions_pending.
	PendingHeldActions: `SELECT ` + sqlstore.HeldActionColumns + ` FROM held_actions
	WHERE NOT done AND id > $2 ORDER BY id LIMIT $1`,
	NewestPendingHeldActions: `SELECT ` + sqlstore.HeldActionColumns + ` FROM held_actions
	WHERE NOT done AND id > $2 ORDER BY id DESC LIMIT $1`,
}

// queryCountInboxes orders byte-wise, as SQLite does, whatever the
// database's collation.
const queryCountInboxes = `SELECT provider, state, count(*) FROM inboxes
	GROUP BY provider, state ORDER BY provider COLLATE "C", state COLLATE "C"`

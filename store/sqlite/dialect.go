package sqlite

import (
	"errors"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/holdfast/holdfast/store/sqlstore"
)

// dialect is SQLite's sqlstore.Dialect. Times are INTEGER microseconds
// since the Unix epoch, UTC; booleans are integers 0 and 1; JSON is text.
type dialect struct{}

// Name implements sqlstore.Dialect.
func (dialect) Name() string { return "sqlite" }

// Time implements sqlstore.Dialect.
func (dialect) Time(t time.Time) any { return t.UnixMicro() }

// IsUniqueViolation implements sqlstore.Dialect.
func (dialect) IsUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// IsForeignKeyViolation implements sqlstore.Dialect.
func (dialect) IsForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// Statements implements sqlstore.Dialect.
func (dialect) Statements() *sqlstore.Statements { return &statements }

// statements are the statements SQLite spells its own way.
var statements = sqlstore.Statements{
	// One connection serialises every transaction, and _txlock=immediate
	// takes the write lock when it begins: a plain read is current.
	LockInboxState: `SELECT state FROM inboxes WHERE id = $1`,
	// One connection, one writer: no lock needed.
	LockIncident: `SELECT ` + sqlstore.IncidentColumns + ` FROM incidents WHERE id = $1`,

	SwapCredentials: `UPDATE inboxes SET credentials = $2, updated_at = $3
	WHERE id = $1 AND coalesce(credentials, X'') = $4`,

	CountInboxes: queryCountInboxes,

	FleetSnapshots: `SELECT at, provider, state, count FROM fleet_snapshots
	WHERE at >= $1 ORDER BY at, provider, state`,

	// fleet_snapshots has no rowid, so the subquery picks the rows by
	// primary key, whose first column is at, and the delete looks each up
	// by the whole key.
	PruneFleetSnapshots: `DELETE FROM fleet_snapshots
	WHERE (at, provider, state) IN (
		SELECT at, provider, state FROM fleet_snapshots WHERE at < $1 ORDER BY at LIMIT $2)`,

	RecordAttempt: `INSERT INTO webhook_deliveries (` + sqlstore.DeliveryColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, json_array(json($7)), $8, $9)
	ON CONFLICT (webhook_id, event_id) DO UPDATE SET
		state = excluded.state,
		attempts = json_insert(webhook_deliveries.attempts, '$[#]', json($7)),
		updated_at = excluded.updated_at
	RETURNING ` + sqlstore.DeliveryColumns,

	// The pending queries repeat the WHERE of the partial index
	// held_actions_pending word for word, as SQLite needs to use it.
	PendingHeldActions: `SELECT ` + sqlstore.HeldActionColumns + ` FROM held_actions
	WHERE done = 0 AND id > $2 ORDER BY id LIMIT $1`,
	NewestPendingHeldActions: `SELECT ` + sqlstore.HeldActionColumns + ` FROM held_actions
	WHERE done = 0 AND id > $2 ORDER BY id DESC LIMIT $1`,
}

// queryCountInboxes reads the covering index inboxes_provider_state in
// order; SQLite's default collation compares bytes.
const queryCountInboxes = `SELECT provider, state, count(*) FROM inboxes
	GROUP BY provider, state ORDER BY provider, state`

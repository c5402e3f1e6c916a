package sqlite

// The SQL of pending OAuth consent flows and of the inbox lookup by email;
// see queries.go.

const oauthStateColumns = `hash, provider, email, verifier, redirect_uri, created_at, expires_at`

const (
	// queryInboxByEmail reads the unique index inboxes_provider_email.
	queryInboxByEmail = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE provider = ? AND lower(email) = lower(?)`

	queryInsertOAuthState = `INSERT INTO oauth_states (` + oauthStateColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?)`

	queryDeleteExpiredOAuthStates = `DELETE FROM oauth_states WHERE expires_at < ?`

	queryTakeOAuthState = `DELETE FROM oauth_states WHERE hash = ? RETURNING ` + oauthStateColumns
)

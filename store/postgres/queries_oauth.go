package postgres

// The SQL of pending OAuth consent flows and of the inbox lookup by email;
// see queries.go.

const oauthStateColumns = `hash, provider, email, verifier, redirect_uri, created_at, expires_at`

const (
	// queryInboxByEmail reads the unique index inboxes_provider_email.
	queryInboxByEmail = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE provider = $1 AND lower(email) = lower($2)`

	queryInsertOAuthState = `INSERT INTO oauth_states (` + oauthStateColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

	queryDeleteExpiredOAuthStates = `DELETE FROM oauth_states WHERE expires_at < $1`

	queryTakeOAuthState = `DELETE FROM oauth_states WHERE hash = $1 RETURNING ` + oauthStateColumns
)

package postgres

// The SQL of pending OAuth consent flows and of the inbox lookup by email;
// see queries.go.

const oauthStateColumns = `hash, provider, email, verifier, redirect_uri, created_at, expires_at, owner_email`

const (
	// queryInboxByEmail reads the unique index inboxes_provider_email.
	queryInboxByEmail = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE provider = $1 AND lower(email) = lower($2)`

	// queryInboxesByOwner reads the index inboxes_owner_email for the
	// inboxes with an owner and inboxes_unowned_email for those without,
	// whose WHERE it repeats (migration 00009).
	queryInboxesByOwner = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE lower(owner_email) = lower($1)
	UNION ALL
	SELECT ` + inboxColumns + ` FROM inboxes
	WHERE owner_email IS NULL AND lower(email) = lower($1)
	ORDER BY id`

	queryInsertOAuthState = `INSERT INTO oauth_states (` + oauthStateColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

	queryDeleteExpiredOAuthStates = `DELETE FROM oauth_states WHERE expires_at < $1`

	queryTakeOAuthState = `DELETE FROM oauth_states WHERE hash = $1 RETURNING ` + oauthStateColumns
)

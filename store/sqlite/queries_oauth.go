package sqlite

// The SQL of pending OAuth consent flows and of the inbox lookup by email;
// see queries.go.

const oauthStateColumns = `hash, provider, email, verifier, redirect_uri, created_at, expires_at, owner_email`

const (
	// queryInboxByEmail reads the unique index inboxes_provider_email.
	queryInboxByEmail = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE provider = ? AND lower(email) = lower(?)`

	// queryInboxesByOwner reads the index inboxes_owner_email for the
	// inboxes with an owner and inboxes_unowned_email for those without,
	// whose WHERE it repeats (migration 00009).
	queryInboxesByOwner = `SELECT ` + inboxColumns + ` FROM inboxes
	WHERE lower(owner_email) = lower(?1)
	UNION ALL
	SELECT ` + inboxColumns + ` FROM inboxes
	WHERE owner_email IS NULL AND lower(email) = lower(?1)
	ORDER BY id`

	queryInsertOAuthState = `INSERT INTO oauth_states (` + oauthStateColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

	queryDeleteExpiredOAuthStates = `DELETE FROM oauth_states WHERE expires_at < ?`

	queryTakeOAuthState = `DELETE FROM oauth_states WHERE hash = ? RETURNING ` + oauthStateColumns
)

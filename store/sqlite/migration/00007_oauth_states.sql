-- +goose Up

-- Pending OAuth consent flows, each taken (deleted) once by its callback.
-- hash is the SHA-256 of the state parameter. Times are INTEGER
-- microseconds since the Unix epoch, UTC.
CREATE TABLE oauth_states (
    hash         BLOB    NOT NULL PRIMARY KEY,
    provider     TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    verifier     TEXT    NOT NULL,
    redirect_uri TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) STRICT;

-- SaveOAuthState deletes the expired flows.
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);

-- +goose Down
DROP TABLE oauth_states;

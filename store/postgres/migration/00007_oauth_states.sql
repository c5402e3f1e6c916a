-- +goose Up

-- Pending OAuth consent flows, each taken (deleted) once by its callback.
-- hash is the SHA-256 of the state parameter.
CREATE TABLE oauth_states (
    hash         bytea       NOT NULL PRIMARY KEY,
    provider     text        NOT NULL,
    email        text        NOT NULL,
    verifier     text        NOT NULL,
    redirect_uri text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);

-- SaveOAuthState deletes the expired flows.
CREATE INDEX oauth_states_expires_at ON oauth_states (expires_at);

-- +goose Down
DROP TABLE oauth_states;

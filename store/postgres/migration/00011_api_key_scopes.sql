-- +goose Up

-- What a key may do (holdfast.APIKeyScope); keys made before scopes keep
-- every right they had.
ALTER TABLE api_keys ADD COLUMN scope text NOT NULL DEFAULT 'full';

-- When the key was revoked; NULL while it works.
ALTER TABLE api_keys ADD COLUMN revoked_at timestamptz;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN revoked_at;
ALTER TABLE api_keys DROP COLUMN scope;

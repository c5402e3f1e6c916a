-- +goose Up

-- CountInboxes groups every inbox by provider and state once a minute. This
-- index holds both columns, so Postgres counts with an index-only scan,
-- reading the index alone for the pages the visibility map marks
-- all-visible, instead of scanning the wider table.
CREATE INDEX inboxes_provider_state ON inboxes (provider, state);

-- +goose Down
DROP INDEX inboxes_provider_state;

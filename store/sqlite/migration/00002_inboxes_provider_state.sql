-- +goose Up

-- CountInboxes groups every inbox by provider and state once a minute. This
-- index covers the query: SQLite reads it alone, in the GROUP BY's order,
-- instead of scanning the wider table and sorting.
CREATE INDEX inboxes_provider_state ON inboxes (provider, state);

-- +goose Down
DROP INDEX inboxes_provider_state;

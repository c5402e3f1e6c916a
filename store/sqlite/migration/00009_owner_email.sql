-- +goose Up

-- An inbox's owner: the address its notices go to and whose status page
-- lists it. NULL means the inbox's own email.
ALTER TABLE inboxes ADD COLUMN owner_email TEXT;

-- InboxesByOwner: the inboxes of an owner address, and the inboxes without
-- one whose own email is that address.
CREATE INDEX inboxes_owner_email ON inboxes (lower(owner_email));
CREATE INDEX inboxes_unowned_email ON inboxes (lower(email)) WHERE owner_email IS NULL;

-- The owner address a consent flow was started with, '' for none.
ALTER TABLE oauth_states ADD COLUMN owner_email TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE oauth_states DROP COLUMN owner_email;
DROP INDEX inboxes_unowned_email;
DROP INDEX inboxes_owner_email;
ALTER TABLE inboxes DROP COLUMN owner_email;

package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
)

// CreateAPIKey stores k. A zero k.CreatedAt is set to now; the time is
// rounded down to the store's precision and set back in k. An empty
// k.Scope is ScopeFull. It returns ErrConflict if the ID or the hash
// exists.
func (s *Store) CreateAPIKey(ctx context.Context, k *holdfast.APIKey) error {
	if k.ID == "" || len(k.Hash) == 0 {
		return fmt.Errorf("create api key %s: %w", k.ID, holdfast.Invalidf("", "api key needs an id and a hash"))
	}
	if k.Scope == "" {
		k.Scope = holdfast.ScopeFull
	}
	k.CreatedAt = s.orNow(k.CreatedAt)
	if _, err := s.db.Exec(ctx, queryInsertAPIKey, k.ID, k.Name, k.Hash, k.Prefix, string(k.Scope), s.time(k.CreatedAt)); err != nil {
		return fmt.Errorf("create api key %s: %w", k.ID, s.conflict(err))
	}
	return nil
}

// scanAPIKey reads a row of apiKeyColumns.
func scanAPIKey(r Row) (*holdfast.APIKey, error) {
	var k holdfast.APIKey
	err := r.Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, (*string)(&k.Scope), timeDest(&k.CreatedAt), timeDest(&k.RevokedAt))
	return &k, err
}

// APIKeyByHash returns the key with the given hash, or ErrNotFound.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*holdfast.APIKey, error) {
	k, err := one(ctx, s.db, scanAPIKey, queryAPIKeyByHash, hash)
	if err != nil {
		return nil, fmt.Errorf("api key by hash: %w", err)
	}
	return k, nil
}

// APIKeyByID returns the key with the given ID, or ErrNotFound.
func (s *Store) APIKeyByID(ctx context.Context, id string) (*holdfast.APIKey, error) {
	k, err := one(ctx, s.db, scanAPIKey, queryAPIKeyByID, id)
	if err != nil {
		return nil, fmt.Errorf("api key %s: %w", id, err)
	}
	return k, nil
}

// APIKeys lists every key, oldest first.
func (s *Store) APIKeys(ctx context.Context) ([]*holdfast.APIKey, error) {
	ks, err := all(ctx, s.db, scanAPIKey, queryAPIKeys)
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return ks, nil
}

// RevokeAPIKey revokes the key id at time at (now if zero) and returns
// it; a revoked key keeps its first revocation time. It returns
// ErrNotFound for an unknown ID.
func (s *Store) RevokeAPIKey(ctx context.Context, id string, at time.Time) (*holdfast.APIKey, error) {
	k, err := one(ctx, s.db, scanAPIKey, queryRevokeAPIKey, id, s.time(s.orNow(at)))
	if err != nil {
		return nil, fmt.Errorf("revoke api key %s: %w", id, err)
	}
	return k, nil
}

package sqlstore

import (
	"context"
	"fmt"

	"github.com/holdfast/holdfast"
)

// CreateAPIKey stores k. A zero k.CreatedAt is set to now; the time is
// rounded down to the store's precision and set back in k. It returns
// ErrConflict if the ID or the hash exists.
func (s *Store) CreateAPIKey(ctx context.Context, k *holdfast.APIKey) error {
	if k.ID == "" || len(k.Hash) == 0 {
		return fmt.Errorf("create api key %s: %w", k.ID, holdfast.Invalidf("", "api key needs an id and a hash"))
	}
	k.CreatedAt = s.orNow(k.CreatedAt)
	if _, err := s.db.Exec(ctx, queryInsertAPIKey, k.ID, k.Name, k.Hash, k.Prefix, s.time(k.CreatedAt)); err != nil {
		return fmt.Errorf("create api key %s: %w", k.ID, s.conflict(err))
	}
	return nil
}

// APIKeyByHash returns the key with the given hash, or ErrNotFound.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*holdfast.APIKey, error) {
	k, err := one(ctx, s.db, func(r Row) (*holdfast.APIKey, error) {
		var k holdfast.APIKey
		err := r.Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, timeDest(&k.CreatedAt))
		return &k, err
	}, queryAPIKeyByHash, hash)
	if err != nil {
		return nil, fmt.Errorf("api key by hash: %w", err)
	}
	return k, nil
}

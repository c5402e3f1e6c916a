package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
	_, err := s.pool.Exec(ctx, queryInsertAPIKey, k.ID, k.Name, k.Hash, k.Prefix, k.CreatedAt)
	if isUnique(err) {
		return fmt.Errorf("create api key %s: %w: %w", k.ID, holdfast.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("create api key %s: %w", k.ID, err)
	}
	return nil
}

// APIKeyByHash returns the key with the given hash, or ErrNotFound.
func (s *Store) APIKeyByHash(ctx context.Context, hash []byte) (*holdfast.APIKey, error) {
	var k holdfast.APIKey
	err := s.pool.QueryRow(ctx, queryAPIKeyByHash, hash).Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, &k.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("api key by hash: %w", holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("api key by hash: %w", err)
	}
	k.CreatedAt = k.CreatedAt.UTC()
	return &k, nil
}

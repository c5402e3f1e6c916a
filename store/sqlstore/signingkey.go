package sqlstore

import (
	"context"
	"fmt"

	"github.com/holdfast/holdfast"
)

// SigningKeys returns the stored signing keys, newest first.
func (s *Store) SigningKeys(ctx context.Context) ([]*holdfast.SigningKey, error) {
	out, err := all(ctx, s.db, scanSigningKey, querySigningKeys)
	return out, wrapf(err, "signing keys")
}

// AddSigningKeys stores keys and then deletes every key but the newest
// two, in one transaction. A zero CreatedAt is set to now; the times are
// rounded down to the store's precision and set back. It returns
// ErrConflict, with nothing changed, if one of the generations exists.
func (s *Store) AddSigningKeys(ctx context.Context, keys ...*holdfast.SigningKey) error {
	for _, k := range keys {
		if k.Generation < 1 || len(k.Sealed) == 0 {
			return fmt.Errorf("add signing key %d: %w", k.Generation, holdfast.Invalidf("", "signing key needs a generation of at least 1 and a sealed key"))
		}
	}
	now := s.now()
	err := s.db.Tx(ctx, func(tx Executor) error {
		for _, k := range keys {
			if _, err := tx.Exec(ctx, queryInsertSigningKey, k.Generation, k.Sealed, s.time(orTime(k.CreatedAt, now))); err != nil {
				return fmt.Errorf("generation %d: %w", k.Generation, err)
			}
		}
		_, err := tx.Exec(ctx, queryPruneSigningKeys)
		return err
	})
	if err != nil {
		return fmt.Errorf("add signing keys: %w", s.conflict(err))
	}
	for _, k := range keys {
		k.CreatedAt = orTime(k.CreatedAt, now)
	}
	return nil
}

// SwapSigningKey replaces the sealed key of generation gen with sealed if
// it is still byte-equal to old. It returns ErrNotFound for an unknown
// generation and ErrConflict, with nothing changed, when the key is no
// longer old.
func (s *Store) SwapSigningKey(ctx context.Context, gen int64, old, sealed []byte) error {
	err := swapOne(ctx, s.db, "sealed key changed", querySwapSigningKey, querySigningKeyExists, gen, sealed, nonNilBytes(old))
	if err != nil {
		return fmt.Errorf("swap signing key %d: %w", gen, err)
	}
	return nil
}

// scanSigningKey reads one row of signingKeyColumns.
func scanSigningKey(r Row) (*holdfast.SigningKey, error) {
	var k holdfast.SigningKey
	err := r.Scan(&k.Generation, &k.Sealed, timeDest(&k.CreatedAt))
	return &k, err
}

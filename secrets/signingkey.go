package secrets

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/holdfast/holdfast"
)

// SigningKeyStore is the aggregate that ReencryptSigningKeys re-seals:
// the keys that sign status links and dashboard sessions.
type SigningKeyStore interface {
	holdfast.SigningKeyStore
}

var _ SigningKeyStore = holdfast.Store(nil)

// SigningKeyAAD binds a sealed signing key to its generation, so that one
// generation's ciphertext does not open as another's.
func SigningKeyAAD(gen int64) []byte {
	return []byte("signing key " + strconv.FormatInt(gen, 10))
}

// ReencryptSigningKeys seals again, under k's active key, every stored
// signing key that names another key. It is Reencrypt for signing keys,
// with the same guarantees: it is idempotent, and each write is a
// compare-and-set (SwapSigningKey) from the ciphertext it read, so a key
// that another process replaces meanwhile is never overwritten; it is
// read again and re-encrypted, or counted in Current if already under the
// active key. A key dropped meanwhile (a rotation keeps the newest two)
// counts as Deleted. A key that cannot be opened or keeps changing is
// counted in Failed and skipped, and the run then returns an error
// joining them. A store error or a done ctx stops the run at once.
func ReencryptSigningKeys(ctx context.Context, store SigningKeyStore, k *Keyring) (ReencryptStats, error) {
	var stats ReencryptStats
	active := k.ActiveID()
	if active == "" {
		return stats, errors.New("re-encrypt signing keys: keyring has no keys")
	}
	keys, err := store.SigningKeys(ctx)
	if err != nil {
		return stats, fmt.Errorf("re-encrypt signing keys: %w", err)
	}
	var failures []error
	for _, sk := range keys {
		if err := ctx.Err(); err != nil {
			return stats, fmt.Errorf("re-encrypt signing keys: %w", context.Cause(ctx))
		}
		stats.Scanned++
		gen := sk.Generation
		err := reseal(ctx, k, active, resealItem{
			name:  "signing key " + strconv.FormatInt(gen, 10),
			field: "sealed key",
			aad:   SigningKeyAAD(gen),
			swap: func(ctx context.Context, old, sealed []byte) error {
				return store.SwapSigningKey(ctx, gen, old, sealed)
			},
			reread: func(ctx context.Context) ([]byte, error) {
				keys, err := store.SigningKeys(ctx)
				if err != nil {
					return nil, err
				}
				for _, sk := range keys {
					if sk.Generation == gen {
						return sk.Sealed, nil
					}
				}
				return nil, holdfast.ErrNotFound
			},
		}, sk.Sealed, &stats)
		if err := stats.tally(err, &failures); err != nil {
			return stats, fmt.Errorf("re-encrypt signing keys: %w", err)
		}
	}
	if stats.Failed > 0 {
		return stats, fmt.Errorf("re-encrypt signing keys: %d signing keys could not be re-encrypted: %w",
			stats.Failed, errors.Join(failures...))
	}
	return stats, nil
}

package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/holdfast/holdfast"
)

// ErrSuperseded is returned by RotateRefreshToken when the inbox's stored
// grant is no longer the one the rotated token came from: its owner
// reconnected meanwhile, and the newer grant is kept.
var ErrSuperseded = errors.New("secrets: stored grant superseded")

// RotateRefreshToken stores refreshToken, the token a provider rotated
// while refreshing the grant sealed in prev, as inbox id's credentials,
// and returns the new sealed credentials (the prev of the next rotation).
//
// It swaps them only if the stored credentials are still prev, so that a
// token rotated by a request that began before a reconnection does not
// overwrite the owner's new grant. When they changed, it opens the stored
// ones: if they hold the same grant as prev (re-encrypted under a new key,
// or rotated to the same token), it tries again on top of them; if they
// hold another grant it leaves them and returns ErrSuperseded. A deleted
// inbox answers holdfast.ErrNotFound.
func RotateRefreshToken(ctx context.Context, store ReencryptStore, k *Keyring, id string, prev []byte, refreshToken string) ([]byte, error) {
	sealed, err := SealCredentials(k, id, Credentials{RefreshToken: refreshToken})
	if err != nil {
		return nil, fmt.Errorf("seal rotated refresh token of inbox %s: %w", id, err)
	}
	was, err := OpenCredentials(k, id, prev)
	if err != nil {
		return nil, fmt.Errorf("open previous credentials of inbox %s: %w", id, err)
	}
	cur := prev
	for attempt := 1; ; attempt++ {
		err := store.SwapCredentials(ctx, id, cur, sealed)
		if err == nil {
			return sealed, nil
		}
		if !errors.Is(err, holdfast.ErrConflict) || attempt == maxSwapAttempts {
			return nil, fmt.Errorf("save rotated refresh token of inbox %s: %w", id, err)
		}
		in, err := store.Inbox(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("save rotated refresh token of inbox %s: %w", id, err)
		}
		now, err := OpenCredentials(k, id, in.Credentials)
		if err != nil {
			return nil, fmt.Errorf("open stored credentials of inbox %s: %w", id, err)
		}
		if now.RefreshToken != was.RefreshToken && now.RefreshToken != refreshToken {
			return nil, fmt.Errorf("save rotated refresh token of inbox %s: %w", id, ErrSuperseded)
		}
		cur = in.Credentials
	}
}

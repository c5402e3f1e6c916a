package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
)

// SaveOAuthState stores a pending consent flow, after deleting the flows
// that expired before st.CreatedAt (a zero one is set to now), in one
// transaction. The times are rounded down to the store's precision and set
// back in st. It returns ErrConflict if the hash exists.
func (s *Store) SaveOAuthState(ctx context.Context, st *holdfast.OAuthState) error {
	if len(st.Hash) == 0 || !st.Provider.Valid() || st.ExpiresAt.IsZero() {
		return fmt.Errorf("save oauth state: %w", holdfast.Invalidf("", "oauth state needs a hash, a provider and an expiry"))
	}
	st.CreatedAt = s.orNow(st.CreatedAt)
	st.ExpiresAt = orTime(st.ExpiresAt, time.Time{})
	err := s.db.Tx(ctx, func(tx Executor) error {
		if _, err := tx.Exec(ctx, queryDeleteExpiredOAuthStates, s.time(st.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, queryInsertOAuthState, st.Hash, string(st.Provider), st.Email,
			st.Verifier, st.RedirectURI, s.time(st.CreatedAt), s.time(st.ExpiresAt), st.OwnerEmail)
		return err
	})
	if err != nil {
		return fmt.Errorf("save oauth state: %w", s.conflict(err))
	}
	return nil
}

// TakeOAuthState deletes the flow with the given hash and returns it
// unless it expired at at (a zero at means now). ErrNotFound for an
// unknown, taken or expired flow.
func (s *Store) TakeOAuthState(ctx context.Context, hash []byte, at time.Time) (*holdfast.OAuthState, error) {
	st, err := one(ctx, s.db, func(r Row) (*holdfast.OAuthState, error) {
		var (
			st       holdfast.OAuthState
			provider string
		)
		err := r.Scan(&st.Hash, &provider, &st.Email, &st.Verifier, &st.RedirectURI,
			timeDest(&st.CreatedAt), timeDest(&st.ExpiresAt), &st.OwnerEmail)
		st.Provider = holdfast.Provider(provider)
		return &st, err
	}, queryTakeOAuthState, hash)
	if err != nil {
		return nil, fmt.Errorf("take oauth state: %w", err)
	}
	if !s.orNow(at).Before(st.ExpiresAt) {
		return nil, fmt.Errorf("take oauth state: expired at %s: %w", st.ExpiresAt.Format(time.RFC3339), holdfast.ErrNotFound)
	}
	return st, nil
}

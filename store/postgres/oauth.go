package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/holdfast/holdfast"
)

// InboxByEmail returns the inbox of provider p whose email is email,
// ignoring case, or ErrNotFound.
func (s *Store) InboxByEmail(ctx context.Context, p holdfast.Provider, email string) (*holdfast.Inbox, error) {
	in, err := scanInbox(s.pool.QueryRow(ctx, queryInboxByEmail, string(p), email))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("%s inbox of %s: %w", p, email, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s inbox of %s: %w", p, email, err)
	}
	return in, nil
}

// InboxesByOwner returns, ordered by ID, the inboxes whose owner address
// is email, or that have none and whose email is, ignoring case.
func (s *Store) InboxesByOwner(ctx context.Context, email string) ([]*holdfast.Inbox, error) {
	rows, err := s.pool.Query(ctx, queryInboxesByOwner, email)
	if err != nil {
		return nil, fmt.Errorf("inboxes of owner %s: %w", email, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*holdfast.Inbox, error) { return scanInbox(r) })
	if err != nil {
		return nil, fmt.Errorf("inboxes of owner %s: %w", email, err)
	}
	return out, nil
}

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
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, queryDeleteExpiredOAuthStates, st.CreatedAt); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, queryInsertOAuthState, st.Hash, string(st.Provider), st.Email,
			st.Verifier, st.RedirectURI, st.CreatedAt, st.ExpiresAt, st.OwnerEmail)
		return err
	})
	if isUnique(err) {
		return fmt.Errorf("save oauth state: %w: %w", holdfast.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("save oauth state: %w", err)
	}
	return nil
}

// TakeOAuthState deletes the flow with the given hash and returns it
// unless it expired at at (a zero at means now). ErrNotFound for an
// unknown, taken or expired flow.
func (s *Store) TakeOAuthState(ctx context.Context, hash []byte, at time.Time) (*holdfast.OAuthState, error) {
	var (
		st       holdfast.OAuthState
		provider string
	)
	err := s.pool.QueryRow(ctx, queryTakeOAuthState, hash).Scan(&st.Hash, &provider, &st.Email,
		&st.Verifier, &st.RedirectURI, &st.CreatedAt, &st.ExpiresAt, &st.OwnerEmail)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("take oauth state: %w", holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("take oauth state: %w", err)
	}
	st.Provider = holdfast.Provider(provider)
	st.CreatedAt, st.ExpiresAt = st.CreatedAt.UTC(), st.ExpiresAt.UTC()
	if !s.orNow(at).Before(st.ExpiresAt) {
		return nil, fmt.Errorf("take oauth state: expired at %s: %w", st.ExpiresAt.Format(time.RFC3339), holdfast.ErrNotFound)
	}
	return &st, nil
}

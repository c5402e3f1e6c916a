package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/holdfast/holdfast"
)

// ReencryptStore is the part of holdfast.Store that Reencrypt needs.
type ReencryptStore interface {
	// Inboxes returns one page of inboxes ordered by ID.
	Inboxes(ctx context.Context, f holdfast.InboxFilter) ([]*holdfast.Inbox, error)
	// SetCredentials replaces an inbox's sealed credentials. It returns
	// holdfast.ErrNotFound for an unknown inbox.
	SetCredentials(ctx context.Context, id string, sealed []byte) error
}

var _ ReencryptStore = holdfast.Store(nil)

// reencryptPageSize is how many inboxes Reencrypt asks for at a time.
const reencryptPageSize = 500

// maxReportedFailures caps how many per-inbox errors Reencrypt returns.
const maxReportedFailures = 10

// ReencryptStats counts what Reencrypt did.
type ReencryptStats struct {
	// Scanned counts every inbox looked at.
	Scanned int
	// Reencrypted counts inboxes whose credentials were sealed again under
	// the active key.
	Reencrypted int
	// Current counts inboxes whose credentials were already under the
	// active key.
	Current int
	// Empty counts inboxes without credentials, which were skipped.
	Empty int
	// Deleted counts inboxes deleted while Reencrypt ran.
	Deleted int
	// Failed counts inboxes whose credentials could not be opened; they
	// are left as they are.
	Failed int
}

// Reencrypt pages through every inbox in store and seals again, under k's
// active key, each credential that names another key. Credentials already
// under the active key are left alone, so Reencrypt is idempotent: running
// it again after a crash or a cancellation resumes the work.
//
// Before Reencrypt starts, every process that opens credentials must hold
// k's active key, and every process that seals them must use it as its
// active key. Once a run returns no error, every credential is under the
// active key and the old keys may be dropped.
//
// An inbox whose credentials cannot be opened (an unknown key,
// ErrAuthentication, ErrMalformed) is counted in Failed and skipped; after
// the last page Reencrypt returns an error joining the first few such
// errors, which match the sentinels with errors.Is. A store error or a done
// ctx stops the run at once.
//
// The store has no compare-and-swap, so a credential that another process
// replaces between Reencrypt's read and its write is overwritten with the
// older value. Run Reencrypt while nothing else writes credentials, or
// check the affected inboxes afterwards.
func Reencrypt(ctx context.Context, store ReencryptStore, k *Keyring) (ReencryptStats, error) {
	var stats ReencryptStats
	active := k.ActiveID()
	if active == "" {
		return stats, errors.New("re-encrypt: keyring has no keys")
	}
	var failures []error
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return stats, fmt.Errorf("re-encrypt: %w", context.Cause(ctx))
		}
		page, err := store.Inboxes(ctx, holdfast.InboxFilter{After: after, Limit: reencryptPageSize})
		if err != nil {
			return stats, fmt.Errorf("re-encrypt: list inboxes after %q: %w", after, err)
		}
		if len(page) == 0 {
			break
		}
		for _, in := range page {
			if in.ID <= after {
				return stats, fmt.Errorf("re-encrypt: store returned inbox %s after %s, out of order", in.ID, after)
			}
			after = in.ID
			stats.Scanned++
			err := reencryptInbox(ctx, store, k, active, in, &stats)
			switch {
			case err == nil:
			case errors.Is(err, errOpen):
				stats.Failed++
				if len(failures) < maxReportedFailures {
					failures = append(failures, err)
				}
			default:
				return stats, fmt.Errorf("re-encrypt: %w", err)
			}
		}
	}
	if stats.Failed > 0 {
		return stats, fmt.Errorf("re-encrypt: credentials of %d inboxes could not be opened (first %d below): %w",
			stats.Failed, len(failures), errors.Join(failures...))
	}
	return stats, nil
}

// errOpen marks the per-inbox failures that Reencrypt counts and skips.
var errOpen = errors.New("open")

// openError is a per-inbox failure to open credentials. It matches errOpen
// and the error it wraps.
type openError struct {
	inboxID string
	err     error
}

// Error implements error.
func (e *openError) Error() string { return fmt.Sprintf("inbox %s: %v", e.inboxID, e.err) }

// Unwrap returns the error that stopped the credentials from opening.
func (e *openError) Unwrap() error { return e.err }

// Is reports whether target is errOpen.
func (e *openError) Is(target error) bool { return target == errOpen }

// reencryptInbox brings one inbox's credentials to the active key and
// counts the outcome in stats.
func reencryptInbox(ctx context.Context, store ReencryptStore, k *Keyring, active string, in *holdfast.Inbox, stats *ReencryptStats) error {
	if len(in.Credentials) == 0 {
		stats.Empty++
		return nil
	}
	id, err := KeyID(in.Credentials)
	if err != nil {
		return &openError{inboxID: in.ID, err: err}
	}
	if id == active {
		stats.Current++
		return nil
	}
	aad := credentialsAAD(in.ID)
	plaintext, err := k.Open(in.Credentials, aad)
	if err != nil {
		return &openError{inboxID: in.ID, err: err}
	}
	sealed, err := k.Seal(plaintext, aad)
	clear(plaintext)
	if err != nil {
		return fmt.Errorf("inbox %s: %w", in.ID, err)
	}
	if err := store.SetCredentials(ctx, in.ID, sealed); err != nil {
		if errors.Is(err, holdfast.ErrNotFound) {
			stats.Deleted++
			return nil
		}
		return fmt.Errorf("set credentials for inbox %s: %w", in.ID, err)
	}
	stats.Reencrypted++
	return nil
}

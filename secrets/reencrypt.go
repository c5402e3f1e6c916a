package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/holdfast/holdfast"
)

// ReencryptStore is the part of holdfast.Store that Reencrypt needs.
type ReencryptStore interface {
	// Inbox returns the inbox with the given ID, or holdfast.ErrNotFound.
	Inbox(ctx context.Context, id string) (*holdfast.Inbox, error)
	// Inboxes returns one page of inboxes ordered by ID.
	Inboxes(ctx context.Context, f holdfast.InboxFilter) ([]*holdfast.Inbox, error)
	// SwapCredentials replaces an inbox's sealed credentials with sealed
	// only if they are still byte-equal to old. It returns
	// holdfast.ErrNotFound for an unknown inbox and holdfast.ErrConflict,
	// with nothing changed, when the credentials are no longer old.
	SwapCredentials(ctx context.Context, id string, old, sealed []byte) error
}

var _ ReencryptStore = holdfast.Store(nil)

// reencryptPageSize is how many inboxes Reencrypt asks for at a time.
const reencryptPageSize = 500

// maxReportedFailures caps how many per-inbox errors Reencrypt returns.
const maxReportedFailures = 10

// maxSwapAttempts is how many times Reencrypt tries to swap one inbox's
// credentials before it gives up on an inbox whose credentials keep
// changing under it.
const maxSwapAttempts = 5

// ReencryptStats counts what Reencrypt did. Besides Scanned, each inbox is
// counted in exactly one field, the outcome it had last (an inbox re-read
// after a lost race is not counted twice), so when Reencrypt stops for
// neither a store error nor a done ctx, Scanned is the sum of the others.
type ReencryptStats struct {
	// Scanned counts every inbox looked at.
	Scanned int
	// Reencrypted counts inboxes whose credentials Reencrypt sealed again
	// under the active key.
	Reencrypted int
	// Current counts inboxes whose credentials were already under the
	// active key, including those another process sealed under it while
	// Reencrypt ran.
	Current int
	// Empty counts inboxes without credentials, which were skipped.
	Empty int
	// Deleted counts inboxes deleted while Reencrypt ran.
	Deleted int
	// Failed counts inboxes left as they are because their credentials
	// could not be opened, or kept changing through every attempt to
	// swap them.
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
// Each write is a compare-and-set (SwapCredentials) from the ciphertext
// Reencrypt read, so it is safe to run while holdfast serve writes
// credentials: a credential that another process replaces between
// Reencrypt's read and its write is never overwritten. Reencrypt reads that
// inbox again and starts over with what it finds: credentials already
// under the active key count as Current, an inbox deleted meanwhile as
// Deleted. After a few lost races in a row the inbox is counted in Failed
// and skipped; running Reencrypt again picks it up.
//
// An inbox whose credentials cannot be opened (an unknown key,
// ErrAuthentication, ErrMalformed) or keep changing (holdfast.ErrConflict)
// is counted in Failed and skipped; after the last page Reencrypt returns
// an error joining the first few such errors, which match the sentinels
// with errors.Is. A store error or a done ctx stops the run at once.
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
			case errors.Is(err, errSkipped):
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
		return stats, fmt.Errorf("re-encrypt: credentials of %d inboxes could not be re-encrypted (first %d below): %w",
			stats.Failed, len(failures), errors.Join(failures...))
	}
	return stats, nil
}

// errSkipped marks the per-inbox failures that Reencrypt counts in Failed
// and skips.
var errSkipped = errors.New("skipped")

// skipError is a per-inbox failure that Reencrypt counts and skips: the
// credentials could not be opened, or kept changing. It matches errSkipped
// and the error it wraps.
type skipError struct {
	inboxID string
	err     error
}

// Error implements error.
func (e *skipError) Error() string { return fmt.Sprintf("inbox %s: %v", e.inboxID, e.err) }

// Unwrap returns the error that made Reencrypt skip the inbox.
func (e *skipError) Unwrap() error { return e.err }

// Is reports whether target is errSkipped.
func (e *skipError) Is(target error) bool { return target == errSkipped }

// reencryptInbox brings one inbox's credentials to the active key and
// counts the outcome in stats. It swaps them from the ciphertext that in
// holds; when another process changed them first, it reads the inbox again
// and starts over, at most maxSwapAttempts times in all.
func reencryptInbox(ctx context.Context, store ReencryptStore, k *Keyring, active string, in *holdfast.Inbox, stats *ReencryptStats) error {
	id := in.ID
	for attempt := 1; ; attempt++ {
		if len(in.Credentials) == 0 {
			stats.Empty++
			return nil
		}
		keyID, err := KeyID(in.Credentials)
		if err != nil {
			return &skipError{inboxID: id, err: err}
		}
		if keyID == active {
			stats.Current++
			return nil
		}
		aad := credentialsAAD(id)
		plaintext, err := k.Open(in.Credentials, aad)
		if err != nil {
			return &skipError{inboxID: id, err: err}
		}
		sealed, err := k.Seal(plaintext, aad)
		clear(plaintext)
		if err != nil {
			return fmt.Errorf("inbox %s: %w", id, err)
		}
		err = store.SwapCredentials(ctx, id, in.Credentials, sealed)
		switch {
		case err == nil:
			stats.Reencrypted++
			return nil
		case errors.Is(err, holdfast.ErrNotFound):
			stats.Deleted++
			return nil
		case !errors.Is(err, holdfast.ErrConflict):
			return fmt.Errorf("swap credentials of inbox %s: %w", id, err)
		case attempt == maxSwapAttempts:
			return &skipError{inboxID: id, err: fmt.Errorf("credentials changed during each of %d attempts: %w", attempt, err)}
		}
		// Another process wrote new credentials since they were read.
		in, err = store.Inbox(ctx, id)
		if errors.Is(err, holdfast.ErrNotFound) {
			stats.Deleted++
			return nil
		}
		if err != nil {
			return fmt.Errorf("read inbox %s again: %w", id, err)
		}
	}
}

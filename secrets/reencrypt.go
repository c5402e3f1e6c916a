package secrets

import (
	"context"
	"errors"
	"fmt"

	"github.com/holdfast/holdfast"
)

// ReencryptStore is the aggregate that Reencrypt re-seals: the inboxes and their credentials.
type ReencryptStore interface {
	holdfast.InboxStore
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

// ReencryptStats counts what Reencrypt did to inboxes, or
// ReencryptWebhooks to webhooks. Besides Scanned, each inbox (webhook) is
// counted in exactly one field, the outcome it had last (one re-read after
// a lost race is not counted twice), so when a run stops for neither a
// store error nor a done ctx, Scanned is the sum of the others. For
// webhooks, read "secret" for "credentials" below.
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
			if err := stats.tally(reencryptInbox(ctx, store, k, active, in, &stats), &failures); err != nil {
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

// WebhookStore is the aggregate that ReencryptWebhooks re-seals: the webhooks and their signing secrets.
type WebhookStore interface {
	holdfast.WebhookStore
}

var _ WebhookStore = holdfast.Store(nil)

// ReencryptWebhooks seals again, under k's active key, the signing secret
// of every webhook in store that names another key; aad returns the
// additional data a webhook's secret is sealed with. It is Reencrypt for
// webhooks, with the same guarantees: it is idempotent, and each write is
// a compare-and-set (SwapWebhookSecret) from the ciphertext it read, so a
// secret that another process replaces meanwhile is never overwritten;
// the webhook is read again and the new secret re-encrypted, or counted
// in Current if already under the active key. A webhook deleted meanwhile
// counts as Deleted. A secret that cannot be opened or keeps changing is
// counted in Failed and skipped, and the run then returns an error joining
// the first few such errors. A store error or a done ctx stops the run at
// once.
func ReencryptWebhooks(ctx context.Context, store WebhookStore, k *Keyring, aad func(webhookID string) []byte) (ReencryptStats, error) {
	var stats ReencryptStats
	active := k.ActiveID()
	if active == "" {
		return stats, errors.New("re-encrypt webhook secrets: keyring has no keys")
	}
	hooks, err := store.Webhooks(ctx)
	if err != nil {
		return stats, fmt.Errorf("re-encrypt webhook secrets: list webhooks: %w", err)
	}
	var failures []error
	for _, w := range hooks {
		if err := ctx.Err(); err != nil {
			return stats, fmt.Errorf("re-encrypt webhook secrets: %w", context.Cause(ctx))
		}
		stats.Scanned++
		id := w.ID
		err := reseal(ctx, k, active, resealItem{
			name:  "webhook " + id,
			field: "secret",
			aad:   aad(id),
			swap: func(ctx context.Context, old, sealed []byte) error {
				return store.SwapWebhookSecret(ctx, id, old, sealed)
			},
			reread: func(ctx context.Context) ([]byte, error) {
				w, err := store.Webhook(ctx, id)
				if err != nil {
					return nil, err
				}
				return w.Secret, nil
			},
		}, w.Secret, &stats)
		if err := stats.tally(err, &failures); err != nil {
			return stats, fmt.Errorf("re-encrypt webhook secrets: %w", err)
		}
	}
	if stats.Failed > 0 {
		return stats, fmt.Errorf("re-encrypt webhook secrets: secrets of %d webhooks could not be re-encrypted (first %d below): %w",
			stats.Failed, len(failures), errors.Join(failures...))
	}
	return stats, nil
}

// tally counts one item's outcome: nil passes, a skipped failure is
// counted in Failed and kept for the report (the first
// maxReportedFailures), and any other error is returned: it stops the run.
func (s *ReencryptStats) tally(err error, failures *[]error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errSkipped):
		s.Failed++
		if len(*failures) < maxReportedFailures {
			*failures = append(*failures, err)
		}
		return nil
	}
	return err
}

// errSkipped marks the per-inbox (per-webhook) failures that Reencrypt
// (ReencryptWebhooks) counts in Failed and skips.
var errSkipped = errors.New("skipped")

// skipError is a per-inbox or per-webhook failure that is counted and
// skipped: the sealed value could not be opened, or kept changing. It
// matches errSkipped and the error it wraps.
type skipError struct {
	name string // "inbox inb_…" or "webhook whk_…"
	err  error
}

// Error implements error.
func (e *skipError) Error() string { return fmt.Sprintf("%s: %v", e.name, e.err) }

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
	return reseal(ctx, k, active, resealItem{
		name:  "inbox " + id,
		field: "credentials",
		aad:   credentialsAAD(id),
		swap: func(ctx context.Context, old, sealed []byte) error {
			return store.SwapCredentials(ctx, id, old, sealed)
		},
		reread: func(ctx context.Context) ([]byte, error) {
			in, err := store.Inbox(ctx, id)
			if err != nil {
				return nil, err
			}
			return in.Credentials, nil
		},
	}, in.Credentials, stats)
}

// resealItem is one stored sealed value that reseal brings to the active
// key.
type resealItem struct {
	name  string // what errors call it: "inbox inb_…"
	field string // what errors call the value: "credentials"
	aad   []byte // the additional data it is sealed with
	// swap stores sealed in place of old if the value is still old, or
	// returns holdfast.ErrConflict; holdfast.ErrNotFound if it is gone.
	swap func(ctx context.Context, old, sealed []byte) error
	// reread reads the value again, or returns holdfast.ErrNotFound.
	reread func(ctx context.Context) ([]byte, error)
}

// reseal brings it, currently sealed, to the active key and counts the
// outcome in stats. It swaps from sealed; when another process changed the
// value first, it reads it again and starts over, at most maxSwapAttempts
// times in all. It returns a *skipError for a value it counted in Failed.
func reseal(ctx context.Context, k *Keyring, active string, it resealItem, sealed []byte, stats *ReencryptStats) error {
	for attempt := 1; ; attempt++ {
		if len(sealed) == 0 {
			stats.Empty++
			return nil
		}
		keyID, err := KeyID(sealed)
		if err != nil {
			return &skipError{name: it.name, err: err}
		}
		if keyID == active {
			stats.Current++
			return nil
		}
		plaintext, err := k.Open(sealed, it.aad)
		if err != nil {
			return &skipError{name: it.name, err: err}
		}
		resealed, err := k.Seal(plaintext, it.aad)
		clear(plaintext)
		if err != nil {
			return fmt.Errorf("%s: %w", it.name, err)
		}
		err = it.swap(ctx, sealed, resealed)
		switch {
		case err == nil:
			stats.Reencrypted++
			return nil
		case errors.Is(err, holdfast.ErrNotFound):
			stats.Deleted++
			return nil
		case !errors.Is(err, holdfast.ErrConflict):
			return fmt.Errorf("swap %s of %s: %w", it.field, it.name, err)
		case attempt == maxSwapAttempts:
			return &skipError{name: it.name, err: fmt.Errorf("%s changed during each of %d attempts: %w", it.field, attempt, err)}
		}
		// Another process wrote a new value since it was read.
		sealed, err = it.reread(ctx)
		if errors.Is(err, holdfast.ErrNotFound) {
			stats.Deleted++
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s again: %w", it.name, err)
		}
	}
}

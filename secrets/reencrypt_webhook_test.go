package secrets

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// fakeWebhookStore is an in-memory WebhookStore.
type fakeWebhookStore struct {
	// WebhookStore's other methods are not called: they would panic.
	holdfast.WebhookStore
	sealedRows
}

var _ WebhookStore = (*fakeWebhookStore)(nil)

// Webhook returns one webhook, or holdfast.ErrNotFound.
func (s *fakeWebhookStore) Webhook(_ context.Context, id string) (*holdfast.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sealed, ok := s.rows[id]
	if !ok {
		return nil, holdfast.ErrNotFound
	}
	return &holdfast.Webhook{ID: id, Secret: slices.Clone(sealed)}, nil
}

// Webhooks returns every webhook, ordered by ID.
func (s *fakeWebhookStore) Webhooks(context.Context) ([]*holdfast.Webhook, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*holdfast.Webhook
	for _, id := range slices.Sorted(maps.Keys(s.rows)) {
		out = append(out, &holdfast.Webhook{ID: id, Secret: slices.Clone(s.rows[id])})
	}
	return out, nil
}

// SwapWebhookSecret replaces a webhook's sealed secret if it is still old.
func (s *fakeWebhookStore) SwapWebhookSecret(_ context.Context, id string, old, sealed []byte) error {
	return s.swap("secret of webhook", id, old, sealed)
}

// testWebhookAAD stands for the additional data holdfast serve seals
// webhook secrets with.
func testWebhookAAD(id string) []byte { return []byte("webhook secret " + id) }

type webhookBundle struct {
	oldRing *Keyring // k1 only
	newRing *Keyring // k2 active, k1 kept
	store   *fakeWebhookStore
	plain   map[string]string // each webhook's secret
}

// setupReencryptWebhooks stores n webhooks whose secrets are sealed under
// k1.
func setupReencryptWebhooks(t *testing.T, n int) *webhookBundle {
	t.Helper()
	k1, k2 := testKey("k1", 1), testKey("k2", 2)
	b := &webhookBundle{
		oldRing: newTestKeyring(t, k1),
		newRing: newTestKeyring(t, k2, k1),
		store:   &fakeWebhookStore{sealedRows: sealedRows{rows: make(map[string][]byte)}},
		plain:   make(map[string]string),
	}
	for i := range n {
		id := fmt.Sprintf("whk_%03d", i)
		b.plain[id] = fmt.Sprintf("whsec-%d", i)
		b.store.rows[id] = b.seal(t, b.oldRing, id, b.plain[id])
	}
	return b
}

// seal seals secret for the webhook id under ring's active key.
func (b *webhookBundle) seal(t *testing.T, ring *Keyring, id, secret string) []byte {
	t.Helper()
	sealed, err := ring.Seal([]byte(secret), testWebhookAAD(id))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return sealed
}

// check fails the test unless the webhook id's secret is sealed under
// keyID and opens to want.
func (b *webhookBundle) check(t *testing.T, id, keyID, want string) {
	t.Helper()
	sealed := b.store.value(id)
	if got, err := KeyID(sealed); err != nil || got != keyID {
		t.Errorf("webhook %s: KeyID = %q, %v; want %q", id, got, err, keyID)
	}
	got, err := b.newRing.Open(sealed, testWebhookAAD(id))
	if err != nil {
		t.Errorf("webhook %s: Open: %v", id, err)
		return
	}
	if string(got) != want {
		t.Errorf("webhook %s: secret = %q; want %q", id, got, want)
	}
}

func TestReencryptWebhooks(t *testing.T) {
	t.Parallel()

	b := setupReencryptWebhooks(t, 4)
	ctx := t.Context()
	stats, err := ReencryptWebhooks(ctx, b.store, b.newRing, testWebhookAAD)
	if err != nil {
		t.Fatalf("ReencryptWebhooks: %v", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 4, Reencrypted: 4}, stats); diff != "" {
		t.Errorf("ReencryptWebhooks stats mismatch (-want +got):\n%s", diff)
	}
	for id, want := range b.plain {
		b.check(t, id, "k2", want)
	}

	sets := b.store.sets
	stats, err = ReencryptWebhooks(ctx, b.store, b.newRing, testWebhookAAD)
	if err != nil {
		t.Fatalf("second ReencryptWebhooks: %v", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 4, Current: 4}, stats); diff != "" {
		t.Errorf("second ReencryptWebhooks stats mismatch (-want +got):\n%s", diff)
	}
	if b.store.sets != sets {
		t.Errorf("second ReencryptWebhooks wrote %d secrets, want 0", b.store.sets-sets)
	}
}

func TestReencryptWebhooksConcurrentWrite(t *testing.T) {
	t.Parallel()

	const raced = "whk_002"
	tests := []struct {
		name string
		// write runs before the nth attempt to swap the raced webhook's
		// secret, as another process replacing the secret, or deleting
		// the webhook, would.
		write func(t *testing.T, b *webhookBundle, n int)
		want  ReencryptStats
		// wantSecret, unless empty, is what the raced webhook must hold
		// afterwards, sealed under wantKey.
		wantSecret string
		wantKey    string
		wantErr    error
	}{
		{
			name: "sealed under the active key",
			write: func(t *testing.T, b *webhookBundle, n int) {
				if n == 1 {
					b.store.set(raced, b.seal(t, b.newRing, raced, "whsec-new-1"))
				}
			},
			want:       ReencryptStats{Scanned: 4, Reencrypted: 3, Current: 1},
			wantSecret: "whsec-new-1",
			wantKey:    "k2",
		},
		{
			name: "sealed under the old key",
			write: func(t *testing.T, b *webhookBundle, n int) {
				if n == 1 {
					b.store.set(raced, b.seal(t, b.oldRing, raced, "whsec-new-1"))
				}
			},
			want:       ReencryptStats{Scanned: 4, Reencrypted: 4},
			wantSecret: "whsec-new-1",
			wantKey:    "k2",
		},
		{
			name: "deleted",
			write: func(t *testing.T, b *webhookBundle, n int) {
				if n == 1 {
					b.store.delete(raced)
				}
			},
			want: ReencryptStats{Scanned: 4, Reencrypted: 3, Deleted: 1},
		},
		{
			name: "changed before every attempt",
			write: func(t *testing.T, b *webhookBundle, n int) {
				b.store.set(raced, b.seal(t, b.oldRing, raced, fmt.Sprintf("whsec-new-%d", n)))
			},
			want:       ReencryptStats{Scanned: 4, Reencrypted: 3, Failed: 1},
			wantSecret: fmt.Sprintf("whsec-new-%d", maxSwapAttempts),
			wantKey:    "k1",
			wantErr:    holdfast.ErrConflict,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			b := setupReencryptWebhooks(t, 4)
			attempts := 0
			b.store.SwapFunc = func(id string) error {
				if id == raced {
					attempts++
					tt.write(t, b, attempts)
				}
				return nil
			}
			stats, err := ReencryptWebhooks(t.Context(), b.store, b.newRing, testWebhookAAD)
			if tt.wantErr == nil && err != nil {
				t.Errorf("ReencryptWebhooks: %v", err)
			}
			if tt.wantErr != nil && (!errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), raced)) {
				t.Errorf("ReencryptWebhooks error = %v; want %v naming webhook %s", err, tt.wantErr, raced)
			}
			if diff := cmp.Diff(tt.want, stats); diff != "" {
				t.Errorf("ReencryptWebhooks stats mismatch (-want +got):\n%s", diff)
			}
			// The concurrent write survives.
			if tt.wantSecret == "" {
				if _, err := b.store.Webhook(t.Context(), raced); !errors.Is(err, holdfast.ErrNotFound) {
					t.Errorf("deleted webhook %s: Webhook = %v; want ErrNotFound", raced, err)
				}
			} else {
				b.check(t, raced, tt.wantKey, tt.wantSecret)
			}
			for id, want := range b.plain {
				if id != raced {
					b.check(t, id, "k2", want)
				}
			}
		})
	}
}

func TestReencryptWebhooksSkipsUnopenable(t *testing.T) {
	t.Parallel()

	b := setupReencryptWebhooks(t, 3)
	bad := map[string][]byte{
		"whk_bad_1": []byte("plaintext secret"),
		"whk_bad_2": b.store.value("whk_000"), // copied from another webhook
	}
	for id, sealed := range bad {
		b.store.rows[id] = sealed
	}
	stats, err := ReencryptWebhooks(t.Context(), b.store, b.newRing, testWebhookAAD)
	if diff := cmp.Diff(ReencryptStats{Scanned: 5, Reencrypted: 3, Failed: 2}, stats); diff != "" {
		t.Errorf("ReencryptWebhooks stats mismatch (-want +got):\n%s", diff)
	}
	for _, target := range []error{ErrMalformed, ErrAuthentication} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(ReencryptWebhooks error %v, %v) = false, want true", err, target)
		}
	}
	if err != nil && strings.Contains(err.Error(), "plaintext secret") {
		t.Errorf("ReencryptWebhooks error %q quotes stored bytes", err)
	}
	for id, want := range bad {
		if diff := cmp.Diff(want, b.store.value(id)); diff != "" {
			t.Errorf("webhook %s secret changed (-want +got):\n%s", id, diff)
		}
	}
}

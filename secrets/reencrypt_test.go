package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// sealedRows is an in-memory table of sealed values by ID, which the
// fake stores keep their credentials and secrets in: a plain write, a
// delete, a copy, and the compare-and-set the stores answer with.
type sealedRows struct {
	// SwapFunc, if set, runs before each swap compares the value, so it
	// may change it as a concurrent writer would; an error it returns is
	// returned without storing anything.
	SwapFunc func(id string) error

	mu   sync.Mutex
	rows map[string][]byte
	sets int
}

// swap replaces the value of id with sealed if it is still old; what
// names the value in its errors ("credentials of inbox").
func (r *sealedRows) swap(what, id string, old, sealed []byte) error {
	if r.SwapFunc != nil {
		if err := r.SwapFunc(id); err != nil {
			return err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	current, ok := r.rows[id]
	if !ok {
		return holdfast.ErrNotFound
	}
	if !bytes.Equal(current, old) {
		return fmt.Errorf("swap %s %s: %w", what, id, holdfast.ErrConflict)
	}
	r.rows[id] = slices.Clone(sealed)
	r.sets++
	return nil
}

// set stores sealed as id's value, as another process writing it would.
func (r *sealedRows) set(id string, sealed []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows[id] = slices.Clone(sealed)
}

// delete removes id, as another process deleting it would.
func (r *sealedRows) delete(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.rows, id)
}

// value returns a copy of id's sealed value.
func (r *sealedRows) value(id string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.rows[id])
}

// fakeStore is an in-memory ReencryptStore. Its pages are at most maxPage
// inboxes long whatever the caller asks for, like a store that caps Limit.
type fakeStore struct {
	// InboxStore's other methods are not called: they would panic.
	holdfast.InboxStore

	maxPage int
	sealedRows
}

var _ ReencryptStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{maxPage: 3, sealedRows: sealedRows{rows: make(map[string][]byte)}}
}

// Inboxes returns inboxes ordered by ID after f.After.
func (s *fakeStore) Inboxes(_ context.Context, f holdfast.InboxFilter) ([]*holdfast.Inbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	limit := f.Limit
	if limit <= 0 || limit > s.maxPage {
		limit = s.maxPage
	}
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range s.rows {
			if id > f.After && !yield(id) {
				return
			}
		}
	})
	var page []*holdfast.Inbox
	for _, id := range ids[:min(limit, len(ids))] {
		page = append(page, &holdfast.Inbox{ID: id, Credentials: slices.Clone(s.rows[id])})
	}
	return page, nil
}

// Inbox returns one inbox, or holdfast.ErrNotFound.
func (s *fakeStore) Inbox(_ context.Context, id string) (*holdfast.Inbox, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sealed, ok := s.rows[id]
	if !ok {
		return nil, holdfast.ErrNotFound
	}
	return &holdfast.Inbox{ID: id, Credentials: slices.Clone(sealed)}, nil
}

// SwapCredentials replaces an inbox's sealed credentials if they are still
// old.
func (s *fakeStore) SwapCredentials(_ context.Context, id string, old, sealed []byte) error {
	return s.swap("credentials of inbox", id, old, sealed)
}

type reencryptBundle struct {
	oldRing *Keyring // k1 only
	newRing *Keyring // k2 active, k1 kept
	store   *fakeStore
	creds   map[string]Credentials // what each inbox with credentials holds
}

// setupReencrypt stores n inboxes whose credentials are sealed under k1,
// and two inboxes without credentials.
func setupReencrypt(t *testing.T, n int) *reencryptBundle {
	t.Helper()
	k1, k2 := testKey("k1", 1), testKey("k2", 2)
	b := &reencryptBundle{
		oldRing: newTestKeyring(t, k1),
		newRing: newTestKeyring(t, k2, k1),
		store:   newFakeStore(),
		creds:   make(map[string]Credentials),
	}
	for i := range n {
		id := fmt.Sprintf("inb_%03d", i)
		c := Credentials{Password: fmt.Sprintf("password-%d", i), RefreshToken: fmt.Sprintf("token-%d", i)}
		sealed, err := SealCredentials(b.oldRing, id, c)
		if err != nil {
			t.Fatalf("SealCredentials: %v", err)
		}
		b.store.rows[id] = sealed
		b.creds[id] = c
	}
	b.store.rows["inb_empty_1"] = nil
	b.store.rows["inb_empty_2"] = []byte{}
	return b
}

// checkAllUnder fails the test unless every credential in the bundle is
// sealed under keyID and opens to its original value.
func (b *reencryptBundle) checkAllUnder(t *testing.T, keyID string) {
	t.Helper()
	onlyNew := newTestKeyring(t, testKey("k2", 2))
	for id, want := range b.creds {
		sealed := b.store.value(id)
		if got, err := KeyID(sealed); err != nil || got != keyID {
			t.Errorf("inbox %s: KeyID = %q, %v; want %q", id, got, err, keyID)
		}
		ring := b.newRing
		if keyID == "k2" {
			ring = onlyNew // the old key is no longer needed
		}
		got, err := OpenCredentials(ring, id, sealed)
		if err != nil {
			t.Errorf("inbox %s: OpenCredentials: %v", id, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("inbox %s: credentials mismatch (-want +got):\n%s", id, diff)
		}
	}
}

func TestReencrypt(t *testing.T) {
	t.Parallel()

	b := setupReencrypt(t, 25)
	ctx := t.Context()

	// With k1 still active there is nothing to do.
	stats, err := Reencrypt(ctx, b.store, b.oldRing)
	if err != nil {
		t.Fatalf("Reencrypt with the old keyring: %v", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 27, Current: 25, Empty: 2}, stats); diff != "" {
		t.Errorf("Reencrypt with the old keyring stats mismatch (-want +got):\n%s", diff)
	}
	b.checkAllUnder(t, "k1")

	stats, err = Reencrypt(ctx, b.store, b.newRing)
	if err != nil {
		t.Fatalf("Reencrypt: %v", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 27, Reencrypted: 25, Empty: 2}, stats); diff != "" {
		t.Errorf("Reencrypt stats mismatch (-want +got):\n%s", diff)
	}
	b.checkAllUnder(t, "k2")
	if got := b.store.value("inb_empty_1"); got != nil {
		t.Errorf("inbox without credentials now holds %d bytes, want none", len(got))
	}

	setsBefore := b.store.sets
	stats, err = Reencrypt(ctx, b.store, b.newRing)
	if err != nil {
		t.Fatalf("second Reencrypt: %v", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 27, Current: 25, Empty: 2}, stats); diff != "" {
		t.Errorf("second Reencrypt stats mismatch (-want +got):\n%s", diff)
	}
	if b.store.sets != setsBefore {
		t.Errorf("second Reencrypt wrote %d credentials, want 0", b.store.sets-setsBefore)
	}
}

func TestReencryptResumesAfterCrash(t *testing.T) {
	t.Parallel()

	b := setupReencrypt(t, 25)
	crash := errors.New("disk on fire")
	calls := 0
	b.store.SwapFunc = func(string) error {
		calls++
		if calls == 10 {
			return crash
		}
		return nil
	}
	stats, err := Reencrypt(t.Context(), b.store, b.newRing)
	if !errors.Is(err, crash) {
		t.Fatalf("Reencrypt error = %v, want %v", err, crash)
	}
	if !strings.Contains(err.Error(), "inb_009") {
		t.Errorf("Reencrypt error = %q, want it to name inbox inb_009", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 10, Reencrypted: 9}, stats); diff != "" {
		t.Errorf("interrupted Reencrypt stats mismatch (-want +got):\n%s", diff)
	}

	b.store.SwapFunc = nil
	stats, err = Reencrypt(t.Context(), b.store, b.newRing)
	if err != nil {
		t.Fatalf("resumed Reencrypt: %v", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 27, Reencrypted: 16, Current: 9, Empty: 2}, stats); diff != "" {
		t.Errorf("resumed Reencrypt stats mismatch (-want +got):\n%s", diff)
	}
	b.checkAllUnder(t, "k2")
}

func TestReencryptSkipsUnopenable(t *testing.T) {
	t.Parallel()

	b := setupReencrypt(t, 6)
	lost, err := NewKeyring(testKey("lost", 9))
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	unknown, err := lost.Seal([]byte(`{"password":"x"}`), credentialsAAD("inb_bad_1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	bad := map[string][]byte{
		"inb_bad_1": unknown,
		"inb_bad_2": []byte("plaintext password"),
		"inb_bad_3": b.store.value("inb_000"), // copied from another inbox
	}
	for id, sealed := range bad {
		b.store.rows[id] = sealed
	}

	stats, err := Reencrypt(t.Context(), b.store, b.newRing)
	if diff := cmp.Diff(ReencryptStats{Scanned: 11, Reencrypted: 6, Empty: 2, Failed: 3}, stats); diff != "" {
		t.Errorf("Reencrypt stats mismatch (-want +got):\n%s", diff)
	}
	if err == nil {
		t.Fatal("Reencrypt error = nil, want the failed inboxes")
	}
	for _, target := range []error{ErrUnknownKey, ErrMalformed, ErrAuthentication} {
		if !errors.Is(err, target) {
			t.Errorf("errors.Is(Reencrypt error, %v) = false, want true", target)
		}
	}
	for _, want := range []string{"3 inboxes", "inb_bad_1", "inb_bad_2", "inb_bad_3", `unknown key id "lost"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Reencrypt error = %q, want it to contain %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "plaintext password") {
		t.Errorf("Reencrypt error %q quotes stored bytes", err)
	}
	for id, want := range bad {
		if diff := cmp.Diff(want, b.store.value(id)); diff != "" {
			t.Errorf("inbox %s credentials changed (-want +got):\n%s", id, diff)
		}
	}
	b.checkAllUnder(t, "k2")
}

func TestReencryptDeletedInbox(t *testing.T) {
	t.Parallel()

	b := setupReencrypt(t, 5)
	b.store.SwapFunc = func(id string) error {
		if id == "inb_002" {
			return fmt.Errorf("set credentials: %w", holdfast.ErrNotFound)
		}
		return nil
	}
	stats, err := Reencrypt(t.Context(), b.store, b.newRing)
	if err != nil {
		t.Fatalf("Reencrypt: %v", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 7, Reencrypted: 4, Empty: 2, Deleted: 1}, stats); diff != "" {
		t.Errorf("Reencrypt stats mismatch (-want +got):\n%s", diff)
	}
}

func TestReencryptConcurrentWrite(t *testing.T) {
	t.Parallel()

	const raced = "inb_002"
	rotated := func(n int) Credentials {
		return Credentials{Password: "password-2", RefreshToken: fmt.Sprintf("rotated-%d", n)}
	}
	tests := []struct {
		name string
		// write runs before the nth attempt to swap the raced inbox's
		// credentials, as holdfast serve persisting a rotated token, or
		// deleting the inbox, would.
		write func(t *testing.T, b *reencryptBundle, n int)
		want  ReencryptStats
		// wantCreds, unless zero, is what the raced inbox must hold
		// afterwards, sealed under wantKey.
		wantCreds Credentials
		wantKey   string
		wantErr   error
	}{
		{
			name: "sealed under the active key",
			write: func(t *testing.T, b *reencryptBundle, n int) {
				if n == 1 {
					b.store.set(raced, mustSeal(t, b.newRing, raced, rotated(1)))
				}
			},
			want:      ReencryptStats{Scanned: 7, Reencrypted: 4, Current: 1, Empty: 2},
			wantCreds: rotated(1),
			wantKey:   "k2",
		},
		{
			name: "sealed under the old key",
			write: func(t *testing.T, b *reencryptBundle, n int) {
				if n == 1 {
					b.store.set(raced, mustSeal(t, b.oldRing, raced, rotated(1)))
				}
			},
			want:      ReencryptStats{Scanned: 7, Reencrypted: 5, Empty: 2},
			wantCreds: rotated(1),
			wantKey:   "k2",
		},
		{
			name: "emptied",
			write: func(t *testing.T, b *reencryptBundle, n int) {
				if n == 1 {
					b.store.set(raced, nil)
				}
			},
			want: ReencryptStats{Scanned: 7, Reencrypted: 4, Empty: 3},
		},
		{
			name: "deleted",
			write: func(t *testing.T, b *reencryptBundle, n int) {
				if n == 1 {
					b.store.delete(raced)
				}
			},
			want: ReencryptStats{Scanned: 7, Reencrypted: 4, Empty: 2, Deleted: 1},
		},
		{
			name: "changed before every attempt",
			write: func(t *testing.T, b *reencryptBundle, n int) {
				b.store.set(raced, mustSeal(t, b.oldRing, raced, rotated(n)))
			},
			want:      ReencryptStats{Scanned: 7, Reencrypted: 4, Empty: 2, Failed: 1},
			wantCreds: rotated(maxSwapAttempts),
			wantKey:   "k1",
			wantErr:   holdfast.ErrConflict,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			b := setupReencrypt(t, 5)
			attempts := 0
			b.store.SwapFunc = func(id string) error {
				if id == raced {
					attempts++
					tt.write(t, b, attempts)
				}
				return nil
			}
			stats, err := Reencrypt(t.Context(), b.store, b.newRing)
			if tt.wantErr == nil && err != nil {
				t.Errorf("Reencrypt: %v", err)
			}
			if tt.wantErr != nil && (!errors.Is(err, tt.wantErr) || !strings.Contains(fmt.Sprint(err), raced)) {
				t.Errorf("Reencrypt error = %v; want %v naming inbox %s", err, tt.wantErr, raced)
			}
			if diff := cmp.Diff(tt.want, stats); diff != "" {
				t.Errorf("Reencrypt stats mismatch (-want +got):\n%s", diff)
			}

			// The concurrent write survives.
			sealed := b.store.value(raced)
			if tt.wantCreds == (Credentials{}) {
				if len(sealed) != 0 {
					t.Errorf("inbox %s holds %d bytes of credentials; want none", raced, len(sealed))
				}
			} else {
				if got, err := KeyID(sealed); err != nil || got != tt.wantKey {
					t.Errorf("inbox %s: KeyID = %q, %v; want %q", raced, got, err, tt.wantKey)
				}
				got, err := OpenCredentials(b.newRing, raced, sealed)
				if err != nil {
					t.Fatalf("inbox %s: OpenCredentials: %v", raced, err)
				}
				if diff := cmp.Diff(tt.wantCreds, got); diff != "" {
					t.Errorf("inbox %s: credentials mismatch, the concurrent write was lost (-want +got):\n%s", raced, diff)
				}
			}
			delete(b.creds, raced)
			b.checkAllUnder(t, "k2")
		})
	}
}

// mustSeal seals c for the inbox id under ring's active key.
func mustSeal(t *testing.T, ring *Keyring, id string, c Credentials) []byte {
	t.Helper()
	sealed, err := SealCredentials(ring, id, c)
	if err != nil {
		t.Fatalf("SealCredentials: %v", err)
	}
	return sealed
}

func TestReencryptCanceled(t *testing.T) {
	t.Parallel()

	b := setupReencrypt(t, 10)
	ctx, cancel := context.WithCancel(t.Context())
	b.store.SwapFunc = func(id string) error {
		if id == "inb_004" {
			cancel()
		}
		return nil
	}
	stats, err := Reencrypt(ctx, b.store, b.newRing)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Reencrypt error = %v, want context.Canceled", err)
	}
	if stats.Scanned > 6 {
		t.Errorf("Reencrypt scanned %d inboxes after cancellation at the fifth, want it to stop by the end of the page", stats.Scanned)
	}
}

func TestReencryptNoKeys(t *testing.T) {
	t.Parallel()

	if _, err := Reencrypt(t.Context(), newFakeStore(), nil); err == nil {
		t.Error("Reencrypt with a nil keyring error = nil, want error")
	}
}

// reversedStore returns each page in reverse order, breaking the ordering
// that keyset paging relies on.
type reversedStore struct{ *fakeStore }

// Inboxes returns the page of the embedded store, reversed.
func (s reversedStore) Inboxes(ctx context.Context, f holdfast.InboxFilter) ([]*holdfast.Inbox, error) {
	page, err := s.fakeStore.Inboxes(ctx, f)
	slices.Reverse(page)
	return page, err
}

func TestReencryptStoreOutOfOrder(t *testing.T) {
	t.Parallel()

	b := setupReencrypt(t, 5)
	_, err := Reencrypt(t.Context(), reversedStore{b.store}, b.newRing)
	if err == nil || !strings.Contains(err.Error(), "out of order") {
		t.Errorf("Reencrypt error = %v, want out of order", err)
	}
}

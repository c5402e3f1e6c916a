package secrets

import (
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

// fakeStore is an in-memory ReencryptStore. Its pages are at most maxPage
// inboxes long whatever the caller asks for, like a store that caps Limit.
type fakeStore struct {
	maxPage int
	// SetCredentialsFunc, if set, runs before each SetCredentials; an
	// error it returns is returned without storing anything.
	SetCredentialsFunc func(id string) error

	mu      sync.Mutex
	inboxes map[string][]byte
	sets    int
}

var _ ReencryptStore = (*fakeStore)(nil)

func newFakeStore() *fakeStore {
	return &fakeStore{maxPage: 3, inboxes: make(map[string][]byte)}
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
		for id := range s.inboxes {
			if id > f.After && !yield(id) {
				return
			}
		}
	})
	var page []*holdfast.Inbox
	for _, id := range ids[:min(limit, len(ids))] {
		page = append(page, &holdfast.Inbox{ID: id, Credentials: slices.Clone(s.inboxes[id])})
	}
	return page, nil
}

// SetCredentials replaces an inbox's sealed credentials.
func (s *fakeStore) SetCredentials(_ context.Context, id string, sealed []byte) error {
	if s.SetCredentialsFunc != nil {
		if err := s.SetCredentialsFunc(id); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.inboxes[id]; !ok {
		return holdfast.ErrNotFound
	}
	s.inboxes[id] = slices.Clone(sealed)
	s.sets++
	return nil
}

// credentials returns a copy of an inbox's sealed credentials.
func (s *fakeStore) credentials(id string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.inboxes[id])
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
		b.store.inboxes[id] = sealed
		b.creds[id] = c
	}
	b.store.inboxes["inb_empty_1"] = nil
	b.store.inboxes["inb_empty_2"] = []byte{}
	return b
}

// checkAllUnder fails the test unless every credential in the bundle is
// sealed under keyID and opens to its original value.
func (b *reencryptBundle) checkAllUnder(t *testing.T, keyID string) {
	t.Helper()
	onlyNew := newTestKeyring(t, testKey("k2", 2))
	for id, want := range b.creds {
		sealed := b.store.credentials(id)
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
	if got := b.store.credentials("inb_empty_1"); got != nil {
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
	b.store.SetCredentialsFunc = func(string) error {
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

	b.store.SetCredentialsFunc = nil
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
		"inb_bad_3": b.store.credentials("inb_000"), // copied from another inbox
	}
	for id, sealed := range bad {
		b.store.inboxes[id] = sealed
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
		if diff := cmp.Diff(want, b.store.credentials(id)); diff != "" {
			t.Errorf("inbox %s credentials changed (-want +got):\n%s", id, diff)
		}
	}
	b.checkAllUnder(t, "k2")
}

func TestReencryptDeletedInbox(t *testing.T) {
	t.Parallel()

	b := setupReencrypt(t, 5)
	b.store.SetCredentialsFunc = func(id string) error {
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

func TestReencryptCanceled(t *testing.T) {
	t.Parallel()

	b := setupReencrypt(t, 10)
	ctx, cancel := context.WithCancel(t.Context())
	b.store.SetCredentialsFunc = func(id string) error {
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

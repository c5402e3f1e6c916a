package secrets

import (
	"context"
	"slices"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// fakeSigningKeyStore is an in-memory SigningKeyStore, its rows keyed by
// generation.
type fakeSigningKeyStore struct {
	// SigningKeyStore's other methods are not called: they would panic.
	holdfast.SigningKeyStore
	sealedRows
}

var _ SigningKeyStore = (*fakeSigningKeyStore)(nil)

// SigningKeys returns the keys, newest first.
func (s *fakeSigningKeyStore) SigningKeys(context.Context) ([]*holdfast.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*holdfast.SigningKey
	for id, sealed := range s.rows {
		gen, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, err
		}
		out = append(out, &holdfast.SigningKey{Generation: gen, Sealed: slices.Clone(sealed)})
	}
	slices.SortFunc(out, func(a, b *holdfast.SigningKey) int { return int(b.Generation - a.Generation) })
	return out, nil
}

// SwapSigningKey replaces a key's sealed value if it is still old.
func (s *fakeSigningKeyStore) SwapSigningKey(_ context.Context, gen int64, old, sealed []byte) error {
	return s.swap("signing key", strconv.FormatInt(gen, 10), old, sealed)
}

// TestReencryptSigningKeys re-seals the stored signing keys under the
// active key: a key another process re-sealed meanwhile is read again and
// not overwritten, one dropped meanwhile is counted as deleted, and a
// second run finds them all current.
func TestReencryptSigningKeys(t *testing.T) {
	t.Parallel()
	k1, k2 := testKey("k1", 1), testKey("k2", 2)
	oldRing, newRing := newTestKeyring(t, k1), newTestKeyring(t, k2, k1)
	store := &fakeSigningKeyStore{sealedRows: sealedRows{rows: make(map[string][]byte)}}
	seal := func(ring *Keyring, gen int64, plain string) []byte {
		t.Helper()
		sealed, err := ring.Seal([]byte(plain), SigningKeyAAD(gen))
		if err != nil {
			t.Fatal(err)
		}
		return sealed
	}
	for gen := int64(1); gen <= 3; gen++ {
		store.rows[strconv.FormatInt(gen, 10)] = seal(oldRing, gen, "key "+strconv.FormatInt(gen, 10))
	}
	// Before the first swap of each key, another process acts: it
	// re-seals key 3 itself and drops key 1 (a rotation).
	store.SwapFunc = func(id string) error {
		switch id {
		case "3":
			store.set("3", seal(newRing, 3, "key 3"))
		case "1":
			store.delete("1")
		}
		return nil
	}
	stats, err := ReencryptSigningKeys(t.Context(), store, newRing)
	if err != nil {
		t.Fatalf("ReencryptSigningKeys() = %v", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 3, Reencrypted: 1, Current: 1, Deleted: 1}, stats); diff != "" {
		t.Errorf("ReencryptSigningKeys() stats (-want +got):\n%s", diff)
	}
	for _, gen := range []int64{3, 2} {
		sealed := store.value(strconv.FormatInt(gen, 10))
		if id, err := KeyID(sealed); err != nil || id != "k2" {
			t.Errorf("signing key %d: KeyID = %q, %v; want k2", gen, id, err)
		}
		if got, err := newRing.Open(sealed, SigningKeyAAD(gen)); err != nil || string(got) != "key "+strconv.FormatInt(gen, 10) {
			t.Errorf("signing key %d opens to %q, %v", gen, got, err)
		}
	}
	store.SwapFunc = nil
	stats, err = ReencryptSigningKeys(t.Context(), store, newRing)
	if err != nil {
		t.Fatalf("second ReencryptSigningKeys() = %v", err)
	}
	if diff := cmp.Diff(ReencryptStats{Scanned: 2, Current: 2}, stats); diff != "" {
		t.Errorf("second ReencryptSigningKeys() stats (-want +got):\n%s", diff)
	}
}

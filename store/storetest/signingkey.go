package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// signingKeyTests are the conformance tests of the stored signing keys.
var signingKeyTests = []conformanceTest{
	{"SigningKeys", testSigningKeys},
	{"SigningKeysConcurrentAdd", testSigningKeysConcurrentAdd},
	{"SwapSigningKey", testSwapSigningKey},
}

// signingKey returns a key of generation gen sealed as sealed, made at t0
// plus gen minutes.
func signingKey(gen int64, sealed string) *holdfast.SigningKey {
	return &holdfast.SigningKey{Generation: gen, Sealed: []byte(sealed), CreatedAt: t0.Add(time.Duration(gen) * time.Minute)}
}

// mustSigningKeys returns the stored sealed keys, newest first.
func mustSigningKeys(t *testing.T, s holdfast.Store) []string {
	t.Helper()
	keys, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Fatalf("SigningKeys() = %v", err)
	}
	var out []string
	for _, k := range keys {
		out = append(out, string(k.Sealed))
	}
	return out
}

func testSigningKeys(t *testing.T, s holdfast.Store) {
	if got := mustSigningKeys(t, s); len(got) != 0 {
		t.Fatalf("SigningKeys() of an empty store = %q; want none", got)
	}
	// Two at once, as an import does, in any order.
	k1, k2 := signingKey(1, "one"), signingKey(2, "two")
	if err := s.AddSigningKeys(t.Context(), k2, k1); err != nil {
		t.Fatalf("AddSigningKeys(2, 1) = %v", err)
	}
	keys, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []*holdfast.SigningKey{
		{Generation: 2, Sealed: []byte("two"), CreatedAt: stored(t0.Add(2 * time.Minute))},
		{Generation: 1, Sealed: []byte("one"), CreatedAt: stored(t0.Add(time.Minute))},
	}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("SigningKeys() (-want +got):\n%s", diff)
	}
	// A zero CreatedAt is set to now.
	k3 := &holdfast.SigningKey{Generation: 3, Sealed: []byte("three")}
	before := stored(time.Now())
	if err := s.AddSigningKeys(t.Context(), k3); err != nil {
		t.Fatalf("AddSigningKeys(3) = %v", err)
	}
	if after := time.Now(); k3.CreatedAt.Before(before) || k3.CreatedAt.After(after) {
		t.Errorf("AddSigningKeys set CreatedAt %v; want between %v and %v", k3.CreatedAt, before, after)
	}
	if keys, err := s.SigningKeys(t.Context()); err != nil || !keys[0].CreatedAt.Equal(k3.CreatedAt) {
		t.Errorf("SigningKeys()[0] = %v, %v; want CreatedAt %v as set back", keys, err, k3.CreatedAt)
	}
	// Only the newest two are kept.
	if diff := cmp.Diff([]string{"three", "two"}, mustSigningKeys(t, s)); diff != "" {
		t.Errorf("SigningKeys() after the third (-want +got):\n%s", diff)
	}
	// A generation that exists is a conflict, and changes nothing, not
	// even the other keys of the call.
	err = s.AddSigningKeys(t.Context(), signingKey(4, "four"), signingKey(3, "other three"))
	if !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("AddSigningKeys(4, 3) with 3 stored = %v; want ErrConflict", err)
	}
	if diff := cmp.Diff([]string{"three", "two"}, mustSigningKeys(t, s)); diff != "" {
		t.Errorf("SigningKeys() after a conflict (-want +got):\n%s", diff)
	}
	for _, k := range []*holdfast.SigningKey{signingKey(0, "zero"), signingKey(5, "")} {
		var inv *holdfast.InvalidError
		if err := s.AddSigningKeys(t.Context(), k); !errors.As(err, &inv) {
			t.Errorf("AddSigningKeys(generation %d, sealed %q) = %v; want an *InvalidError", k.Generation, k.Sealed, err)
		}
	}
}

// testSigningKeysConcurrentAdd adds the same generation from many
// goroutines at once: one wins, the others get ErrConflict, and one key is
// stored.
func testSigningKeysConcurrentAdd(t *testing.T, s holdfast.Store) {
	const n = 8
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		won       []string
		conflicts int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sealed := string(rune('a' + i))
			err := s.AddSigningKeys(t.Context(), signingKey(1, sealed))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, sealed)
			case errors.Is(err, holdfast.ErrConflict):
				conflicts++
			default:
				t.Errorf("AddSigningKeys(1) = %v; want nil or ErrConflict", err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 || conflicts != n-1 {
		t.Fatalf("%d concurrent AddSigningKeys(1): %d won (%q), %d conflicts; want 1 and %d", n, len(won), won, conflicts, n-1)
	}
	if diff := cmp.Diff(won, mustSigningKeys(t, s)); diff != "" {
		t.Errorf("SigningKeys() (-want +got):\n%s", diff)
	}
}

func testSwapSigningKey(t *testing.T, s holdfast.Store) {
	if err := s.AddSigningKeys(t.Context(), signingKey(1, "one"), signingKey(2, "two")); err != nil {
		t.Fatal(err)
	}
	if err := s.SwapSigningKey(t.Context(), 1, []byte("one"), []byte("one resealed")); err != nil {
		t.Fatalf("SwapSigningKey(1) from the stored key = %v", err)
	}
	if err := s.SwapSigningKey(t.Context(), 2, []byte("stale"), []byte("two resealed")); !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("SwapSigningKey(2) from a stale key = %v; want ErrConflict", err)
	}
	if err := s.SwapSigningKey(t.Context(), 7, []byte("one"), []byte("x")); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SwapSigningKey(7) = %v; want ErrNotFound", err)
	}
	if diff := cmp.Diff([]string{"two", "one resealed"}, mustSigningKeys(t, s)); diff != "" {
		t.Errorf("SigningKeys() after the swaps (-want +got):\n%s", diff)
	}
}

package storetest

import (
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// oauthTests are the conformance tests of pending OAuth consent flows and
// of the inbox lookup by email the callback uses.
var oauthTests = []conformanceTest{
	{"OAuthStateTakenOnce", testOAuthStateTakenOnce},
	{"OAuthStateConflict", testOAuthStateConflict},
	{"OAuthStateExpiry", testOAuthStateExpiry},
	{"OAuthStateConcurrentTake", testOAuthStateConcurrentTake},
	{"InboxByEmail", testInboxByEmail},
}

// newOAuthState returns a complete consent flow created at t0 with a
// fresh hash.
func newOAuthState() *holdfast.OAuthState {
	h := sha256.Sum256([]byte(newID("state")))
	return &holdfast.OAuthState{
		Hash: h[:], Provider: holdfast.ProviderMicrosoft, Email: "ann@example.test",
		Verifier:    strings.Repeat("v", 43),
		RedirectURI: "https://app.example.test/connected?x=1",
		OwnerEmail:  "Owner.Ann@example.test",
		CreatedAt:   t0, ExpiresAt: t0.Add(10 * time.Minute),
	}
}

func mustSaveOAuthState(t *testing.T, s holdfast.Store, st *holdfast.OAuthState) {
	t.Helper()
	if err := s.SaveOAuthState(t.Context(), st); err != nil {
		t.Fatalf("SaveOAuthState() = %v", err)
	}
}

func testOAuthStateTakenOnce(t *testing.T, s holdfast.Store) {
	st := newOAuthState()
	want := *st
	want.CreatedAt, want.ExpiresAt = stored(t0), stored(t0.Add(10*time.Minute))
	mustSaveOAuthState(t, s, st)
	if diff := cmp.Diff(&want, st); diff != "" {
		t.Errorf("SaveOAuthState() set back (-want +got):\n%s", diff)
	}
	got, err := s.TakeOAuthState(t.Context(), st.Hash, t0.Add(time.Minute))
	if err != nil {
		t.Fatalf("TakeOAuthState() = %v", err)
	}
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("TakeOAuthState() (-want +got):\n%s", diff)
	}
	if _, err := s.TakeOAuthState(t.Context(), st.Hash, t0.Add(time.Minute)); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("second TakeOAuthState() = %v, want ErrNotFound", err)
	}
	other := sha256.Sum256([]byte("never saved"))
	if _, err := s.TakeOAuthState(t.Context(), other[:], time.Time{}); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("TakeOAuthState(unknown) = %v, want ErrNotFound", err)
	}
}

func testOAuthStateConflict(t *testing.T, s holdfast.Store) {
	st := newOAuthState()
	mustSaveOAuthState(t, s, st)
	again := *st
	again.Email = "bob@example.test"
	if err := s.SaveOAuthState(t.Context(), &again); !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("SaveOAuthState(same hash) = %v, want ErrConflict", err)
	}
	bad := newOAuthState()
	bad.Hash = nil
	if err := s.SaveOAuthState(t.Context(), bad); err == nil {
		t.Error("SaveOAuthState(no hash) = nil, want an error")
	}
}

func testOAuthStateExpiry(t *testing.T, s holdfast.Store) {
	// Taken at its expiry: not found, and gone.
	st := newOAuthState()
	mustSaveOAuthState(t, s, st)
	if _, err := s.TakeOAuthState(t.Context(), st.Hash, st.ExpiresAt); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("TakeOAuthState(at expiry) = %v, want ErrNotFound", err)
	}
	if _, err := s.TakeOAuthState(t.Context(), st.Hash, t0); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("TakeOAuthState(after an expired take) = %v, want ErrNotFound", err)
	}

	// A save deletes the flows that expired before it; the others stay.
	old, live := newOAuthState(), newOAuthState()
	old.ExpiresAt = t0.Add(time.Minute)
	live.ExpiresAt = t0.Add(time.Hour)
	mustSaveOAuthState(t, s, old)
	mustSaveOAuthState(t, s, live)
	later := newOAuthState()
	later.CreatedAt, later.ExpiresAt = t0.Add(2*time.Minute), t0.Add(12*time.Minute)
	mustSaveOAuthState(t, s, later)
	if _, err := s.TakeOAuthState(t.Context(), old.Hash, t0); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("TakeOAuthState(expired before a later save) = %v, want ErrNotFound", err)
	}
	for _, st := range []*holdfast.OAuthState{live, later} {
		if _, err := s.TakeOAuthState(t.Context(), st.Hash, t0.Add(3*time.Minute)); err != nil {
			t.Errorf("TakeOAuthState(live) = %v", err)
		}
	}
}

func testOAuthStateConcurrentTake(t *testing.T, s holdfast.Store) {
	st := newOAuthState()
	mustSaveOAuthState(t, s, st)
	const n = 8
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		taken    int
		otherErr []error
	)
	for range n {
		wg.Go(func() {
			_, err := s.TakeOAuthState(t.Context(), st.Hash, t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				taken++
			case !errors.Is(err, holdfast.ErrNotFound):
				otherErr = append(otherErr, err)
			}
		})
	}
	wg.Wait()
	if taken != 1 || len(otherErr) > 0 {
		t.Errorf("%d concurrent TakeOAuthState: %d took it, errors %v; want exactly 1 and ErrNotFound for the others", n, taken, otherErr)
	}
}

func testInboxByEmail(t *testing.T, s holdfast.Store) {
	in := newInbox()
	in.Provider, in.IMAP, in.SMTP, in.Username = holdfast.ProviderMicrosoft, nil, nil, ""
	in.Email = "Ann." + in.ID + "@Example.test"
	mustCreate(t, s, in)
	mustCreate(t, s, newInbox())
	got, err := s.InboxByEmail(t.Context(), holdfast.ProviderMicrosoft, strings.ToLower(in.Email))
	if err != nil {
		t.Fatalf("InboxByEmail(lower case) = %v", err)
	}
	if got.ID != in.ID || got.Email != in.Email {
		t.Errorf("InboxByEmail(lower case) = %s %s, want %s %s", got.ID, got.Email, in.ID, in.Email)
	}
	if _, err := s.InboxByEmail(t.Context(), holdfast.ProviderGoogle, in.Email); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("InboxByEmail(other provider) = %v, want ErrNotFound", err)
	}
	if _, err := s.InboxByEmail(t.Context(), holdfast.ProviderMicrosoft, "nobody@example.test"); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("InboxByEmail(unknown) = %v, want ErrNotFound", err)
	}
}

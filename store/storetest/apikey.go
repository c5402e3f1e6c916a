package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// apiKeyTests are the tests of API key scopes, listing and revocation.
var apiKeyTests = []conformanceTest{
	{"APIKeyScopes", testAPIKeyScopes},
	{"APIKeyList", testAPIKeyList},
	{"APIKeyRevoke", testAPIKeyRevoke},
}

// newAPIKey returns a key record named for its ID, created at t0.
func newAPIKey(scope holdfast.APIKeyScope) *holdfast.APIKey {
	id := newID("key")
	return &holdfast.APIKey{ID: id, Name: "ops " + id, Hash: []byte(id + "\x00hash"), Prefix: "hf_" + id[4:10], Scope: scope, CreatedAt: t0}
}

func testAPIKeyScopes(t *testing.T, s holdfast.Store) {
	for _, scope := range append([]holdfast.APIKeyScope{""}, holdfast.APIKeyScopes...) {
		t.Run(string(scope), func(t *testing.T) {
			k := newAPIKey(scope)
			if err := s.CreateAPIKey(t.Context(), k); err != nil {
				t.Fatalf("CreateAPIKey = %v", err)
			}
			want := scope
			if want == "" {
				want = holdfast.ScopeFull
			}
			for name, get := range map[string]func() (*holdfast.APIKey, error){
				"APIKeyByHash": func() (*holdfast.APIKey, error) { return s.APIKeyByHash(t.Context(), k.Hash) },
				"APIKeyByID":   func() (*holdfast.APIKey, error) { return s.APIKeyByID(t.Context(), k.ID) },
			} {
				got, err := get()
				if err != nil {
					t.Fatalf("%s = %v", name, err)
				}
				if got.Scope != want || got.Revoked() {
					t.Errorf("%s: Scope = %q, Revoked = %v; want %q, false", name, got.Scope, got.Revoked(), want)
				}
			}
		})
	}
}

func testAPIKeyList(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	got, err := s.APIKeys(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("APIKeys of an empty store = %v, %v; want none", got, err)
	}
	var want []*holdfast.APIKey
	for i, scope := range holdfast.APIKeyScopes {
		k := newAPIKey(scope)
		k.CreatedAt = t0.Add(time.Duration(i) * time.Second)
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey = %v", err)
		}
		want = append(want, k)
	}
	if got, err = s.APIKeys(ctx); err != nil {
		t.Fatalf("APIKeys = %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("APIKeys mismatch (-want +got):\n%s", diff)
	}
}

func testAPIKeyRevoke(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	k, other := newAPIKey(holdfast.ScopeFull), newAPIKey(holdfast.ScopeSend)
	for _, k := range []*holdfast.APIKey{k, other} {
		if err := s.CreateAPIKey(ctx, k); err != nil {
			t.Fatalf("CreateAPIKey = %v", err)
		}
	}
	at := t0.Add(time.Hour)
	got, err := s.RevokeAPIKey(ctx, k.ID, at)
	if err != nil {
		t.Fatalf("RevokeAPIKey = %v", err)
	}
	want := *k
	want.RevokedAt = stored(at)
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("RevokeAPIKey mismatch (-want +got):\n%s", diff)
	}

	tests := []struct {
		name    string
		run     func(t *testing.T) (*holdfast.APIKey, error)
		want    *holdfast.APIKey
		wantErr error
	}{
		{"ByHashShowsRevoked", func(t *testing.T) (*holdfast.APIKey, error) {
			return s.APIKeyByHash(t.Context(), k.Hash)
		}, &want, nil},
		{"ByIDShowsRevoked", func(t *testing.T) (*holdfast.APIKey, error) {
			return s.APIKeyByID(t.Context(), k.ID)
		}, &want, nil},
		{"AgainKeepsFirstTime", func(t *testing.T) (*holdfast.APIKey, error) {
			return s.RevokeAPIKey(t.Context(), k.ID, at.Add(time.Hour))
		}, &want, nil},
		{"OtherKeyUntouched", func(t *testing.T) (*holdfast.APIKey, error) {
			return s.APIKeyByID(t.Context(), other.ID)
		}, other, nil},
		{"UnknownID", func(t *testing.T) (*holdfast.APIKey, error) {
			return s.RevokeAPIKey(t.Context(), "key_none", at)
		}, nil, holdfast.ErrNotFound},
		{"UnknownIDLookup", func(t *testing.T) (*holdfast.APIKey, error) {
			return s.APIKeyByID(t.Context(), "key_none")
		}, nil, holdfast.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.run(t)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); tt.want != nil && diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

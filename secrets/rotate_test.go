package secrets

import (
	"errors"
	"testing"

	"github.com/holdfast/holdfast"
)

// TestRotateRefreshToken covers a rotated refresh token saved while
// another process may change the inbox's credentials: a re-encryption
// keeps the rotation, a reconnection wins over it, a deleted inbox is
// reported.
func TestRotateRefreshToken(t *testing.T) {
	t.Parallel()
	k1, k2 := testKey("k1", 1), testKey("k2", 2)
	ring := newTestKeyring(t, k2, k1)
	oldRing := newTestKeyring(t, k1)
	const id = "inb_rot"
	orig := Credentials{RefreshToken: "rt-1"}
	tests := []struct {
		name      string
		meanwhile func(s *fakeStore) // runs before the first swap
		wantErr   error
		want      string // the refresh token stored at the end
	}{
		{name: "nothing else happens", want: "rt-2"},
		{name: "re-encrypted under a new key meanwhile", meanwhile: func(s *fakeStore) {
			s.set(id, mustSeal(t, ring, id, orig))
		}, want: "rt-2"},
		{name: "owner reconnected meanwhile", meanwhile: func(s *fakeStore) {
			s.set(id, mustSeal(t, ring, id, Credentials{RefreshToken: "rt-new-grant"}))
		}, wantErr: ErrSuperseded, want: "rt-new-grant"},
		{name: "deleted meanwhile", meanwhile: func(s *fakeStore) { s.delete(id) }, wantErr: holdfast.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newFakeStore()
			prev := mustSeal(t, oldRing, id, orig)
			s.set(id, prev)
			if tt.meanwhile != nil {
				once := false
				s.SwapFunc = func(string) error {
					if !once {
						once = true
						tt.meanwhile(s)
					}
					return nil
				}
			}
			sealed, err := RotateRefreshToken(t.Context(), s, ring, id, prev, "rt-2")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("RotateRefreshToken = %v, want %v", err, tt.wantErr)
			}
			if tt.want == "" {
				return
			}
			got, err := OpenCredentials(ring, id, s.value(id))
			if err != nil {
				t.Fatal(err)
			}
			if got.RefreshToken != tt.want {
				t.Errorf("stored refresh token %q, want %q", got.RefreshToken, tt.want)
			}
			if err == nil && tt.wantErr == nil {
				// The returned credentials are the prev of the next
				// rotation.
				if _, err := RotateRefreshToken(t.Context(), s, ring, id, sealed, "rt-3"); err != nil {
					t.Errorf("next rotation = %v", err)
				}
			}
		})
	}
}

package secrets

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// testKey returns a key with the given id and a secret filled with b.
func testKey(id string, b byte) Key {
	k := Key{ID: id}
	for i := range k.Secret {
		k.Secret[i] = b
	}
	return k
}

// newTestKeyring returns a keyring of keys, failing the test on error.
func newTestKeyring(t *testing.T, keys ...Key) *Keyring {
	t.Helper()
	k, err := NewKeyring(keys...)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("k1", 1))
	tests := []struct {
		name      string
		plaintext []byte
		aad       []byte
	}{
		{name: "empty", plaintext: []byte{}, aad: []byte("inb_1")},
		{name: "password", plaintext: []byte("hunter2"), aad: []byte("inb_1")},
		{name: "no aad", plaintext: []byte("hunter2"), aad: nil},
		{name: "large", plaintext: bytes.Repeat([]byte("x"), 1<<16), aad: []byte("inb_1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sealed, err := k.Seal(tt.plaintext, tt.aad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			if got, want := len(sealed), 2+len("k1")+nonceSize+len(tt.plaintext)+tagSize; got != want {
				t.Errorf("len(sealed) = %d, want %d", got, want)
			}
			got, err := k.Open(sealed, tt.aad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if diff := cmp.Diff(tt.plaintext, got); diff != "" {
				t.Errorf("Open(Seal(p)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSealFormat(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("key-1", 1))
	sealed, err := k.Seal([]byte("hunter2"), []byte("inb_1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if diff := cmp.Diff([]byte("\x01\x05key-1"), sealed[:7]); diff != "" {
		t.Errorf("header mismatch (-want +got):\n%s", diff)
	}
	id, err := KeyID(sealed)
	if err != nil || id != "key-1" {
		t.Errorf("KeyID = %q, %v; want %q, nil", id, err, "key-1")
	}

	again, err := k.Seal([]byte("hunter2"), []byte("inb_1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if bytes.Equal(sealed, again) {
		t.Error("two seals of the same plaintext are equal; nonces must be random")
	}
}

func TestSealedDoesNotContainPlaintext(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("k1", 1))
	secret := "correct horse battery staple"
	sealed, err := SealCredentials(k, "inb_1", Credentials{Password: secret, RefreshToken: secret + "-refresh"})
	if err != nil {
		t.Fatalf("SealCredentials: %v", err)
	}
	for _, s := range []string{secret, "correct", "password", "refresh_token"} {
		if bytes.Contains(sealed, []byte(s)) {
			t.Errorf("sealed credentials contain %q", s)
		}
	}
}

func TestOpenAADMismatch(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("k1", 1))
	sealed, err := k.Seal([]byte("hunter2"), []byte("inb_1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	for _, aad := range []string{"inb_2", "", "inb_1 ", "inb_"} {
		_, err := k.Open(sealed, []byte(aad))
		if !errors.Is(err, ErrAuthentication) {
			t.Errorf("Open(aad %q) error = %v, want ErrAuthentication", aad, err)
		}
	}
}

func TestOpenTampered(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("k1", 1), testKey("k2", 2))
	sealed, err := k.Seal([]byte("hunter2"), []byte("inb_1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	// Flip one bit of every byte in turn: every change must be caught.
	for i := range sealed {
		for _, mask := range []byte{0x01, 0x80} {
			tampered := bytes.Clone(sealed)
			tampered[i] ^= mask
			got, err := k.Open(tampered, []byte("inb_1"))
			if err == nil {
				t.Errorf("Open with byte %d ^ %#x = %q, want error", i, mask, got)
				continue
			}
			if !errors.Is(err, ErrAuthentication) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) {
				t.Errorf("Open with byte %d ^ %#x error = %v, want a typed error", i, mask, err)
			}
		}
	}
	// Changing the key id to another key the keyring holds must fail
	// authentication too.
	swapped := bytes.Clone(sealed)
	copy(swapped[2:4], "k2")
	if _, err := k.Open(swapped, []byte("inb_1")); !errors.Is(err, ErrAuthentication) {
		t.Errorf("Open with key id swapped to k2 error = %v, want ErrAuthentication", err)
	}
	if _, err := k.Open(sealed[:len(sealed)-1], []byte("inb_1")); !errors.Is(err, ErrAuthentication) {
		t.Errorf("Open of truncated ciphertext error = %v, want ErrAuthentication", err)
	}
}

func TestOpenUnknownKey(t *testing.T) {
	t.Parallel()

	old := newTestKeyring(t, testKey("old", 1))
	sealed, err := old.Seal([]byte("hunter2"), []byte("inb_1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	k := newTestKeyring(t, testKey("new", 2))
	_, err = k.Open(sealed, []byte("inb_1"))
	var uk *UnknownKeyError
	if !errors.As(err, &uk) || uk.ID != "old" {
		t.Fatalf("Open error = %v, want *UnknownKeyError{ID: old}", err)
	}
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("errors.Is(%v, ErrUnknownKey) = false, want true", err)
	}
	if got, want := err.Error(), `unknown key id "old"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestOpenMalformed(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("k1", 1))
	valid, err := k.Seal([]byte("hunter2"), nil)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	tests := []struct {
		name   string
		sealed []byte
		want   string
	}{
		{name: "nil", sealed: nil, want: "ciphertext is 0 bytes, shorter than its header: malformed ciphertext"},
		{name: "version only", sealed: []byte{1}, want: "ciphertext is 1 bytes, shorter than its header: malformed ciphertext"},
		{name: "unknown version", sealed: append([]byte{2}, valid[1:]...), want: "unsupported ciphertext version 2: malformed ciphertext"},
		{name: "empty key id", sealed: []byte{1, 0, 'x'}, want: "key id length 0 out of range 1 to 32: malformed ciphertext"},
		{name: "key id too long", sealed: append([]byte{1, 33}, bytes.Repeat([]byte("a"), 33)...), want: "key id length 33 out of range 1 to 32: malformed ciphertext"},
		{name: "truncated key id", sealed: []byte{1, 5, 'k'}, want: "ciphertext is 3 bytes, shorter than its header: malformed ciphertext"},
		{name: "bad key id", sealed: []byte{1, 2, 'k', ' '}, want: "key id has invalid characters: malformed ciphertext"},
		{name: "no nonce", sealed: valid[:4], want: "ciphertext is 4 bytes, shorter than header, nonce and tag: malformed ciphertext"},
		{name: "no tag", sealed: valid[:4+nonceSize+tagSize-1], want: "ciphertext is 31 bytes, shorter than header, nonce and tag: malformed ciphertext"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := k.Open(tt.sealed, nil)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Open error = %v, want ErrMalformed", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Open error = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeyring(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("b", 1), testKey("a", 2), testKey("c", 3))
	if got := k.ActiveID(); got != "b" {
		t.Errorf("ActiveID() = %q, want %q", got, "b")
	}
	if diff := cmp.Diff([]string{"b", "a", "c"}, k.IDs()); diff != "" {
		t.Errorf("IDs() mismatch (-want +got):\n%s", diff)
	}
	k.IDs()[0] = "changed"
	if got := k.ActiveID(); got != "b" {
		t.Errorf("after changing IDs(), ActiveID() = %q, want %q", got, "b")
	}

	var nilRing *Keyring
	if _, err := nilRing.Seal([]byte("x"), nil); err == nil {
		t.Error("nil Keyring Seal error = nil, want error")
	}
	sealed, err := k.Seal([]byte("x"), nil)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if _, err := nilRing.Open(sealed, nil); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("nil Keyring Open error = %v, want ErrUnknownKey", err)
	}
}

func TestNewKeyringErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		keys []Key
		want string
	}{
		{name: "no keys", keys: nil, want: "keyring: no keys"},
		{name: "empty id", keys: []Key{testKey("", 1)}, want: "keyring: key 1: key id must be"},
		{name: "bad id", keys: []Key{testKey("a", 1), testKey("a b", 2)}, want: "keyring: key 2: key id must be"},
		{name: "long id", keys: []Key{testKey(strings.Repeat("a", 33), 1)}, want: "keyring: key 1: key id must be"},
		{name: "duplicate id", keys: []Key{testKey("a", 1), testKey("a", 2)}, want: `keyring: duplicate key id "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewKeyring(tt.keys...)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("NewKeyring error = %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestGenerateKey(t *testing.T) {
	t.Parallel()

	a, err := GenerateKey()
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatalf("GenerateKey: %v", err)
	}
	if a.Secret == b.Secret {
		t.Error("two generated keys are equal")
	}
	if len(a.ID) != 8 || a.ID != deriveKeyID(a.Secret[:]) {
		t.Errorf("generated key id = %q, want the 8-digit derived id %q", a.ID, deriveKeyID(a.Secret[:]))
	}
}

func TestKeyAndKeyringDoNotPrintKeyMaterial(t *testing.T) {
	t.Parallel()

	key := testKey("k1", 0xAB)
	k := newTestKeyring(t, key)
	values := []any{key, &key, k, struct{ K *Keyring }{k}, []Key{key}}
	for _, v := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
			got := fmt.Sprintf(verb, v)
			for _, leak := range []string{"ab ab", "abab", "ABAB", "171", "\xab", "q6ur"} {
				if strings.Contains(got, leak) {
					t.Errorf("Sprintf(%q, %T) = %q, contains key material %q", verb, v, got, leak)
				}
			}
			if !strings.Contains(got, "k1") {
				t.Errorf("Sprintf(%q, %T) = %q, want the key id", verb, v, got)
			}
		}
	}
}

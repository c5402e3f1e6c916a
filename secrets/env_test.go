package secrets

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestFromEnv(t *testing.T) {
	t.Parallel()

	k1, k2 := testKey("k1", 0x11), testKey("k2", 0x22)
	std := base64.StdEncoding.EncodeToString(k1.Secret[:])
	sum := sha256.Sum256(k1.Secret[:])
	derived := hex.EncodeToString(sum[:])[:8]
	// A key whose encodings differ between the standard and URL alphabets.
	var odd Key
	for i := range odd.Secret {
		odd.Secret[i] = 0xFB
	}
	oddStd := base64.StdEncoding.EncodeToString(odd.Secret[:])
	oddURL := base64.RawURLEncoding.EncodeToString(odd.Secret[:])
	if !strings.ContainsAny(oddStd, "+/") || !strings.ContainsAny(oddURL, "-_") {
		t.Fatalf("test key encodings %q, %q do not exercise both alphabets", oddStd, oddURL)
	}

	tests := []struct {
		name    string
		value   string
		wantIDs []string
	}{
		{name: "single std", value: std, wantIDs: []string{derived}},
		{name: "single raw std", value: strings.TrimRight(std, "="), wantIDs: []string{derived}},
		{name: "single url", value: base64.URLEncoding.EncodeToString(k1.Secret[:]), wantIDs: []string{derived}},
		{name: "single raw url", value: base64.RawURLEncoding.EncodeToString(k1.Secret[:]), wantIDs: []string{derived}},
		{name: "single with spaces", value: "  " + std + "\n", wantIDs: []string{derived}},
		{name: "std alphabet", value: "odd:" + oddStd, wantIDs: []string{"odd"}},
		{name: "url alphabet", value: "odd:" + oddURL, wantIDs: []string{"odd"}},
		{name: "one entry", value: "k1:" + std, wantIDs: []string{"k1"}},
		{
			name:    "list, first active",
			value:   "k2:" + base64.StdEncoding.EncodeToString(k2.Secret[:]) + ", k1:" + std,
			wantIDs: []string{"k2", "k1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := FromEnv(tt.value)
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			if diff := cmp.Diff(tt.wantIDs, k.IDs()); diff != "" {
				t.Errorf("FromEnv IDs mismatch (-want +got):\n%s", diff)
			}
		})
	}

	// The parsed key is the encoded one: ciphertexts interoperate with a
	// keyring built directly from it.
	fromEnv, err := FromEnv("k1:" + strings.TrimRight(base64.URLEncoding.EncodeToString(k1.Secret[:]), "="))
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	sealed, err := fromEnv.Seal([]byte("hunter2"), nil)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if _, err := newTestKeyring(t, k1).Open(sealed, nil); err != nil {
		t.Errorf("Open with the directly built key: %v", err)
	}
}

func TestFromEnvErrors(t *testing.T) {
	t.Parallel()

	key := testKey("k", 0x5A)
	good := base64.StdEncoding.EncodeToString(key.Secret[:])
	short := base64.StdEncoding.EncodeToString(key.Secret[:16])
	long := base64.StdEncoding.EncodeToString(append(key.Secret[:], 1))
	notBase64 := "!!" + good[2:]

	tests := []struct {
		name  string
		value string
		want  string
	}{
		{name: "empty", value: "", want: "HOLDFAST_SECRET_KEY is empty"},
		{name: "blank", value: " \n", want: "HOLDFAST_SECRET_KEY is empty"},
		{name: "short", value: short, want: "HOLDFAST_SECRET_KEY: key is 16 bytes, want 32"},
		{name: "long", value: long, want: "HOLDFAST_SECRET_KEY: key is 33 bytes, want 32"},
		{name: "bad base64", value: notBase64, want: "HOLDFAST_SECRET_KEY: key is not valid base64"},
		{name: "empty id", value: ":" + good, want: "HOLDFAST_SECRET_KEY: entry 1: empty key id"},
		{name: "blank id", value: " :" + good, want: "HOLDFAST_SECRET_KEY: entry 1: empty key id"},
		{name: "no colon", value: "a:" + good + "," + good, want: "HOLDFAST_SECRET_KEY: entry 2: want id:base64key"},
		{name: "empty entry", value: "a:" + good + ",", want: "HOLDFAST_SECRET_KEY: entry 2 is empty"},
		{name: "leading comma", value: ",a:" + good, want: "HOLDFAST_SECRET_KEY: entry 1 is empty"},
		{name: "empty key", value: "a:", want: `HOLDFAST_SECRET_KEY: entry 1 (key id "a"): empty key`},
		{name: "duplicate id", value: "a:" + good + ",b:" + good + ",a:" + good, want: `HOLDFAST_SECRET_KEY: entry 3: duplicate key id "a"`},
		{name: "bad id", value: "a b:" + good, want: "HOLDFAST_SECRET_KEY: entry 1: key id must be 1 to 32 ASCII letters, digits, '-', '_' or '.'"},
		{name: "key as id", value: good + ":" + good, want: "HOLDFAST_SECRET_KEY: entry 1: key id must be 1 to 32 ASCII letters, digits, '-', '_' or '.'"},
		{name: "entry short", value: "a:" + good + ",b:" + short, want: `HOLDFAST_SECRET_KEY: entry 2 (key id "b"): key is 16 bytes, want 32`},
		{name: "entry bad base64", value: "a:" + notBase64, want: `HOLDFAST_SECRET_KEY: entry 1 (key id "a"): key is not valid base64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := FromEnv(tt.value)
			if err == nil {
				t.Fatalf("FromEnv = %v, want error %q", k, tt.want)
			}
			got := err.Error()
			if got != tt.want {
				t.Errorf("FromEnv error = %q, want %q", got, tt.want)
			}
			for _, secret := range []string{good, good[:12], short[:12], long[:12], notBase64[:12]} {
				if strings.Contains(got, secret) {
					t.Errorf("FromEnv error %q contains key material %q", got, secret)
				}
			}
		})
	}
}

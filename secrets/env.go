package secrets

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// EnvVar is the environment variable that FromEnv parses.
const EnvVar = "HOLDFAST_SECRET_KEY"

// FromEnv returns the keyring described by value, the contents of
// HOLDFAST_SECRET_KEY. The value is either one base64 key of KeySize bytes
// (standard or URL alphabet, padded or not), whose id is the first 8 hex
// digits of its SHA-256, or a comma-separated list "id:base64key,..." whose
// first key is active. Errors name the entry and what is wrong with it but
// never contain key material.
func FromEnv(value string) (*Keyring, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, fmt.Errorf("%s is empty", EnvVar)
	}
	if !strings.ContainsAny(value, ":,") {
		secret, err := decodeKey(value)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvVar, err)
		}
		k, err := NewKeyring(Key{ID: deriveKeyID(secret[:]), Secret: secret})
		clear(secret[:])
		return k, err
	}

	entries := strings.Split(value, ",")
	keys := make([]Key, 0, len(entries))
	defer func() {
		for i := range keys {
			clear(keys[i].Secret[:])
		}
	}()
	seen := make(map[string]bool, len(entries))
	for i, entry := range entries {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, fmt.Errorf("%s: entry %d is empty", EnvVar, i+1)
		}
		id, encoded, ok := strings.Cut(entry, ":")
		if !ok {
			return nil, fmt.Errorf("%s: entry %d: want id:base64key", EnvVar, i+1)
		}
		id = strings.TrimSpace(id)
		if id == "" {
			return nil, fmt.Errorf("%s: entry %d: empty key id", EnvVar, i+1)
		}
		if !validKeyID(id) {
			return nil, fmt.Errorf("%s: entry %d: %w", EnvVar, i+1, errBadKeyID)
		}
		if seen[id] {
			return nil, fmt.Errorf("%s: entry %d: duplicate key id %q", EnvVar, i+1, id)
		}
		seen[id] = true
		secret, err := decodeKey(strings.TrimSpace(encoded))
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d (key id %q): %w", EnvVar, i+1, id, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	return NewKeyring(keys...)
}

// decodeKey decodes a base64 key in any of the four common encodings. Its
// errors never quote the input.
func decodeKey(s string) ([KeySize]byte, error) {
	var key [KeySize]byte
	if s == "" {
		return key, errors.New("empty key")
	}
	encodings := []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	}
	for _, enc := range encodings {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		n := len(b)
		copy(key[:], b)
		clear(b)
		if n != KeySize {
			clear(key[:])
			return key, fmt.Errorf("key is %d bytes, want %d", n, KeySize)
		}
		return key, nil
	}
	return key, errors.New("key is not valid base64")
}

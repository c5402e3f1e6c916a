package holdfast

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"
)

// APIKey grants access to the /v1 API. Only a hash of the key is stored;
// the key itself is shown once, when it is created.
type APIKey struct {
	ID   string
	Name string
	// Hash is the SHA-256 of the whole key.
	Hash []byte
	// Prefix is the key's first characters, shown to help people tell keys
	// apart; it is not enough to use the key.
	Prefix    string
	CreatedAt time.Time
}

// APIKeyPrefix starts every API key, so leaked keys are easy to find.
const APIKeyPrefix = "hf_"

// NewAPIKey makes a new random API key named name. It returns the key, to
// be shown once, and the record to store, which holds only its hash.
func NewAPIKey(name string, now time.Time) (string, *APIKey) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("holdfast: crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	secret := APIKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, &APIKey{
		ID:        NewID("key", now),
		Name:      name,
		Hash:      HashAPIKey(secret),
		Prefix:    secret[:len(APIKeyPrefix)+6],
		CreatedAt: now.UTC().Truncate(StoreTimePrecision),
	}
}

// HashAPIKey returns the hash under which key is stored. Keys carry 256
// random bits, so a fast hash is enough: there is nothing to brute-force.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

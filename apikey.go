package holdfast

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
)

// APIKeyScope says what an API key may do.
type APIKeyScope string

// The scopes of API keys.
const (
	// ScopeFull may do everything, manage API keys included, and sign in
	// to the dashboard.
	ScopeFull APIKeyScope = "full"
	// ScopeReadOnly may read the API and change nothing: every write
	// answers 403.
	ScopeReadOnly APIKeyScope = "read_only"
	// ScopeSend may queue and cancel sends, and read what sending needs
	// (inboxes and sends); nothing else.
	ScopeSend APIKeyScope = "send"
	// ScopeDashboard may only sign in to the dashboard (/ui); every /v1
	// route answers 403.
	ScopeDashboard APIKeyScope = "dashboard"
)

// APIKeyScopes lists every scope, in the order the docs give them.
var APIKeyScopes = []APIKeyScope{ScopeFull, ScopeReadOnly, ScopeSend, ScopeDashboard}

// ParseAPIKeyScope returns the scope named s, or an *InvalidError.
func ParseAPIKeyScope(s string) (APIKeyScope, error) {
	for _, sc := range APIKeyScopes {
		if string(sc) == s {
			return sc, nil
		}
	}
	return "", Invalidf("scope", "must be one of %v, not %q", APIKeyScopes, s)
}

// Permission is what a route of the API or the dashboard needs from the
// key that calls it.
type Permission int

// The permissions routes need.
const (
	// PermAuthenticated needs any key that works: the answer reveals
	// nothing (an unknown route's 404).
	PermAuthenticated Permission = iota + 1
	// PermRead reads the API.
	PermRead
	// PermSendRead reads what sending needs: inboxes and sends.
	PermSendRead
	// PermSend queues or cancels a send.
	PermSend
	// PermWrite changes anything else.
	PermWrite
	// PermManageKeys lists, creates and revokes API keys.
	PermManageKeys
	// PermDashboard signs in to the dashboard and uses it.
	PermDashboard
)

// Allows reports whether a key of scope s has permission p.
func (s APIKeyScope) Allows(p Permission) bool {
	switch s {
	case ScopeFull:
		return true
	case ScopeReadOnly:
		return p == PermAuthenticated || p == PermRead || p == PermSendRead
	case ScopeSend:
		return p == PermAuthenticated || p == PermSendRead || p == PermSend
	case ScopeDashboard:
		return p == PermAuthenticated || p == PermDashboard
	}
	return false
}

// String names the scope.
func (s APIKeyScope) String() string { return string(s) }

// APIKey grants access to the /v1 API. Only a hash of the key is stored;
// the key itself is shown once, when it is created.
type APIKey struct {
	ID   string
	Name string
	// Hash is the SHA-256 of the whole key.
	Hash []byte
	// Prefix is the key's first characters, shown to help people tell keys
	// apart; it is not enough to use the key.
	Prefix string
	// Scope says what the key may do.
	Scope     APIKeyScope
	CreatedAt time.Time
	// RevokedAt is when the key was revoked; zero while it works.
	RevokedAt time.Time
}

// Revoked reports whether the key has been revoked: it no longer works,
// and sessions made with it end.
func (k *APIKey) Revoked() bool { return !k.RevokedAt.IsZero() }

// Allows reports whether the key works and its scope allows p.
func (k *APIKey) Allows(p Permission) bool { return !k.Revoked() && k.Scope.Allows(p) }

// APIKeyPrefix starts every API key, so leaked keys are easy to find.
const APIKeyPrefix = "hf_"

// NewAPIKey makes a new random API key named name, of scope ScopeFull
// (set Scope before storing it for another). It returns the key, to be
// shown once, and the record to store, which holds only its hash.
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
		Scope:     ScopeFull,
		CreatedAt: now.UTC().Truncate(StoreTimePrecision),
	}
}

// HashAPIKey returns the hash under which key is stored. Keys carry 256
// random bits, so a fast hash is enough: there is nothing to brute-force.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// MaxAPIKeyName is the longest name an API key may have.
const MaxAPIKeyName = 200

// CheckAPIKeyName returns name without surrounding space, or an
// *InvalidError for field "name" if it is empty, too long or not text.
func CheckAPIKeyName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "", Invalidf("name", "is required: say who uses the key")
	}
	if err := CheckText("name", name, MaxAPIKeyName); err != nil {
		return "", err
	}
	return name, nil
}

package holdfast

import "time"

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

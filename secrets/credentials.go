package secrets

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
)

// Credentials are the secrets an inbox logs in with: a password for IMAP
// and SMTP, or a refresh token for OAuth providers. They are JSON-encoded
// and sealed before they are stored; see SealCredentials.
//
// String, GoString, Format and LogValue redact both fields, so printing or
// logging Credentials shows only whether each field is set. Encoding them
// with encoding/json does not redact: that is the sealed payload.
type Credentials struct {
	Password     string `json:"password,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

// String returns the credentials with each set field redacted.
func (c Credentials) String() string {
	return fmt.Sprintf("{Password:%s RefreshToken:%s}", redact(c.Password), redact(c.RefreshToken))
}

// GoString returns the credentials in Go syntax with each set field
// redacted.
func (c Credentials) GoString() string {
	return fmt.Sprintf("secrets.Credentials{Password:%q, RefreshToken:%q}", redact(c.Password), redact(c.RefreshToken))
}

// Format implements fmt.Formatter so that no verb prints a secret: %#v
// prints GoString and every other verb prints String.
func (c Credentials) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, c.String(), c.GoString())
}

// LogValue implements slog.LogValuer: a group with each set field
// redacted.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("password", redact(c.Password)),
		slog.String("refresh_token", redact(c.RefreshToken)),
	)
}

// redact returns "" for an empty secret and a placeholder otherwise.
func redact(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// SealCredentials encodes c and seals it under k's active key, bound to
// inboxID: the result opens only with OpenCredentials for the same inbox.
// It returns an error if inboxID is empty.
func SealCredentials(k *Keyring, inboxID string, c Credentials) ([]byte, error) {
	if inboxID == "" {
		return nil, errors.New("seal credentials: empty inbox id")
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("seal credentials for inbox %s: encode: %w", inboxID, err)
	}
	defer clear(payload)
	sealed, err := k.Seal(payload, credentialsAAD(inboxID))
	if err != nil {
		return nil, fmt.Errorf("seal credentials for inbox %s: %w", inboxID, err)
	}
	return sealed, nil
}

// OpenCredentials opens credentials that SealCredentials sealed for
// inboxID. Besides the errors of Keyring.Open (ErrMalformed,
// *UnknownKeyError, ErrAuthentication), it returns ErrMalformed if the
// payload does not decode.
func OpenCredentials(k *Keyring, inboxID string, sealed []byte) (Credentials, error) {
	payload, err := k.Open(sealed, credentialsAAD(inboxID))
	if err != nil {
		return Credentials{}, fmt.Errorf("open credentials for inbox %s: %w", inboxID, err)
	}
	defer clear(payload)
	var c Credentials
	if err := json.Unmarshal(payload, &c); err != nil {
		// The decoder's error may quote payload bytes, so it is dropped.
		return Credentials{}, fmt.Errorf("open credentials for inbox %s: payload is not credentials JSON: %w", inboxID, ErrMalformed)
	}
	return c, nil
}

// credentialsAAD is the additional data that binds credentials to their
// inbox. Reencrypt must use the same.
func credentialsAAD(inboxID string) []byte { return []byte(inboxID) }

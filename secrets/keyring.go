package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// KeySize is the size of a key in bytes (AES-256).
const KeySize = 32

// MaxKeyIDLen is the longest key id, in bytes.
const MaxKeyIDLen = 32

const (
	version1  = 0x01
	nonceSize = 12
	tagSize   = 16
)

// Errors that callers decide on. Compare with errors.Is; none of them
// carries secret bytes.
var (
	// ErrMalformed reports a sealed value that is not in the ciphertext
	// format: too short, an unknown version, or a bad key id.
	ErrMalformed = errors.New("malformed ciphertext")
	// ErrAuthentication reports a ciphertext that failed GCM authentication:
	// it was tampered with, sealed under a different key with the same id,
	// or sealed with different additional data (another inbox).
	ErrAuthentication = errors.New("ciphertext failed authentication")
	// ErrUnknownKey reports a ciphertext sealed under a key the keyring does
	// not hold. The error is an *UnknownKeyError naming the key id.
	ErrUnknownKey = errors.New("unknown key id")
)

// UnknownKeyError reports a ciphertext sealed under a key id that the
// keyring does not hold. It matches ErrUnknownKey with errors.Is.
type UnknownKeyError struct {
	// ID is the key id the ciphertext names.
	ID string
}

// Error implements error.
func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("unknown key id %q", e.ID)
}

// Is reports whether target is ErrUnknownKey.
func (e *UnknownKeyError) Is(target error) bool { return target == ErrUnknownKey }

// Key is one named AES-256 key. Its Format method hides the secret.
type Key struct {
	// ID names the key inside ciphertexts: 1 to MaxKeyIDLen ASCII letters,
	// digits, '-', '_' or '.'.
	ID string
	// Secret is the key material.
	Secret [KeySize]byte
}

// GenerateKey returns a new random key whose id is derived from the key
// (the first 8 hex digits of its SHA-256).
func GenerateKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k.Secret[:]); err != nil {
		return Key{}, fmt.Errorf("generate key: %w", err)
	}
	k.ID = deriveKeyID(k.Secret[:])
	return k, nil
}

// String returns the key id; the secret is not shown.
func (k Key) String() string { return fmt.Sprintf("{ID:%s Secret:%s}", k.ID, redacted) }

// GoString returns the key id in Go syntax; the secret is not shown.
func (k Key) GoString() string {
	return fmt.Sprintf("secrets.Key{ID:%q, Secret:%q}", k.ID, redacted)
}

// Format implements fmt.Formatter so that no verb prints the secret.
func (k Key) Format(f fmt.State, verb rune) { formatRedacted(f, verb, k.String(), k.GoString()) }

// deriveKeyID names a key by the first 8 hex digits of its SHA-256.
func deriveKeyID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return hex.EncodeToString(sum[:4])
}

// validKeyID reports whether id may name a key.
func validKeyID(id string) bool {
	if id == "" || len(id) > MaxKeyIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// errBadKeyID describes an invalid key id without echoing it, since an
// invalid id may be a misplaced key.
var errBadKeyID = fmt.Errorf("key id must be 1 to %d ASCII letters, digits, '-', '_' or '.'", MaxKeyIDLen)

// Keyring holds the keys that seal and open credentials. It is immutable
// and safe for concurrent use. Its Format method shows only key ids.
type Keyring struct {
	ids   []string // active first
	aeads map[string]cipher.AEAD
}

// NewKeyring returns a keyring holding keys; the first key is active. It
// returns an error if keys is empty, an id is invalid or an id repeats.
func NewKeyring(keys ...Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("keyring: no keys")
	}
	k := &Keyring{aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, key := range keys {
		if !validKeyID(key.ID) {
			return nil, fmt.Errorf("keyring: key %d: %w", i+1, errBadKeyID)
		}
		if _, dup := k.aeads[key.ID]; dup {
			return nil, fmt.Errorf("keyring: duplicate key id %q", key.ID)
		}
		block, err := aes.NewCipher(key.Secret[:])
		if err != nil {
			return nil, fmt.Errorf("keyring: key %q: %w", key.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("keyring: key %q: %w", key.ID, err)
		}
		k.ids = append(k.ids, key.ID)
		k.aeads[key.ID] = aead
	}
	return k, nil
}

// ActiveID returns the id of the key that Seal uses.
func (k *Keyring) ActiveID() string {
	if k == nil || len(k.ids) == 0 {
		return ""
	}
	return k.ids[0]
}

// IDs returns the ids of all keys, the active key first.
func (k *Keyring) IDs() []string {
	if k == nil {
		return nil
	}
	return append([]string(nil), k.ids...)
}

// String lists the key ids; key material is never shown.
func (k *Keyring) String() string {
	return fmt.Sprintf("Keyring{active:%s ids:%s}", k.ActiveID(), strings.Join(k.IDs(), ","))
}

// GoString lists the key ids in Go syntax; key material is never shown.
func (k *Keyring) GoString() string {
	return fmt.Sprintf("&secrets.Keyring{active:%q, ids:%#v}", k.ActiveID(), k.IDs())
}

// Format implements fmt.Formatter so that no verb prints key material.
func (k *Keyring) Format(f fmt.State, verb rune) {
	formatRedacted(f, verb, k.String(), k.GoString())
}

// Seal encrypts plaintext under the active key, binding it to aad, and
// returns it in the ciphertext format described in the package doc. Open
// must be given the same aad.
func (k *Keyring) Seal(plaintext, aad []byte) ([]byte, error) {
	id := k.ActiveID()
	if id == "" {
		return nil, errors.New("seal: keyring has no keys")
	}
	aead := k.aeads[id]

	headerLen := 2 + len(id)
	out := make([]byte, headerLen+nonceSize, headerLen+nonceSize+len(plaintext)+aead.Overhead())
	out[0] = version1
	out[1] = byte(len(id))
	copy(out[2:], id)
	nonce := out[headerLen:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, additionalData(out[:headerLen], aad)), nil
}

// Open decrypts a value made by Seal with whichever key it names. It
// returns an error matching ErrMalformed if sealed is not in the ciphertext
// format, an *UnknownKeyError if the keyring lacks the key, and
// ErrAuthentication if the value was altered or aad differs from the one it
// was sealed with.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	id, headerLen, err := parseHeader(sealed)
	if err != nil {
		return nil, err
	}
	var aead cipher.AEAD
	if k != nil {
		aead = k.aeads[id]
	}
	if aead == nil {
		return nil, &UnknownKeyError{ID: id}
	}
	body := sealed[headerLen:]
	if len(body) < nonceSize+tagSize {
		return nil, fmt.Errorf("ciphertext is %d bytes, shorter than header, nonce and tag: %w", len(sealed), ErrMalformed)
	}
	dst := make([]byte, 0, len(body)-nonceSize-tagSize)
	plaintext, err := aead.Open(dst, body[:nonceSize], body[nonceSize:], additionalData(sealed[:headerLen], aad))
	if err != nil {
		return nil, ErrAuthentication
	}
	return plaintext, nil
}

// KeyID returns the id of the key that sealed was sealed under. It returns
// an error matching ErrMalformed if sealed has no valid header.
func KeyID(sealed []byte) (string, error) {
	id, _, err := parseHeader(sealed)
	return id, err
}

// parseHeader returns the key id and the header length of sealed.
func parseHeader(sealed []byte) (id string, headerLen int, err error) {
	if len(sealed) < 2 {
		return "", 0, fmt.Errorf("ciphertext is %d bytes, shorter than its header: %w", len(sealed), ErrMalformed)
	}
	if sealed[0] != version1 {
		return "", 0, fmt.Errorf("unsupported ciphertext version %d: %w", sealed[0], ErrMalformed)
	}
	n := int(sealed[1])
	if n == 0 || n > MaxKeyIDLen {
		return "", 0, fmt.Errorf("key id length %d out of range 1 to %d: %w", n, MaxKeyIDLen, ErrMalformed)
	}
	if len(sealed) < 2+n {
		return "", 0, fmt.Errorf("ciphertext is %d bytes, shorter than its header: %w", len(sealed), ErrMalformed)
	}
	id = string(sealed[2 : 2+n])
	if !validKeyID(id) {
		return "", 0, fmt.Errorf("key id has invalid characters: %w", ErrMalformed)
	}
	return id, 2 + n, nil
}

// additionalData returns the GCM additional data: the header, then the
// caller's additional data. The header's length prefix makes the
// concatenation unambiguous.
func additionalData(header, aad []byte) []byte {
	ad := make([]byte, 0, len(header)+len(aad))
	ad = append(ad, header...)
	return append(ad, aad...)
}

// redacted replaces a secret in printed and logged values.
const redacted = "[redacted]"

// formatRedacted writes goString for %#v and str for every other verb.
func formatRedacted(f fmt.State, verb rune, str, goString string) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, goString)
		return
	}
	_, _ = io.WriteString(f, str)
}

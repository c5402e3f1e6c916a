package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLinkLifetime is how long a status link stays valid.
const DefaultLinkLifetime = 14 * 24 * time.Hour

// KeyFileName is the status-link key's file in the data directory, where
// holdfast kept the signing keys before they were stored in the store
// (which imports them from it once).
const KeyFileName = "status-link.key"

// ErrInvalidToken is returned for a status token that is malformed,
// tampered with or expired; callers must not say which.
var ErrInvalidToken = errors.New("notify: invalid or expired status link")

// ErrNotYet is returned by FollowUp while the inbox is on its way back but
// not connected yet (paused under an incident that undid its notice, say):
// the caller asks again later.
var ErrNotYet = errors.New("notify: inbox not connected yet")

// Links signs and verifies the owners' status links:
// <PublicURL>/status/{token}, where the token carries the owner's email
// and an expiry and is authenticated with HMAC-SHA256.
//
// Its keys may change while it is in use (SetKeys): each node re-reads
// the stored signing keys, so that a link signed on one verifies on all.
type Links struct {
	// keys are the current key and then the ones before it: links they
	// signed still verify, so a rotation does not break the links already
	// mailed. Read without a lock; mu serialises the writers.
	keys atomic.Pointer[[][]byte]
	mu   sync.Mutex
	// PublicURL is the service's public base URL, without a trailing
	// slash.
	PublicURL string
	// Lifetime is how long a new link stays valid; zero means
	// DefaultLinkLifetime.
	Lifetime time.Duration
}

// NewLinks returns Links signing with key (at least 32 bytes).
func NewLinks(key []byte, publicURL string, lifetime time.Duration) (*Links, error) {
	if len(key) < 32 {
		return nil, errors.New("notify: status-link key shorter than 32 bytes")
	}
	if lifetime <= 0 {
		lifetime = DefaultLinkLifetime
	}
	l := &Links{PublicURL: strings.TrimRight(publicURL, "/"), Lifetime: lifetime}
	l.keys.Store(&[][]byte{key})
	return l, nil
}

// AcceptPrevious makes l also accept links and form tokens signed with
// keys, the signing keys before the current one. It returns l.
func (l *Links) AcceptPrevious(keys ...[]byte) *Links {
	l.mu.Lock()
	defer l.mu.Unlock()
	all := append(slices.Clone(*l.keys.Load()), keys...)
	l.keys.Store(&all)
	return l
}

// SetKeys replaces l's keys: keys[0] (at least 32 bytes) signs from now
// on, and the links and form tokens signed with it or the others verify;
// those signed with a key left out no longer do. It is safe to call while
// l is in use.
func (l *Links) SetKeys(keys ...[]byte) error {
	if len(keys) == 0 || len(keys[0]) < 32 {
		return errors.New("notify: status-link key shorter than 32 bytes")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	all := slices.Clone(keys)
	l.keys.Store(&all)
	return nil
}

// allKeys returns the current key, then the previous ones.
func (l *Links) allKeys() [][]byte { return *l.keys.Load() }

// DeriveKey derives the status-link key from the secret key setting
// (HOLDFAST_SECRET_KEY), so that every node sharing it signs alike.
func DeriveKey(secretKey string) []byte {
	m := hmac.New(sha256.New, []byte(secretKey))
	m.Write([]byte("holdfast status links v1"))
	return m.Sum(nil)
}

// LoadOrCreateKey reads the current status-link key from
// dir/status-link.key, creating the file (mode 0600) with 32 random bytes
// if it does not exist.
func LoadOrCreateKey(dir string) ([]byte, error) {
	keys, err := LoadOrCreateKeys(dir)
	if err != nil {
		return nil, err
	}
	return keys[0], nil
}

// LoadOrCreateKeys reads the status-link keys from dir/status-link.key,
// one hex key a line, the current one first and then the previous one,
// creating the file (mode 0600) with one new key if it does not exist.
func LoadOrCreateKeys(dir string) ([][]byte, error) {
	path := filepath.Join(dir, KeyFileName)
	if b, err := os.ReadFile(path); err == nil {
		keys, err := ParseKeys(strings.Join(strings.Fields(string(b)), ","))
		if err != nil {
			return nil, fmt.Errorf("status-link key %s: %w", path, err)
		}
		return keys, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("status-link key: %w", err)
	}
	k := newKey()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKeys(dir) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("status-link key: %w", err)
	}
	_, werr := f.WriteString(hex.EncodeToString(k) + "\n")
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("status-link key: %w", werr)
	}
	return [][]byte{k}, nil
}

// ParseKeys reads a comma-separated list of hex-encoded signing keys of
// at least 32 bytes each (HOLDFAST_SIGNING_KEY), current first. Errors
// name the entry by position, never its content.
func ParseKeys(value string) ([][]byte, error) {
	var keys [][]byte
	for i, e := range strings.Split(value, ",") {
		k, err := hex.DecodeString(strings.TrimSpace(e))
		if err != nil || len(k) < 32 {
			return nil, fmt.Errorf("signing key %d: not at least 32 hex-encoded bytes", i+1)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func newKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("notify: crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	return k
}

// Sign returns the token for email, valid until expires.
func (l *Links) Sign(email string, expires time.Time) string {
	payload := binary.BigEndian.AppendUint64(nil, uint64(expires.Unix()))
	payload = append(payload, strings.ToLower(email)...)
	return base64.RawURLEncoding.EncodeToString(payload) + "." + base64.RawURLEncoding.EncodeToString(l.mac("status", payload))
}

// StatusURL returns the status page link for email made at now, and its
// expiry.
func (l *Links) StatusURL(email string, now time.Time) (string, time.Time) {
	exp := now.Add(l.Lifetime).Truncate(time.Second)
	return l.PublicURL + "/status/" + l.Sign(email, exp), exp
}

// Verify returns the email address token was signed for, or
// ErrInvalidToken if it is malformed, tampered with or expired at now.
func (l *Links) Verify(token string, now time.Time) (string, error) {
	p, m, ok := strings.Cut(token, ".")
	if !ok {
		return "", ErrInvalidToken
	}
	payload, err1 := base64.RawURLEncoding.DecodeString(p)
	mac, err2 := base64.RawURLEncoding.DecodeString(m)
	if err1 != nil || err2 != nil || len(payload) < 9 || !l.check(mac, "status", payload) {
		return "", ErrInvalidToken
	}
	if exp := time.Unix(int64(binary.BigEndian.Uint64(payload[:8])), 0); !now.Before(exp) {
		return "", ErrInvalidToken
	}
	return string(payload[8:]), nil
}

// FormToken returns the per-form token of a status page form: bound to
// the page's token, the inbox and the action, so that a form cannot be
// forged without the page.
func (l *Links) FormToken(token, inboxID, action string) string {
	return base64.RawURLEncoding.EncodeToString(l.mac("form", []byte(token+"\x00"+inboxID+"\x00"+action)))
}

// CheckFormToken reports whether got is FormToken(token, inboxID, action).
func (l *Links) CheckFormToken(got, token, inboxID, action string) bool {
	mac, err := base64.RawURLEncoding.DecodeString(got)
	return err == nil && l.check(mac, "form", []byte(token+"\x00"+inboxID+"\x00"+action))
}

// check reports whether mac is the MAC of data for purpose under the
// current key or a previous one.
func (l *Links) check(mac []byte, purpose string, data []byte) bool {
	for _, k := range l.allKeys() {
		if hmac.Equal(mac, macWith(k, purpose, data)) {
			return true
		}
	}
	return false
}

func (l *Links) mac(purpose string, data []byte) []byte {
	return macWith(l.allKeys()[0], purpose, data)
}

func macWith(key []byte, purpose string, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	m.Write([]byte{0})
	m.Write(data)
	return m.Sum(nil)
}

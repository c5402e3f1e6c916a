package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// The headers of every delivery.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>".
	SignatureHeader = "Holdfast-Signature"
	// EventIDHeader carries the event's ID, also in the body's "id".
	EventIDHeader = "Holdfast-Event-Id"
	// EventTypeHeader carries the event's type.
	EventTypeHeader = "Holdfast-Event-Type"
)

// SecretPrefix starts every generated signing secret.
const SecretPrefix = "whsec_"

// NewSecret returns a new random signing secret: SecretPrefix and 32
// random bytes in base64url.
func NewSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("webhook: crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Sign returns the SignatureHeader value of body sent at t: the HMAC-SHA256,
// keyed with the secret's bytes (the whole string, prefix included), of
// the Unix time in seconds, a dot, and the body.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// DefaultTolerance is the age beyond which Verify refuses a signature, to
// bound replays of a captured request.
const DefaultTolerance = 5 * time.Minute

// The errors of Verify.
var (
	ErrBadSignatureHeader = errors.New("malformed " + SignatureHeader + " header")
	ErrSignatureMismatch  = errors.New("no signature matches the body")
	ErrSignatureTooOld    = errors.New("signature timestamp is outside the tolerance")
)

// Verify checks the SignatureHeader value header of body against secret,
// as a receiver does: one of its v1 signatures must match, and its
// timestamp must be within tolerance of now (zero tolerance means
// DefaultTolerance). It returns nil or one of ErrBadSignatureHeader,
// ErrSignatureMismatch and ErrSignatureTooOld.
func Verify(secret []byte, header string, body []byte, tolerance time.Duration, now time.Time) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	var (
		ts   string
		sigs [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrBadSignatureHeader
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil {
				return ErrBadSignatureHeader
			}
			sigs = append(sigs, sig)
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrBadSignatureHeader
	}
	want := mac(secret, ts, body)
	ok := false
	for _, sig := range sigs {
		ok = hmac.Equal(sig, want) || ok
	}
	if !ok {
		return ErrSignatureMismatch
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return ErrSignatureTooOld
	}
	return nil
}

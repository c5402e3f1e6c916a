package webhook_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/webhook"
)

func TestSignVerify(t *testing.T) {
	t.Parallel()
	secret := []byte(webhook.NewSecret())
	body := []byte(`{"id":"evt_1","type":"send.sent"}`)
	at := time.Unix(1_750_000_000, 0)
	header := webhook.Sign(secret, at, body)
	if !strings.HasPrefix(header, "t=1750000000,v1=") || len(header) != len("t=1750000000,v1=")+64 {
		t.Fatalf("Sign = %q; want t=1750000000,v1=<64 hex digits>", header)
	}
	other := webhook.Sign([]byte("whsec_other"), at, body)
	tests := []struct {
		name    string
		secret  []byte
		header  string
		body    []byte
		now     time.Time
		wantErr error
	}{
		{"Valid", secret, header, body, at.Add(time.Minute), nil},
		{"ValidSlightlyAhead", secret, header, body, at.Add(-time.Minute), nil},
		{"RotatedSecondSignature", secret, other + ",v1=" + strings.SplitN(header, "v1=", 2)[1], body, at, nil},
		{"BodyChanged", secret, header, []byte(`{"id":"evt_2"}`), at, webhook.ErrSignatureMismatch},
		{"WrongSecret", []byte("whsec_wrong"), header, body, at, webhook.ErrSignatureMismatch},
		{"TimestampChanged", secret, strings.Replace(header, "t=1750000000", "t=1750000001", 1), body, at, webhook.ErrSignatureMismatch},
		{"TooOld", secret, header, body, at.Add(webhook.DefaultTolerance + time.Second), webhook.ErrSignatureTooOld},
		{"Empty", secret, "", body, at, webhook.ErrBadSignatureHeader},
		{"NoSignature", secret, "t=1750000000", body, at, webhook.ErrBadSignatureHeader},
		{"NotHex", secret, "t=1750000000,v1=zz", body, at, webhook.ErrBadSignatureHeader},
		{"NoTimestamp", secret, "v1=" + strings.SplitN(header, "v1=", 2)[1], body, at, webhook.ErrBadSignatureHeader},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tt.secret, tt.header, tt.body, 0, tt.now)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Verify(%q) = %v; want %v", tt.header, err, tt.wantErr)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := webhook.NewSecret(), webhook.NewSecret()
	if a == b || !strings.HasPrefix(a, webhook.SecretPrefix) || len(a) != len(webhook.SecretPrefix)+43 {
		t.Errorf("NewSecret = %q, %q; want two different whsec_ and 43 characters", a, b)
	}
}

// A receiver checks each delivery with Verify before trusting it, then
// de-duplicates by the Holdfast-Event-Id header.
func ExampleVerify() {
	secret := []byte("whsec_example")
	body := []byte(`{"id":"evt_01","type":"inbox.recovered","created_at":"2026-01-02T03:04:05Z","data":{}}`)
	sent := time.Unix(1_767_322_800, 0)
	header := webhook.Sign(secret, sent, body) // what holdfast puts in Holdfast-Signature

	err := webhook.Verify(secret, header, body, 5*time.Minute, sent.Add(2*time.Second))
	fmt.Println("genuine:", err)
	err = webhook.Verify(secret, header, []byte(`{"forged":true}`), 5*time.Minute, sent)
	fmt.Println("forged:", err)
	// Output:
	// genuine: <nil>
	// forged: no signature matches the body
}

package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCredentialsRoundTrip(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("k1", 1))
	tests := []struct {
		name  string
		creds Credentials
	}{
		{name: "password", creds: Credentials{Password: "hunter2"}},
		{name: "refresh token", creds: Credentials{RefreshToken: "1//0gLx-refresh"}},
		{name: "both", creds: Credentials{Password: "p", RefreshToken: "r"}},
		{name: "unicode", creds: Credentials{Password: "pässwörd \"quoted\" \x00"}},
		{name: "empty", creds: Credentials{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sealed, err := SealCredentials(k, "inb_1", tt.creds)
			if err != nil {
				t.Fatalf("SealCredentials: %v", err)
			}
			got, err := OpenCredentials(k, "inb_1", sealed)
			if err != nil {
				t.Fatalf("OpenCredentials: %v", err)
			}
			if diff := cmp.Diff(tt.creds, got); diff != "" {
				t.Errorf("OpenCredentials(SealCredentials(c)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCredentialsBoundToInbox(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("k1", 1))
	sealed, err := SealCredentials(k, "inb_1", Credentials{Password: "hunter2"})
	if err != nil {
		t.Fatalf("SealCredentials: %v", err)
	}
	_, err = OpenCredentials(k, "inb_2", sealed)
	if !errors.Is(err, ErrAuthentication) {
		t.Fatalf("OpenCredentials for another inbox error = %v, want ErrAuthentication", err)
	}
	if got, want := err.Error(), "open credentials for inbox inb_2: ciphertext failed authentication"; got != want {
		t.Errorf("OpenCredentials error = %q, want %q", got, want)
	}

	if _, err := SealCredentials(k, "", Credentials{Password: "hunter2"}); err == nil {
		t.Error("SealCredentials with empty inbox id error = nil, want error")
	}
}

func TestOpenCredentialsBadPayload(t *testing.T) {
	t.Parallel()

	k := newTestKeyring(t, testKey("k1", 1))
	sealed, err := k.Seal([]byte("hunter2 is not JSON"), credentialsAAD("inb_1"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	_, err = OpenCredentials(k, "inb_1", sealed)
	if !errors.Is(err, ErrMalformed) {
		t.Fatalf("OpenCredentials error = %v, want ErrMalformed", err)
	}
	if got, want := err.Error(), "open credentials for inbox inb_1: payload is not credentials JSON: malformed ciphertext"; got != want {
		t.Errorf("OpenCredentials error = %q, want %q (the payload must not be quoted)", got, want)
	}
}

func TestCredentialsRedacted(t *testing.T) {
	t.Parallel()

	const password, token = "hunter2-secret", "1//refresh-secret"
	creds := Credentials{Password: password, RefreshToken: token}
	type wrapper struct {
		Creds Credentials
		Ptr   *Credentials
	}

	tests := []struct {
		name   string
		format string
		value  any
		want   string
	}{
		{name: "v", format: "%v", value: creds, want: "{Password:[redacted] RefreshToken:[redacted]}"},
		{name: "+v", format: "%+v", value: creds, want: "{Password:[redacted] RefreshToken:[redacted]}"},
		{name: "#v", format: "%#v", value: creds, want: `secrets.Credentials{Password:"[redacted]", RefreshToken:"[redacted]"}`},
		{name: "s", format: "%s", value: creds, want: "{Password:[redacted] RefreshToken:[redacted]}"},
		{name: "q", format: "%q", value: creds, want: "{Password:[redacted] RefreshToken:[redacted]}"},
		{name: "x", format: "%x", value: creds, want: "{Password:[redacted] RefreshToken:[redacted]}"},
		{name: "d", format: "%d", value: creds, want: "{Password:[redacted] RefreshToken:[redacted]}"},
		{name: "pointer", format: "%v", value: &creds, want: "{Password:[redacted] RefreshToken:[redacted]}"},
		{name: "empty field", format: "%v", value: Credentials{Password: password}, want: "{Password:[redacted] RefreshToken:}"},
		{name: "nested", format: "%+v", value: wrapper{Creds: creds, Ptr: &creds},
			want: "{Creds:{Password:[redacted] RefreshToken:[redacted]} Ptr:{Password:[redacted] RefreshToken:[redacted]}}"},
		{name: "error", format: "%v", value: fmt.Errorf("login with %v", creds),
			want: "login with {Password:[redacted] RefreshToken:[redacted]}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fmt.Sprintf(tt.format, tt.value)
			if got != tt.want {
				t.Errorf("Sprintf(%q, creds) = %q, want %q", tt.format, got, tt.want)
			}
			if strings.Contains(got, password) || strings.Contains(got, token) {
				t.Errorf("Sprintf(%q, creds) = %q, leaks a secret", tt.format, got)
			}
		})
	}
	for _, got := range []string{creds.String(), creds.GoString()} {
		if strings.Contains(got, password) || strings.Contains(got, token) {
			t.Errorf("redacted form %q leaks a secret", got)
		}
	}
}

func TestCredentialsRedactedInSlog(t *testing.T) {
	t.Parallel()

	creds := Credentials{Password: "hunter2-secret", RefreshToken: "1//refresh-secret"}
	tests := []struct {
		name    string
		handler func(*bytes.Buffer) slog.Handler
		want    string
	}{
		{
			name:    "text",
			handler: func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
			want:    "level=INFO msg=connect creds.password=[redacted] creds.refresh_token=[redacted] ptr.password=[redacted] ptr.refresh_token=[redacted] any.password=[redacted] any.refresh_token=[redacted]\n",
		},
		{
			name:    "json",
			handler: func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			want:    `{"level":"INFO","msg":"connect","creds":{"password":"[redacted]","refresh_token":"[redacted]"},"ptr":{"password":"[redacted]","refresh_token":"[redacted]"},"any":{"password":"[redacted]","refresh_token":"[redacted]"}}` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			log := slog.New(withoutTime{tt.handler(&buf)})
			log.Info("connect", "creds", creds, slog.Any("ptr", &creds), slog.Any("any", any(creds)))
			if diff := cmp.Diff(tt.want, buf.String()); diff != "" {
				t.Errorf("log output mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// withoutTime drops record times so log output is stable.
type withoutTime struct{ slog.Handler }

func (h withoutTime) Handle(ctx context.Context, r slog.Record) error {
	r.Time = time.Time{}
	return h.Handler.Handle(ctx, r)
}

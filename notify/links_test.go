package notify_test

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/notify"
)

// testLogger sends logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct{ t *testing.T }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestLinks(t *testing.T) {
	t.Parallel()
	key := []byte(strings.Repeat("k", 32))
	l, err := notify.NewLinks(key, "https://h.example.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := notify.NewLinks([]byte(strings.Repeat("o", 32)), "https://h.example.test", 0)
	u, exp := l.StatusURL("Owner@Example.test", t0)
	if !exp.Equal(t0.Add(notify.DefaultLinkLifetime)) {
		t.Errorf("StatusURL expires %v; want %v", exp, t0.Add(notify.DefaultLinkLifetime))
	}
	token, ok := strings.CutPrefix(u, "https://h.example.test/status/")
	if !ok {
		t.Fatalf("StatusURL = %q", u)
	}
	flip := []byte(token)
	flip[3] ^= 1
	tests := []struct {
		name  string
		links *notify.Links
		token string
		at    time.Time
		want  string
		err   error
	}{
		{"Valid", l, token, t0.Add(time.Hour), "owner@example.test", nil},
		{"JustBeforeExpiry", l, token, exp.Add(-time.Second), "owner@example.test", nil},
		{"Expired", l, token, exp, "", notify.ErrInvalidToken},
		{"Tampered", l, string(flip), t0, "", notify.ErrInvalidToken},
		{"OtherKey", other, token, t0, "", notify.ErrInvalidToken},
		{"Truncated", l, token[:len(token)-2], t0, "", notify.ErrInvalidToken},
		{"NoDot", l, "abc", t0, "", notify.ErrInvalidToken},
		{"Empty", l, "", t0, "", notify.ErrInvalidToken},
	}
	for _, tt := range tests {
		got, err := tt.links.Verify(tt.token, tt.at)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("%s: Verify = %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.err)
		}
	}
	ft := l.FormToken(token, "inb_a", "imap")
	if !l.CheckFormToken(ft, token, "inb_a", "imap") {
		t.Error("CheckFormToken of a fresh token = false")
	}
	for _, bad := range [][3]string{{token, "inb_b", "imap"}, {token, "inb_a", "reconnect"}, {string(flip), "inb_a", "imap"}} {
		if l.CheckFormToken(ft, bad[0], bad[1], bad[2]) {
			t.Errorf("CheckFormToken accepted the form token for %v", bad[1:])
		}
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, err := notify.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := notify.LoadOrCreateKey(dir)
	if err != nil || string(k1) != string(k2) || len(k1) != 32 {
		t.Errorf("LoadOrCreateKey twice = %x, %v; want the same 32 bytes %x", k2, err, k1)
	}
	fi, err := os.Stat(dir + "/" + notify.KeyFileName)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	if a, b := notify.DeriveKey("s1"), notify.DeriveKey("s2"); string(a) == string(b) || len(a) != 32 {
		t.Error("DeriveKey gives the same key for two secrets")
	}
}

func TestParseSMTPURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{"smtp://u:secretpw@relay.example.test:2525", "smtp://u@relay.example.test:2525", ""},
		{"smtp://relay.example.test", "smtp://relay.example.test:587", ""},
		{"smtps://u:secretpw@relay.example.test", "smtps://u@relay.example.test:465", ""},
		{"http://u:secretpw@relay.example.test", "", "want an smtp"},
		{"smtp://u:secretpw@:25", "", "no host"},
		{"smtp://u:secretpw@h:99999", "", "bad port"},
		{"smtp://u:secretpw@h:25/x", "", "no path"},
		{"smtp://u:secret pw@h\x7f", "", "not a valid URL"},
	}
	for _, tt := range tests {
		r, err := notify.ParseSMTPURL(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseSMTPURL(%q) = %v; want an error with %q and no password", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || r.String() != tt.want {
			t.Errorf("ParseSMTPURL(%q) = %s, %v; want %s", tt.in, r, err, tt.want)
		}
	}
}

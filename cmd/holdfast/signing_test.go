package main

import (
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast/notify"
)

// statusCode fetches a status page and returns its HTTP status.
func statusCode(t *testing.T, base, token string) int {
	t.Helper()
	resp, err := http.Get(base + "/status/" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// signLink signs a status link for the owner with key.
func signLink(t *testing.T, key []byte) string {
	t.Helper()
	l, err := notify.NewLinks(key, "http://holdfast.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	return l.Sign("owner@example.test", time.Now().Add(time.Hour))
}

// TestSigningKeySurvivesSecretRotation signs status links with
// HOLDFAST_SIGNING_KEY, not with a key derived from HOLDFAST_SECRET_KEY:
// a link mailed before the credential key changes still opens after.
func TestSigningKeySurvivesSecretRotation(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	signing := []byte(strings.Repeat("s", 32))
	e.env["HOLDFAST_SIGNING_KEY"] = hex.EncodeToString(signing)
	e.env["HOLDFAST_SECRET_KEY"] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	tok := signLink(t, signing)
	s := e.serve()
	if code := statusCode(t, s.base, tok); code != http.StatusOK {
		t.Fatalf("GET a status link signed with HOLDFAST_SIGNING_KEY = %d; want 200", code)
	}
	// A status link made under the old derivation still opens.
	if code := statusCode(t, s.base, signLink(t, notify.DeriveKey(e.env["HOLDFAST_SECRET_KEY"]))); code != http.StatusOK {
		t.Errorf("GET a status link derived from HOLDFAST_SECRET_KEY = %d; want 200 while it is set", code)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	e.env["HOLDFAST_SECRET_KEY"] = "HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4="
	s = e.serve()
	defer s.stop()
	if code := statusCode(t, s.base, tok); code != http.StatusOK {
		t.Errorf("GET the same link after HOLDFAST_SECRET_KEY changed = %d; want 200", code)
	}
	if code := statusCode(t, s.base, signLink(t, []byte(strings.Repeat("x", 32)))); code == http.StatusOK {
		t.Errorf("GET a link signed with another key = %d; want it refused", code)
	}
}

// TestSigningKeyRotate rotates the signing-key file: links signed with the
// previous key still open, links of the key before that do not.
func TestSigningKeyRotate(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, sqliteEngine)
	dir := e.env["HOLDFAST_DATA_DIR"]
	rotate := func() []byte {
		t.Helper()
		if out, errOut, err := e.run("signing-key", "rotate"); err != nil {
			t.Fatalf("signing-key rotate = %q, %v\n%s", out, err, errOut)
		}
		k, err := notify.LoadOrCreateKey(dir)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	k0, err := notify.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k1 := rotate()
	s := e.serve()
	for name, k := range map[string][]byte{"previous": k0, "current": k1} {
		if code := statusCode(t, s.base, signLink(t, k)); code != http.StatusOK {
			t.Errorf("GET a link signed with the %s key = %d; want 200", name, code)
		}
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	k2 := rotate()
	s = e.serve()
	defer s.stop()
	for name, tt := range map[string]struct {
		key  []byte
		want bool
	}{"dropped": {k0, false}, "previous": {k1, true}, "current": {k2, true}} {
		if code := statusCode(t, s.base, signLink(t, tt.key)); (code == http.StatusOK) != tt.want {
			t.Errorf("GET a link signed with the %s key = %d; want accepted %v", name, code, tt.want)
		}
	}
}

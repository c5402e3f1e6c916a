package secrets

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLoadOrCreateFile(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "secret.key")
	k, err := LoadOrCreateFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateFile (create): %v", err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if runtime.GOOS != "windows" {
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("key file mode = %#o, want 0600", got)
		}
	}
	if len(k.IDs()) != 1 || len(k.ActiveID()) != 8 {
		t.Errorf("new key file IDs() = %q, want one 8-digit id", k.IDs())
	}
	sealed, err := SealCredentials(k, "inb_1", Credentials{Password: "hunter2"})
	if err != nil {
		t.Fatalf("SealCredentials: %v", err)
	}

	again, err := LoadOrCreateFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateFile (reuse): %v", err)
	}
	if diff := cmp.Diff(k.IDs(), again.IDs()); diff != "" {
		t.Errorf("reloaded IDs() mismatch (-want +got):\n%s", diff)
	}
	if _, err := OpenCredentials(again, "inb_1", sealed); err != nil {
		t.Errorf("OpenCredentials with the reloaded key: %v", err)
	}

	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatalf("ReadDir: %v", err)
	}
	if len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want only the key file (no temporary files)", len(entries))
	}
}

func TestLoadOrCreateFileConcurrent(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "secret.key")
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := LoadOrCreateFile(path)
			errs[i] = err
			ids[i] = k.ActiveID()
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreateFile %d: %v", i, errs[i])
		}
		if ids[i] != ids[0] {
			t.Errorf("LoadOrCreateFile %d active id = %q, want %q like the first: processes starting together must agree", i, ids[i], ids[0])
		}
	}
}

func TestLoadOrCreateFileRefusesOpenMode(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix permission bits")
	}

	for _, mode := range []os.FileMode{0o640, 0o604, 0o644, 0o660, 0o666} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "secret.key")
			if _, err := LoadOrCreateFile(path); err != nil {
				t.Fatalf("LoadOrCreateFile: %v", err)
			}
			if err := os.Chmod(path, mode); err != nil {
				t.Fatalf("Chmod: %v", err)
			}
			_, err := LoadOrCreateFile(path)
			if err == nil {
				t.Fatalf("LoadOrCreateFile with mode %#o error = nil, want refusal", mode)
			}
			for _, want := range []string{path, "must not be accessible by group or others", "chmod 600"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("LoadOrCreateFile error = %q, want it to contain %q", err, want)
				}
			}
			if _, err := AddKeyToFile(path); err == nil {
				t.Errorf("AddKeyToFile with mode %#o error = nil, want refusal", mode)
			}
		})
	}
}

func TestLoadOrCreateFileErrors(t *testing.T) {
	t.Parallel()

	key := testKey("x", 0x5A)
	good := base64.StdEncoding.EncodeToString(key.Secret[:])
	short := base64.StdEncoding.EncodeToString(make([]byte, 16))
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{name: "empty", content: "", want: "no keys"},
		{name: "only comments", content: "# comment\n\n", want: "no keys"},
		{name: "one field", content: good + "\n", want: `line 1: want "id base64key", got 1 fields`},
		{name: "three fields", content: "a " + good + " extra\n", want: `line 1: want "id base64key", got 3 fields`},
		{name: "bad id", content: "# c\na:b " + good + "\n", want: "line 2: key id must be"},
		{name: "duplicate id", content: "a " + good + "\na " + good + "\n", want: `line 2: duplicate key id "a"`},
		{name: "short key", content: "a " + good + "\nb " + short + "\n", want: `line 2 (key id "b"): key is 16 bytes, want 32`},
		{name: "bad base64", content: "a !" + good[1:] + "\n", want: `line 1 (key id "a"): key is not valid base64`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "secret.key")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			_, err := LoadOrCreateFile(path)
			if err == nil {
				t.Fatalf("LoadOrCreateFile error = nil, want %q", tt.want)
			}
			if got := err.Error(); !strings.HasPrefix(got, "key file "+path+": "+tt.want) {
				t.Errorf("LoadOrCreateFile error = %q, want prefix %q", got, "key file "+path+": "+tt.want)
			}
			if strings.Contains(err.Error(), good[:12]) {
				t.Errorf("LoadOrCreateFile error %q contains key material", err)
			}
			// The bad file is left alone, never replaced by a new key.
			got, _ := os.ReadFile(path)
			if string(got) != tt.content {
				t.Errorf("key file content changed to %q", got)
			}
		})
	}

	t.Run("directory", func(t *testing.T) {
		t.Parallel()
		path := t.TempDir()
		if _, err := LoadOrCreateFile(path); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("LoadOrCreateFile(directory) error = %v, want not a regular file", err)
		}
	})
	t.Run("missing directory", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "missing", "secret.key")
		if _, err := LoadOrCreateFile(path); err == nil {
			t.Error("LoadOrCreateFile in a missing directory error = nil, want error")
		}
	})
}

func TestKeyFileFormat(t *testing.T) {
	t.Parallel()

	a, b := testKey("a", 0x0A), testKey("b-2", 0x0B)
	path := filepath.Join(t.TempDir(), "secret.key")
	content := "# written by hand\n\n  b-2 " + base64.RawURLEncoding.EncodeToString(b.Secret[:]) + "  \n" +
		"a\t" + base64.StdEncoding.EncodeToString(a.Secret[:]) + "\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatalf("WriteFile: %v", err)
	}
	k, err := LoadOrCreateFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateFile: %v", err)
	}
	if diff := cmp.Diff([]string{"b-2", "a"}, k.IDs()); diff != "" {
		t.Errorf("IDs() mismatch (-want +got):\n%s", diff)
	}
	sealed, err := newTestKeyring(t, a).Seal([]byte("x"), nil)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if _, err := k.Open(sealed, nil); err != nil {
		t.Errorf("Open of a value sealed under key a: %v", err)
	}
}

func TestAddKeyToFile(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "secret.key")
	k1, err := LoadOrCreateFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateFile: %v", err)
	}
	sealed, err := SealCredentials(k1, "inb_1", Credentials{Password: "hunter2"})
	if err != nil {
		t.Fatalf("SealCredentials: %v", err)
	}

	newID, err := AddKeyToFile(path)
	if err != nil {
		t.Fatalf("AddKeyToFile: %v", err)
	}
	k2, err := LoadOrCreateFile(path)
	if err != nil {
		t.Fatalf("LoadOrCreateFile after AddKeyToFile: %v", err)
	}
	if diff := cmp.Diff([]string{newID, k1.ActiveID()}, k2.IDs()); diff != "" {
		t.Errorf("IDs() after AddKeyToFile mismatch (-want +got):\n%s", diff)
	}
	if _, err := OpenCredentials(k2, "inb_1", sealed); err != nil {
		t.Errorf("OpenCredentials of a value sealed under the old key: %v", err)
	}
	if runtime.GOOS != "windows" {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("key file mode after AddKeyToFile = %#o, want 0600", got)
		}
	}

	content, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	var keyLines []string
	for line := range strings.Lines(string(content)) {
		if !strings.HasPrefix(line, "#") {
			keyLines = append(keyLines, strings.Fields(line)[0])
		}
	}
	if diff := cmp.Diff([]string{newID, k1.ActiveID()}, keyLines); diff != "" {
		t.Errorf("key file lines mismatch (-want +got):\n%s", diff)
	}

	if _, err := AddKeyToFile(filepath.Join(t.TempDir(), "missing.key")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("AddKeyToFile(missing) error = %v, want fs.ErrNotExist", err)
	}
}

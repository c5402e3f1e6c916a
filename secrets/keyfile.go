package secrets

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// maxKeyFileSize bounds what LoadOrCreateFile reads; a real key file is a
// few hundred bytes.
const maxKeyFileSize = 1 << 20

const keyFileHeader = `# holdfast secret keys, one "id base64key" per line; the first key is active.
# Keep old keys until "holdfast keys rotate" has finished: credentials
# sealed under a key that is removed can no longer be opened.
`

// LoadOrCreateFile returns the keyring stored in the key file at path,
// creating the file with one new key and mode 0600 if it does not exist.
// The file appears atomically and an existing file is never overwritten,
// so processes starting together agree on one key. It refuses a file that
// group or others may access, a file that is not a regular file, and a
// file that holds no keys or a malformed line.
func LoadOrCreateFile(path string) (*Keyring, error) {
	keys, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key, genErr := GenerateKey()
		if genErr != nil {
			return nil, fmt.Errorf("create key file %s: %w", path, genErr)
		}
		err = writeKeyFile(path, []Key{key}, false)
		clear(key.Secret[:])
		// If another process created the file first, use its key.
		if err == nil || errors.Is(err, fs.ErrExist) {
			keys, err = readKeyFile(path)
		}
	}
	if err != nil {
		return nil, err
	}
	defer clearKeys(keys)
	return newFileKeyring(path, keys)
}

// AddKeyToFile generates a new key, makes it the active key of the key
// file at path and keeps the existing keys after it, so that credentials
// sealed under them still open. It returns the new key's id. The file must
// exist and pass the checks of LoadOrCreateFile; it is replaced atomically
// and comments in it are not kept. Callers must not run AddKeyToFile
// concurrently on the same file.
func AddKeyToFile(path string) (newID string, err error) {
	keys, err := readKeyFile(path)
	if err != nil {
		return "", err
	}
	defer clearKeys(keys)
	if _, err := newFileKeyring(path, keys); err != nil {
		return "", err
	}
	key, err := generateKeyNotIn(keys)
	if err != nil {
		return "", fmt.Errorf("add key to %s: %w", path, err)
	}
	defer clear(key.Secret[:])
	if err := writeKeyFile(path, append([]Key{key}, keys...), true); err != nil {
		return "", err
	}
	return key.ID, nil
}

// generateKeyNotIn returns a new key whose id differs from those of keys.
func generateKeyNotIn(keys []Key) (Key, error) {
	for {
		key, err := GenerateKey()
		if err != nil {
			return Key{}, err
		}
		taken := false
		for _, k := range keys {
			taken = taken || k.ID == key.ID
		}
		if !taken {
			return key, nil
		}
	}
}

// newFileKeyring builds the keyring of a key file, naming the file in
// errors.
func newFileKeyring(path string, keys []Key) (*Keyring, error) {
	k, err := NewKeyring(keys...)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// readKeyFile checks and parses the key file at path. It returns an error
// matching fs.ErrNotExist if there is no file.
func readKeyFile(path string) ([]Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("key file %s has mode %#o; it must not be accessible by group or others (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	defer clear(data)
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("key file %s is larger than %d bytes", path, maxKeyFileSize)
	}
	keys, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return keys, nil
}

// parseKeyFile parses "id base64key" lines, skipping blank lines and '#'
// comments. Its errors name the line but never quote a key.
func parseKeyFile(data []byte) ([]Key, error) {
	var keys []Key
	seen := make(map[string]bool)
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			clearKeys(keys)
			return nil, fmt.Errorf("line %d: want \"id base64key\", got %d fields", n, len(fields))
		}
		id := fields[0]
		if !validKeyID(id) {
			clearKeys(keys)
			return nil, fmt.Errorf("line %d: %w", n, errBadKeyID)
		}
		if seen[id] {
			clearKeys(keys)
			return nil, fmt.Errorf("line %d: duplicate key id %q", n, id)
		}
		seen[id] = true
		secret, err := decodeKey(fields[1])
		if err != nil {
			clearKeys(keys)
			return nil, fmt.Errorf("line %d (key id %q): %w", n, id, err)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if err := sc.Err(); err != nil {
		clearKeys(keys)
		return nil, err
	}
	if len(keys) == 0 {
		return nil, errors.New("no keys")
	}
	return keys, nil
}

// writeKeyFile writes keys to path through a temporary file with mode
// 0600, synced before it takes the file's name. With replace false it
// links the temporary file into place and fails with an error matching
// fs.ErrExist if path exists; with replace true it renames over path.
func writeKeyFile(path string, keys []Key, replace bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	defer func() {
		// After a rename the temporary name is gone and this fails
		// harmlessly; after a link it removes the extra name.
		_ = os.Remove(tmp.Name())
	}()
	defer tmp.Close()

	buf := []byte(keyFileHeader)
	for _, k := range keys {
		buf = append(buf, k.ID...)
		buf = append(buf, ' ')
		buf = base64.StdEncoding.AppendEncode(buf, k.Secret[:])
		buf = append(buf, '\n')
	}
	defer clear(buf)
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if _, err := tmp.Write(buf); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write key file: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes a new name in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync key file directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync key file directory: %w", err)
	}
	return nil
}

// clearKeys zeroes the key material of keys.
func clearKeys(keys []Key) {
	for i := range keys {
		clear(keys[i].Secret[:])
	}
}

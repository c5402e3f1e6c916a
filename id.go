package holdfast

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"time"
)

// idEncoding is Crockford's base32 alphabet in lower case: sortable, no
// padding, no look-alike letters.
var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// NewID returns a new identifier: prefix, "_", then 26 base32 characters of
// a 48-bit millisecond timestamp followed by 80 random bits. IDs made later
// sort after earlier ones (to the millisecond), which gives lists a stable,
// roughly chronological order.
func NewID(prefix string, now time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic("holdfast: crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// ValidID reports whether s looks like an ID made by NewID with prefix.
// It lets handlers reject garbage before asking the store.
func ValidID(prefix, s string) bool {
	rest, ok := strings.CutPrefix(s, prefix+"_")
	if !ok || len(rest) != 26 {
		return false
	}
	_, err := idEncoding.DecodeString(rest)
	return err == nil
}

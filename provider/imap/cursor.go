package imap

import (
	"encoding/json"
	"fmt"
)

// cursorVersion is the current cursor format.
const cursorVersion = 1

// cursor is where a Sync resumes, stored by the service as opaque JSON:
//
//	{"v":1,"mailbox":"INBOX","uidvalidity":1700000000,"uid":4242,"modseq":91234}
//
// UID is the highest UID already returned. A cursor is valid only while the
// mailbox's UIDVALIDITY equals UIDValidity.
//
// ModSeq is the mod-sequence (RFC 7162 CONDSTORE) up to which flag changes
// of the messages at or below UID have been returned. It is zero, and left
// out, where the server has no CONDSTORE or the mailbox no mod-sequences
// (NOMODSEQ), and in cursors written before it existed, which therefore
// still parse: such a cursor picks up the mailbox's HIGHESTMODSEQ on its
// next Sync.
type cursor struct {
	V           int    `json:"v"`
	Mailbox     string `json:"mailbox"`
	UIDValidity uint32 `json:"uidvalidity"`
	UID         uint32 `json:"uid"`
	ModSeq      uint64 `json:"modseq,omitempty"`
}

// parseCursor reads a cursor; the empty string is the start.
func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{V: cursorVersion, Mailbox: inbox}, nil
	}
	var c cursor
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return cursor{}, fmt.Errorf("imap cursor: %w", err)
	}
	if c.V != cursorVersion || c.Mailbox == "" {
		return cursor{}, fmt.Errorf("imap cursor: unknown version %d or no mailbox", c.V)
	}
	return c, nil
}

// String encodes the cursor.
func (c cursor) String() string {
	b, _ := json.Marshal(c) // a struct of strings and integers always encodes
	return string(b)
}

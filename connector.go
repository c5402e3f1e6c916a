package holdfast

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// ErrOutcomeUnknown is wrapped by a Connector's Send error when the
// submission may have been accepted although Send failed: the connection
// broke or timed out after the message was handed over (after SMTP's final
// dot, or after an HTTP send request was written), or the provider answered
// 5xx. The send is not retried blindly: FindSent looks for it first.
var ErrOutcomeUnknown = errors.New("outcome of the submission is unknown")

// Connector talks to one kind of mail provider for one inbox at a time.
// provider/imap (with provider/smtp), provider/graph and provider/gmail
// implement it. Every error a connector returns for a provider outcome is a
// *ProviderError carrying the classify verdict; the service reports every
// outcome, success or failure, to the health engine.
type Connector interface {
	// Verify checks that the session's credentials work: it logs in, or
	// refreshes an access token.
	Verify(ctx context.Context, s *Session) error
	// Sync fetches what arrived since cursor (empty: from the start) and
	// returns the messages found and the cursor to resume from. A cursor the
	// provider no longer honours (a changed UIDVALIDITY, Graph 410, Gmail
	// history 404) makes Sync start over and set SyncResult.Reset; messages
	// already stored are recognised by their ProviderID.
	Sync(ctx context.Context, s *Session, cursor string) (*SyncResult, error)
	// Send submits m. It is not idempotent by itself: see FindSent.
	Send(ctx context.Context, s *Session, m *OutgoingMessage) error
	// FindSent reports whether a message with this Message-ID is already in
	// the mailbox's sent items. A retry of a send whose outcome is unclear
	// (a timeout after DATA, a crash) asks it first, so a send goes out
	// exactly once.
	FindSent(ctx context.Context, s *Session, messageID string) (bool, error)
}

// Session is what a connector needs to act for one inbox. Its secrets are
// opened for the call and never logged.
type Session struct {
	Inbox *Inbox
	// Password logs in to IMAP and SMTP.
	Password string
	// RefreshToken gets access tokens from Microsoft and Google.
	RefreshToken string
	// OnTokenRotated, if set, is called with a new refresh token as soon as
	// the provider issues one, so that it is persisted (encrypted) at once.
	OnTokenRotated func(ctx context.Context, refreshToken string) error
}

// SyncResult is the outcome of one incremental sync.
type SyncResult struct {
	Messages []Message
	// Cursor resumes the next sync where this one ended. It is opaque to
	// everyone but the connector that made it.
	Cursor string
	// Reset is true when the old cursor was no longer valid and the sync
	// started over.
	Reset bool
	// More is true when the provider has more to fetch right away.
	More bool
}

// Message is the metadata of one synced message.
type Message struct {
	// ID is holdfast's identifier ("msg_...").
	ID      string
	InboxID string
	// ProviderID identifies the message at the provider and is stable
	// across syncs: for IMAP "mailbox/UIDVALIDITY/UID", for Graph and Gmail
	// their message id. A message is stored once per (InboxID, ProviderID).
	ProviderID string
	// InternetMessageID is the RFC 5322 Message-ID header, with its angle
	// brackets.
	InternetMessageID string
	From              string
	To                []string
	Cc                []string
	Subject           string
	ReceivedAt        time.Time
	// Snippet is the start of the text body, at most MaxSnippet
	// characters (see Snippet).
	Snippet string
	Flags   []string
	// Added is set by Store.SaveSync: true if that call stored the message
	// for the first time, false if it updated a stored one. It is not
	// stored; messages read back have it false.
	Added bool
}

// OutgoingMessage is one email to send.
type OutgoingMessage struct {
	// MessageID is the RFC 5322 Message-ID, with angle brackets, fixed when
	// the send is accepted so that a retry can recognise an earlier attempt.
	MessageID string
	From      string
	To        []string
	Cc        []string
	Bcc       []string
	Subject   string
	Text      string
	HTML      string
	Date      time.Time
}

// MaxSnippet is the most characters a Message.Snippet holds.
const MaxSnippet = 200

// Snippet returns the snippet of a message whose text starts with text:
// whitespace collapsed to single spaces, cut to at most MaxSnippet
// characters.
func Snippet(text string) string {
	s := strings.Join(strings.Fields(text), " ")
	if utf8.RuneCountInString(s) <= MaxSnippet {
		return s
	}
	n := 0
	for i := range s {
		if n == MaxSnippet {
			return strings.TrimSpace(s[:i])
		}
		n++
	}
	return s
}

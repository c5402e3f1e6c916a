package holdfast

import "time"

// SendState is where a send is in its life.
type SendState string

// The send states.
const (
	// SendScheduled: accepted, waiting for its send_at.
	SendScheduled SendState = "scheduled"
	// SendHeld: due, but the health engine holds its inbox (paused,
	// degraded); it goes out when the inbox is back.
	SendHeld SendState = "held"
	// SendSending: a worker is submitting it now (or crashed while doing
	// so: the retry looks for its Message-ID in Sent first).
	SendSending SendState = "sending"
	// SendSent: the provider accepted it.
	SendSent SendState = "sent"
	// SendFailed: it will not go out; Reason says why.
	SendFailed SendState = "failed"
	// SendCancelled: cancelled through the API before it was sending.
	SendCancelled SendState = "cancelled"
)

// Send is one email to send from an inbox, now or at SendAt.
type Send struct {
	// ID is "snd_" and 26 base32 characters.
	ID      string
	InboxID string
	// IdempotencyKey makes a repeated request answer the same send; unique
	// per inbox. Empty means none.
	IdempotencyKey string
	// MessageID is the RFC 5322 Message-ID, fixed when the send is accepted.
	MessageID string
	To        []string
	Cc        []string
	Bcc       []string
	Subject   string
	Text      string
	HTML      string
	SendAt    time.Time
	State     SendState
	// Reason says why a send failed or is held.
	Reason    SendReason
	Attempts  int
	CreatedAt time.Time
	UpdatedAt time.Time
	// SentAt is when the provider accepted it; zero until then.
	SentAt time.Time
}

// SendChange moves a send to a new state. With From set it applies only
// while the send is still in From (a compare-and-set); the store returns
// ErrConflict otherwise.
type SendChange struct {
	From   SendState
	To     SendState
	Reason SendReason
	// Attempt adds one to Attempts.
	Attempt bool
	At      time.Time
	// Announce, if set, returns the outbox events of the change, given the
	// send as stored after it; they commit with the change.
	Announce Announce[*Send]
}

// Valid reports whether s is a known send state.
func (s SendState) Valid() bool {
	switch s {
	case SendScheduled, SendHeld, SendSending, SendSent, SendFailed, SendCancelled:
		return true
	}
	return false
}

// SendReason says why a send failed, is held or waits: a provider's
// Reason for the last attempt (SendReasonOf), the state of an inbox that
// cannot send now (InboxSendReason), or one of the constants below. The
// values are stored and shown by the API as they are.
type SendReason string

// The send reasons that are not a provider's or an inbox state's.
const (
	// SendReasonCancelled: cancelled through the API.
	SendReasonCancelled SendReason = "cancelled"
	// SendReasonInboxDeleted: the send's inbox is gone.
	SendReasonInboxDeleted SendReason = "inbox_deleted"
	// SendReasonProviderNotSupported: no connector serves the inbox's
	// provider.
	SendReasonProviderNotSupported SendReason = "provider_not_supported"
	// SendReasonOutcomeUnknown: an attempt may have gone out and whether
	// it did could not be found out in time.
	SendReasonOutcomeUnknown SendReason = "outcome_unknown"
	// SendReasonOutcomeUnknownUntilReconnect: a send left sending by an
	// attempt that may have gone out, while its inbox needs its owner: Sent
	// cannot be searched until the inbox works again.
	SendReasonOutcomeUnknownUntilReconnect SendReason = "outcome_unknown_until_reconnect"
	// SendReasonInboxUnknown: the health engine does not know the send's
	// inbox and could not load it from the store, for ten minutes after
	// the send was due.
	SendReasonInboxUnknown SendReason = "inbox_unknown"
	// SendReasonInboxNeedsReconnect and SendReasonInboxNeedsAdmin: the
	// inbox needs its owner or its administrator (InboxSendReason of
	// those states).
	SendReasonInboxNeedsReconnect SendReason = "inbox_needs_reconnect"
	SendReasonInboxNeedsAdmin     SendReason = "inbox_needs_admin"
	// SendReasonHeldTooLong: the send was held (its inbox paused, degraded
	// or suspect) for longer than the health engine's SendHoldMax after it
	// was due; its author is told rather than left waiting.
	SendReasonHeldTooLong SendReason = "held_too_long"
)

// SendReasonOf is the reason of a send that a provider refused for reason
// r: the provider's word itself ("message_too_large", "network").
func SendReasonOf(r Reason) SendReason { return SendReason(r) }

// InboxSendReason is the reason of a send held or failed because its inbox
// is in state s: "inbox_" and the state ("inbox_paused",
// "inbox_needs_reconnect").
func InboxSendReason(s State) SendReason { return SendReason("inbox_" + s) }

package holdfast

import (
	"fmt"
	"time"
)

// Provider is the kind of mail service an inbox lives on.
type Provider string

// The providers holdfast speaks to.
const (
	ProviderMicrosoft Provider = "microsoft"
	ProviderGoogle    Provider = "google"
	ProviderIMAP      Provider = "imap"
)

// Providers lists every provider in a stable order.
var Providers = []Provider{ProviderMicrosoft, ProviderGoogle, ProviderIMAP}

// Valid reports whether p is a known provider.
func (p Provider) Valid() bool {
	switch p {
	case ProviderMicrosoft, ProviderGoogle, ProviderIMAP:
		return true
	}
	return false
}

// ParseProvider returns the provider named s, or an error naming s.
func ParseProvider(s string) (Provider, error) {
	p := Provider(s)
	if !p.Valid() {
		return "", fmt.Errorf("unknown provider %q (want microsoft, google or imap)", s)
	}
	return p, nil
}

// State is an inbox's connection state. The health engine moves inboxes
// between states; every move is recorded as an Event.
type State string

// The connection states. Only NeedsReconnect and NeedsAdmin ask anyone to act.
const (
	// StateConnecting: the inbox was just connected and its credentials have
	// not been verified with the provider yet.
	StateConnecting State = "connecting"
	// StateConnected: the inbox syncs and sends normally.
	StateConnected State = "connected"
	// StateDegraded: recoverable errors; holdfast retries with backoff and
	// nobody needs to act.
	StateDegraded State = "degraded"
	// StateSuspect: a permanent-looking error is being confirmed over time.
	StateSuspect State = "suspect"
	// StatePaused: a provider or tenant incident covers the inbox; it resumes
	// by itself and nobody needs to act.
	StatePaused State = "paused"
	// StateNeedsReconnect: confirmed loss of the credential; the owner must
	// reconnect.
	StateNeedsReconnect State = "needs_reconnect"
	// StateNeedsAdmin: app-scope trouble (configuration, consent policy) that
	// an operator or tenant administrator must fix.
	StateNeedsAdmin State = "needs_admin"
)

// States lists every state in a stable order.
var States = []State{
	StateConnecting, StateConnected, StateDegraded, StateSuspect,
	StatePaused, StateNeedsReconnect, StateNeedsAdmin,
}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, k := range States {
		if s == k {
			return true
		}
	}
	return false
}

// ParseState returns the state named s, or an error naming s.
func ParseState(s string) (State, error) {
	st := State(s)
	if !st.Valid() {
		return "", fmt.Errorf("unknown state %q", s)
	}
	return st, nil
}

// ActionRequired says who, if anyone, must act for an inbox to work again.
type ActionRequired string

// The actions an inbox can require.
const (
	RequireNone      ActionRequired = "none"
	RequireReconnect ActionRequired = "reconnect"
	RequireAdmin     ActionRequired = "admin"
)

// ActionRequired returns what state s asks of people.
func (s State) ActionRequired() ActionRequired {
	switch s {
	case StateNeedsReconnect:
		return RequireReconnect
	case StateNeedsAdmin:
		return RequireAdmin
	}
	return RequireNone
}

// Security is how a connection to a mail server is protected.
type Security string

// The connection security modes.
const (
	SecurityTLS      Security = "tls"
	SecurityStartTLS Security = "starttls"
	// SecurityNone sends everything in clear; for local servers only.
	SecurityNone Security = "none"
)

// Valid reports whether s is a known security mode.
func (s Security) Valid() bool {
	return s == SecurityTLS || s == SecurityStartTLS || s == SecurityNone
}

// ServerConfig locates an IMAP or SMTP server.
type ServerConfig struct {
	Host     string   `json:"host"`
	Port     int      `json:"port"`
	Security Security `json:"security"`
}

// Inbox is one connected mailbox.
type Inbox struct {
	// ID is the inbox's identifier ("inb_" and 26 base32 characters, ordered
	// by creation time).
	ID    string
	Email string
	// OwnerEmail, if set, is the address of the person the inbox belongs
	// to: its notices go there, and that address's status page lists it,
	// so that one owner with several inboxes gets one message. Empty means
	// the owner is Email itself.
	OwnerEmail string
	Provider   Provider
	// Tenant groups inboxes that share fate: a Microsoft or Google
	// organisation, or for IMAP the mail server host. The health engine
	// correlates failures per tenant.
	Tenant string
	// Username logs in to IMAP and SMTP; empty for OAuth providers.
	Username string
	IMAP     *ServerConfig
	SMTP     *ServerConfig
	// Credentials is the sealed (encrypted) secret: a password or a refresh
	// token. Only package secrets opens it; the store keeps it as it is.
	Credentials []byte

	// SyncCursor resumes the next incremental sync; opaque to all but the
	// inbox's connector. LastSyncAt is when a sync last succeeded.
	SyncCursor string
	LastSyncAt time.Time

	State State
	// Reason is a machine-readable word for the current state, from the
	// classify vocabulary ("token_revoked", "provider_unavailable") or a
	// lifecycle word ("created").
	Reason string
	// Message is one sentence the inbox's owner understands.
	Message string
	// Since is when the inbox entered State.
	Since     time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Owner returns the address of the inbox's owner: OwnerEmail, or Email
// when it is empty.
func (i *Inbox) Owner() string {
	if i.OwnerEmail != "" {
		return i.OwnerEmail
	}
	return i.Email
}

// ActionRequired returns what the inbox's state asks of people.
func (i *Inbox) ActionRequired() ActionRequired { return i.State.ActionRequired() }

// Cause names who or what caused an inbox event.
type Cause string

// The causes of inbox events.
const (
	CauseAPI      Cause = "api"      // a request to the HTTP API
	CauseHealth   Cause = "health"   // the health engine
	CauseOperator Cause = "operator" // an operator action (incident, release)
	CauseSystem   Cause = "system"   // holdfast itself (migration, key rotation)
)

// Event is one entry of an inbox's append-only event log: a state change,
// or a lifecycle step such as creation or deletion.
type Event struct {
	ID       int64
	InboxID  string
	At       time.Time
	OldState State // empty for creation
	NewState State // empty for deletion
	Reason   string
	Message  string
	Cause    Cause
}

// StateChange asks the store to move an inbox to a new state and to record
// the move in the event log, atomically.
type StateChange struct {
	// From, if set, makes the change conditional: it applies only while the
	// inbox is still in From. The store returns ErrConflict otherwise.
	From    State
	To      State
	Reason  string
	Message string
	Cause   Cause
	At      time.Time
	// Announce, if set, returns the outbox events of the change, given the
	// inbox as stored after it; they commit with the change.
	Announce Announce[*Inbox]
}

// DefaultMessage returns the sentence shown to an inbox's owner for state s
// when nothing more specific is known.
func DefaultMessage(s State) string {
	switch s {
	case StateConnecting:
		return "Your inbox is connected; holdfast is checking its sign-in for the first time."
	case StateConnected:
		return "Your inbox is connected and syncing."
	case StateDegraded:
		return "Your email provider is having trouble; holdfast keeps retrying and you need do nothing."
	case StateSuspect:
		return "Your email provider rejected holdfast's sign-in; holdfast is checking again before asking you to do anything."
	case StatePaused:
		return "Your email provider is having an outage; syncing resumes by itself when it is over and you need do nothing."
	case StateNeedsReconnect:
		return "Your email provider no longer accepts holdfast's access to this inbox; please reconnect it."
	case StateNeedsAdmin:
		return "This inbox needs your administrator: the provider refuses holdfast's app or its permissions."
	}
	return ""
}

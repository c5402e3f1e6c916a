package holdfast

import "time"

// Incident is trouble on a provider's side, opened by the health engine or
// declared by an operator, as stored and shown by the API. While an
// incident covers an inbox, nothing destructive happens to it.
type Incident struct {
	ID int64
	// Kind is "provider_outage", "tenant_outage", "tenant_event" or
	// "declared".
	Kind     string
	Provider Provider
	// Tenant is the tenant (organisation or IMAP server) it covers, or
	// empty for the whole provider.
	Tenant     string
	OpenedAt   time.Time
	ResolvedAt time.Time // zero while open
	// Evidence says why it opened.
	Evidence string
	// Affected counts inboxes paused or held under it; Recovered counts
	// inboxes the recovery resumed after it closed.
	Affected  int
	Recovered int
	Timeline  []IncidentEntry
}

// Open reports whether the incident is still open.
func (in *Incident) Open() bool { return in.ResolvedAt.IsZero() }

// IncidentEntry is one step of an incident's timeline.
type IncidentEntry struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// HeldAction is a destructive move (to needs_reconnect or needs_admin) the
// guard did not allow, waiting for the budget, the end of an incident or an
// operator's release.
type HeldAction struct {
	ID       int64
	InboxID  string
	Provider Provider
	Tenant   string
	To       State
	Reason   string
	// Why is "budget" or "incident".
	Why    string
	HeldAt time.Time
	// Done is set once the action was taken, released or cancelled;
	// Outcome says which.
	Done     bool
	Outcome  string
	ClosedAt time.Time
}

// Notice is a decision of the health engine that an inbox's owner (or,
// with Admin, its administrator) must be told to act. (InboxID, Episode) is
// its idempotency key: one episode of trouble gets one notice.
type Notice struct {
	ID      int64
	InboxID string
	Episode int64
	Admin   bool
	Reason  string
	At      time.Time
}

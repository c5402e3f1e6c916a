// Package webhook tells the host application what happens in holdfast by
// signed HTTP POSTs to the webhooks it registered: inbox state changes, new
// mail, sends, incidents.
//
// Events flow in three steps. Every write that something happened (the
// health monitor's state changes and incidents, the syncer's batches, the
// send worker's outcomes, the notifier's notices, an API replay) appends
// its events to the store's outbox in its own transaction
// (holdfast.OutboxEvent; InboxEvents, MessageEvents, SendEvents,
// IncidentEvents and NoticeEvents build them), so that an event exists if
// and only if what it announces was stored. The Relay reads the outbox in
// order, fans each event out to the webhooks subscribed to its type and
// enqueues one durable delivery job per event and webhook (Queue, which
// jobs.Runner implements on River), then marks the events relayed. The
// job's worker POSTs the event with a Sender, records the attempt in the
// store and retries failures with jittered exponential backoff (Backoff)
// for RetryWindow.
//
// Every POST is signed (Sign, Verify) and carries the event's ID for
// de-duplication: an endpoint may see an event more than once. Sender
// refuses endpoints on loopback, private, link-local and other internal
// addresses (Guard), checking the address actually dialled, so that a DNS
// answer that changes after the check cannot bypass it.
//
// The Go API is not stable.
package webhook

import (
	"fmt"
	"slices"
	"time"

	"github.com/holdfast/holdfast"
)

// The event types. Their data is documented in docs/api.md.
const (
	// InboxStateChanged: an inbox moved from one state to another.
	InboxStateChanged = "inbox.state_changed"
	// InboxNeedsReconnect: an inbox's owner must reconnect it.
	InboxNeedsReconnect = "inbox.needs_reconnect"
	// InboxRecovered: an inbox is connected again after trouble (paused,
	// suspect, degraded, needs_reconnect or needs_admin).
	InboxRecovered = "inbox.recovered"
	// MessageReceived: a sync stored a new message.
	MessageReceived = "message.received"
	// SendSent: the provider accepted a send.
	SendSent = "send.sent"
	// SendFailed: a send will not go out.
	SendFailed = "send.failed"
	// IncidentOpened: a provider or tenant incident opened.
	IncidentOpened = "incident.opened"
	// IncidentResolved: an incident is over.
	IncidentResolved = "incident.resolved"
	// IncidentEscalated: an incident has been open longer than its kind's
	// bound (health.Config.EscalateAfter) and needs an operator; sent
	// once per incident.
	IncidentEscalated = "incident.escalated"
	// NoticeSent: an inbox owner was emailed that an inbox needs them,
	// after the grace period and the delivery-time re-check.
	NoticeSent = "notice.sent"
	// AllEvents subscribes a webhook to every type, present and future.
	AllEvents = "*"
)

// EventTypes lists every event type in a stable order.
var EventTypes = []string{
	InboxStateChanged, InboxNeedsReconnect, InboxRecovered, MessageReceived,
	SendSent, SendFailed, IncidentOpened, IncidentResolved, IncidentEscalated, NoticeSent,
}

// ValidEventType reports whether t is an event type, or AllEvents.
func ValidEventType(t string) bool { return t == AllEvents || slices.Contains(EventTypes, t) }

// Subscribed reports whether webhook w receives events of type t: it is
// enabled and lists t or AllEvents.
func Subscribed(w *holdfast.Webhook, t string) bool {
	return !w.Disabled() && (slices.Contains(w.Events, t) || slices.Contains(w.Events, AllEvents))
}

// Event is one thing that happened, as POSTed (JSON-encoded) to webhooks.
type Event struct {
	// ID is "evt_" and 26 base32 characters; every attempt and replay of
	// the event carries the same, so receivers de-duplicate by it.
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	CreatedAt time.Time `json:"created_at"`
	// Data is the event's object; its fields depend on Type.
	Data any `json:"data"`
}

// NewEvent returns a new event of type typ with data, created at now.
func NewEvent(typ string, data any, now time.Time) Event {
	now = now.UTC().Truncate(holdfast.StoreTimePrecision)
	return Event{ID: holdfast.NewID("evt", now), Type: typ, CreatedAt: now, Data: data}
}

// Delivery is one event to deliver to one webhook: the arguments of a
// delivery job.
type Delivery struct {
	WebhookID string
	EventID   string
	EventType string
	// Payload is the JSON body to POST.
	Payload []byte
	// Since is when this round of attempts began (the event's creation,
	// or a replay); retries stop RetryWindow after it.
	Since time.Time
	// Replay is 0 for the first round and counts replays, so that a
	// replay is a new job.
	Replay int
}

// Retry policy: Backoff(n) is the wait after the n-th failed attempt.
const (
	// RetryWindow is how long a delivery is retried.
	RetryWindow = 24 * time.Hour
	// DefaultRetryBase is the wait after the first failure; it doubles
	// with each further one, up to MaxRetryWait.
	DefaultRetryBase = 10 * time.Second
	// MaxRetryWait caps one wait between attempts.
	MaxRetryWait = time.Hour
	// retryJitter is the fraction by which each wait is shortened or
	// lengthened at random.
	retryJitter = 0.2
)

// Backoff returns the wait after the attempt-th failed attempt (1 for the
// first): base doubled attempt-1 times, at most MaxRetryWait, jittered by
// ±20% with rnd, a number in [0, 1).
func Backoff(base time.Duration, attempt int, rnd float64) time.Duration {
	d := base << min(max(attempt-1, 0), 20)
	if d <= 0 || d > MaxRetryWait {
		d = MaxRetryWait
	}
	return time.Duration(float64(d) * (1 + retryJitter*(2*rnd-1)))
}

// CheckEvents validates a webhook's list of event types and returns it
// without duplicates, naming a bad entry.
func CheckEvents(events []string) ([]string, error) {
	if len(events) == 0 {
		return nil, fmt.Errorf("at least one event type is required (or %q for all)", AllEvents)
	}
	var out []string
	for _, e := range events {
		if !ValidEventType(e) {
			return nil, fmt.Errorf("%q is not an event type (want %q or one of %v)", e, AllEvents, EventTypes)
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

package holdfast

import "time"

// Webhook is an endpoint of the host application that holdfast tells what
// happens (inbox state changes, new mail, sends, incidents) by signed HTTP
// POSTs. Package webhook delivers them.
type Webhook struct {
	// ID is "whk_" and 26 base32 characters.
	ID string
	// URL is the http or https endpoint events are POSTed to.
	URL string
	// Events lists the event types it receives; "*" means all.
	Events []string
	// Secret is the sealed (encrypted) signing secret. Only the service
	// that signs opens it; the store keeps it as it is.
	Secret    []byte
	CreatedAt time.Time
	// DisabledAt is when deliveries to it stopped for good (its endpoint
	// answered 410 Gone); zero while it is enabled. DisabledReason says why.
	DisabledAt     time.Time
	DisabledReason string
}

// Disabled reports whether deliveries to the webhook have stopped.
func (w *Webhook) Disabled() bool { return !w.DisabledAt.IsZero() }

// DeliveryState is where the delivery of one event to one webhook is.
type DeliveryState string

// The delivery states.
const (
	// DeliveryPending: not delivered yet; it is retried.
	DeliveryPending DeliveryState = "pending"
	// DeliverySucceeded: the endpoint answered 2xx.
	DeliverySucceeded DeliveryState = "succeeded"
	// DeliveryFailed: retries are over (24 hours of them, or a 410 Gone);
	// it can be replayed.
	DeliveryFailed DeliveryState = "failed"
)

// WebhookDelivery is the delivery of one event to one webhook, with every
// attempt made. (WebhookID, EventID) is unique: a replay adds attempts to
// the same delivery.
type WebhookDelivery struct {
	// ID is "whd_" and 26 base32 characters.
	ID        string
	WebhookID string
	EventID   string
	EventType string
	// Payload is the exact body POSTed, the same on every attempt.
	Payload   []byte
	State     DeliveryState
	Attempts  []WebhookAttempt
	CreatedAt time.Time
	UpdatedAt time.Time
}

// WebhookAttempt is one POST of an event to a webhook.
type WebhookAttempt struct {
	At time.Time `json:"at"`
	// StatusCode is the endpoint's HTTP status, or 0 when there was no
	// answer (then Error says why).
	StatusCode int           `json:"status_code,omitempty"`
	Error      string        `json:"error,omitempty"`
	Duration   time.Duration `json:"duration"`
}

// DeliveryFilter selects a page of a webhook's deliveries, newest first.
type DeliveryFilter struct {
	// Before returns only deliveries whose ID sorts before it (keyset
	// paging).
	Before string
	// Limit caps the page size; zero or less means 100, at most 1000.
	Limit int
}

// OutboxEvent is one webhook event in the store's outbox: written in the
// same transaction as the change it announces, so that it exists if and
// only if the change was stored, and relayed from there to the webhooks
// subscribed to it (package webhook's Relay). A crash between the change
// and the relay loses nothing: the next relay finds the event unrelayed.
type OutboxEvent struct {
	// Seq orders the outbox; the store sets it when it appends the event.
	Seq int64
	// ID is the event's ID ("evt_" and 26 base32 characters), which every
	// delivery, retry and replay of it carries.
	ID   string
	Type string
	// Payload is the exact body POSTed to the webhooks.
	Payload []byte
	// CreatedAt is when the event happened (for a replay, when it was
	// asked for): delivery retries stop a retry window after it.
	CreatedAt time.Time
	// WebhookID, when set, targets the event at that webhook alone,
	// subscribed or not: a replay. Empty: every subscribed webhook.
	WebhookID string
	// Replay numbers a replay (0 for the event's first round), so that a
	// replay is a new delivery job. (ID, WebhookID, Replay) is unique.
	Replay int
	// RelayedAt is when its deliveries were enqueued; zero until then.
	RelayedAt time.Time
}

// Announce returns the outbox events that announce a change, given the
// change as stored. A store calls it inside the change's transaction and
// appends what it returns there: the events commit if and only if the
// change does. An error rolls the change back. A nil Announce announces
// nothing.
type Announce[T any] func(stored T) ([]OutboxEvent, error)

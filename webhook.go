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

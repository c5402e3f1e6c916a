package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/riverqueue/river"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/webhook"
)

// WebhookStore is the aggregate the webhook worker uses: webhooks and their deliveries.
type WebhookStore interface {
	holdfast.WebhookStore
}

var _ WebhookStore = holdfast.Store(nil)

// WebhookConfig is what the webhook delivery worker needs; WithWebhooks
// registers it.
type WebhookConfig struct {
	Store  WebhookStore
	Sender *webhook.Sender
	// OpenSecret opens a webhook's sealed signing secret.
	OpenSecret func(webhookID string, sealed []byte) ([]byte, error)
	// RetryBase is the wait after a first failed attempt, doubling after
	// each further one (see webhook.Backoff); zero means
	// webhook.DefaultRetryBase.
	RetryBase time.Duration
	// OnDisabled, if set, is called when a webhook is disabled because its
	// endpoint answered 410 Gone (webhook.Relay.Invalidate).
	OnDisabled func(webhookID string)
}

// WithWebhooks registers the webhook delivery worker.
func WithWebhooks(c WebhookConfig) Option {
	return func(o *options) { o.webhooks = &c }
}

// webhookMaxAttempts only bounds a runaway: deliveries stop at
// webhook.RetryWindow, which the backoff reaches in about 30 attempts.
const webhookMaxAttempts = 100

// WebhookArgs are the arguments of the webhook_delivery job, which POSTs
// one event to one webhook until it answers 2xx, for at most
// webhook.RetryWindow after Since. There is one job per webhook, event and
// replay.
type WebhookArgs struct {
	WebhookID string `json:"webhook_id" river:"unique"`
	EventID   string `json:"event_id" river:"unique"`
	Replay    int    `json:"replay" river:"unique"`
	EventType string `json:"event_type"`
	// Payload is the body, kept as bytes (base64 in JSON): as a JSON
	// value, Postgres's jsonb would reorder and respace it.
	Payload []byte    `json:"payload"`
	Since   time.Time `json:"since"`
}

// Kind implements river.JobArgs.
func (WebhookArgs) Kind() string { return "webhook_delivery" }

// InsertOpts implements river.JobArgsWithInsertOpts: unique by webhook,
// event and replay, and at the priority of the event's type
// (webhookPriority).
func (a WebhookArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: webhookMaxAttempts, Priority: webhookPriority(a.EventType), UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// River job priorities of webhook deliveries (1 is worked first).
const (
	priorityEvent     = 1
	priorityBulkState = 2
)

// webhookPriority is the River priority of a delivery of an event of type
// typ. A provider outage moves every inbox of the provider twice (paused,
// then back) and announces each move (inbox.state_changed, and
// inbox.recovered after): 300,000 events for 100,000 inboxes, still
// queued 15 minutes after the outage in the 100,000-inbox load test on
// 2 cores, with new mail's events behind them. Those go after every other
// type (new mail, sends, incidents, notices, inbox.needs_reconnect), so
// that a host application still hears of new mail within seconds while
// they queue; the incident events, delivered first, tell it why its
// inboxes pause. Events of one inbox were never ordered (docs/api.md).
func webhookPriority(typ string) int {
	switch typ {
	case webhook.InboxStateChanged, webhook.InboxRecovered:
		return priorityBulkState
	}
	return priorityEvent
}

// WebhookWorker works webhook_delivery jobs: one attempt per run, recorded
// in the store; River retries failures at NextRetry.
type WebhookWorker struct {
	river.WorkerDefaults[WebhookArgs]
	WebhookConfig
	Clock  holdfast.Clock
	Logger *slog.Logger
}

// Timeout implements river.Worker: the Sender bounds the POST itself.
func (w *WebhookWorker) Timeout(*river.Job[WebhookArgs]) time.Duration { return time.Minute }

// NextRetry implements river.Worker: webhook.Backoff, jittered.
func (w *WebhookWorker) NextRetry(job *river.Job[WebhookArgs]) time.Time {
	return time.Now().Add(webhook.Backoff(w.retryBase(), job.Attempt, rand.Float64()))
}

func (w *WebhookWorker) retryBase() time.Duration {
	if w.RetryBase > 0 {
		return w.RetryBase
	}
	return webhook.DefaultRetryBase
}

// errRetry marks a failed attempt that River retries.
var errRetry = errors.New("webhook delivery failed; retrying")

// Work makes one attempt at a delivery.
func (w *WebhookWorker) Work(ctx context.Context, job *river.Job[WebhookArgs]) error {
	a := job.Args
	log := w.Logger.With("webhook_id", a.WebhookID, "event_id", a.EventID, "attempt", job.Attempt)
	hook, err := w.Store.Webhook(ctx, a.WebhookID)
	if errors.Is(err, holdfast.ErrNotFound) {
		return nil // deleted: its deliveries stop
	}
	if err != nil {
		return fmt.Errorf("load webhook %s: %w", a.WebhookID, err)
	}
	if hook.Disabled() {
		return nil
	}
	secret, err := w.OpenSecret(hook.ID, hook.Secret)
	if err != nil {
		return fmt.Errorf("open secret of webhook %s: %w", hook.ID, err)
	}
	start := w.Clock.Now()
	res := w.Sender.Send(ctx, hook.URL, secret, a.EventID, a.EventType, a.Payload, start)
	clear(secret)

	d := &holdfast.WebhookDelivery{
		WebhookID: a.WebhookID, EventID: a.EventID, EventType: a.EventType, Payload: a.Payload,
		State: holdfast.DeliveryPending,
	}
	at := holdfast.WebhookAttempt{At: start, StatusCode: res.StatusCode, Duration: res.Duration}
	if res.Err != nil {
		at.Error = res.Err.Error()
	}
	deadline := a.Since.Add(webhook.RetryWindow)
	switch {
	case res.OK():
		d.State = holdfast.DeliverySucceeded
	case res.Gone():
		d.State = holdfast.DeliveryFailed
	case job.Attempt >= job.MaxAttempts || start.Add(webhook.Backoff(w.retryBase(), job.Attempt, 0)).After(deadline):
		d.State = holdfast.DeliveryFailed
	}
	if res.Gone() {
		// Before the attempt is recorded, so that a failed delivery after a
		// 410 always shows a disabled webhook.
		if err := w.Store.DisableWebhook(ctx, hook.ID, start, "endpoint answered 410 Gone"); errors.Is(err, holdfast.ErrNotFound) {
			return nil
		} else if err != nil {
			return fmt.Errorf("disable webhook %s: %w", hook.ID, err)
		}
		if w.OnDisabled != nil {
			w.OnDisabled(hook.ID)
		}
	}
	if _, err := w.Store.RecordWebhookAttempt(ctx, d, at); errors.Is(err, holdfast.ErrNotFound) {
		return nil // deleted meanwhile
	} else if err != nil {
		// Not recorded, but made: retrying sends the event again, which
		// receivers de-duplicate.
		return fmt.Errorf("record attempt of event %s to webhook %s: %w", a.EventID, a.WebhookID, err)
	}
	switch {
	case res.Gone():
		log.WarnContext(ctx, "webhook disabled: its endpoint answered 410 Gone")
		return nil
	case d.State == holdfast.DeliveryFailed:
		log.WarnContext(ctx, "webhook delivery failed for good", "status", res.StatusCode, "err", res.Err)
		return nil
	case d.State == holdfast.DeliveryPending:
		log.InfoContext(ctx, "webhook delivery failed; will retry", "status", res.StatusCode, "err", res.Err)
		if res.Err != nil {
			return fmt.Errorf("%w: %w", errRetry, res.Err)
		}
		return fmt.Errorf("%w: status %d", errRetry, res.StatusCode)
	}
	return nil
}

// EnqueueDeliveries implements webhook.Queue: one webhook_delivery job per
// delivery, available at once; a job that exists already is left alone.
func (r *Runner) EnqueueDeliveries(ctx context.Context, ds []webhook.Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	params := make([]river.InsertManyParams, len(ds))
	for i, d := range ds {
		params[i] = river.InsertManyParams{Args: WebhookArgs{
			WebhookID: d.WebhookID, EventID: d.EventID, Replay: d.Replay, EventType: d.EventType,
			Payload: d.Payload, Since: d.Since,
		}}
	}
	if _, err := r.client.InsertMany(ctx, params); err != nil {
		return fmt.Errorf("enqueue %d webhook deliveries: %w", len(ds), err)
	}
	return nil
}

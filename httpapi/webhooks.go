package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/webhook"
)

// WebhookConfig is what the /v1/webhooks routes need.
type WebhookConfig struct {
	// Guard checks endpoints when they are registered.
	Guard *webhook.Guard
	// SealSecret encrypts a webhook's signing secret for storage, bound to
	// the webhook's ID.
	SealSecret func(webhookID, secret string) ([]byte, error)
	// Wake, if set, is called after a replay is stored in the outbox, to
	// relay it at once (webhook.Relay.Wake); the relay polls otherwise.
	Wake func()
	// Changed, if set, is called after a webhook is created or deleted
	// (webhook.Relay.Invalidate).
	Changed func()
}

// The limits of the webhook routes.
const (
	maxWebhooks     = 100
	maxSecretLength = 200
	minSecretLength = 16
)

// createWebhookRequest registers an endpoint.
type createWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret"`
}

// webhookJSON is a webhook as the API shows it. Secret is set only in the
// answer to its creation.
type webhookJSON struct {
	ID             string     `json:"id"`
	URL            string     `json:"url"`
	Events         []string   `json:"events"`
	Secret         string     `json:"secret,omitempty"`
	CreatedAt      time.Time  `json:"created_at"`
	DisabledAt     *time.Time `json:"disabled_at"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
}

func toWebhookJSON(h *holdfast.Webhook) webhookJSON {
	out := webhookJSON{ID: h.ID, URL: h.URL, Events: orEmpty(h.Events), CreatedAt: h.CreatedAt, DisabledReason: h.DisabledReason}
	if h.Disabled() {
		t := h.DisabledAt
		out.DisabledAt = &t
	}
	return out
}

// deliveryJSON is a delivery with its attempts; the payload is not shown.
type deliveryJSON struct {
	ID        string                 `json:"id"`
	WebhookID string                 `json:"webhook_id"`
	EventID   string                 `json:"event_id"`
	EventType string                 `json:"event_type"`
	State     holdfast.DeliveryState `json:"state"`
	Attempts  []attemptJSON          `json:"attempts"`
	CreatedAt time.Time              `json:"created_at"`
	UpdatedAt time.Time              `json:"updated_at"`
}

type attemptJSON struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

func toDeliveryJSON(d *holdfast.WebhookDelivery) deliveryJSON {
	out := deliveryJSON{
		ID: d.ID, WebhookID: d.WebhookID, EventID: d.EventID, EventType: d.EventType, State: d.State,
		Attempts: make([]attemptJSON, len(d.Attempts)), CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt,
	}
	for i, a := range d.Attempts {
		out.Attempts[i] = attemptJSON{At: a.At, StatusCode: a.StatusCode, Error: a.Error, DurationMS: a.Duration.Milliseconds()}
	}
	return out
}

// webhooks returns the webhook configuration, or answers 404 when the
// server has none.
func (s *server) webhooks(w http.ResponseWriter) *WebhookConfig {
	if s.cfg.Webhooks == nil {
		writeError(w, http.StatusNotFound, "not_found", "webhooks are not enabled on this server")
	}
	return s.cfg.Webhooks
}

func (s *server) webhooksChanged() {
	if c := s.cfg.Webhooks; c != nil && c.Changed != nil {
		c.Changed()
	}
}

// webhookID reads and checks the {id} path value of a webhook route.
func webhookID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !holdfast.ValidID("whk", id) {
		return "", holdfast.ErrNotFound
	}
	return id, nil
}

// handleCreateWebhook registers an endpoint: POST /v1/webhooks. It answers
// 201 with the webhook and, this once, its signing secret.
func (s *server) handleCreateWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wc := s.webhooks(w)
		if wc == nil {
			return
		}
		req, err := decode[createWebhookRequest](r, w, s.cfg.MaxBodyBytes)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if req.URL == "" {
			s.respondErr(w, r, holdfast.Invalidf("url", "is required"))
			return
		}
		if _, err := wc.Guard.CheckURL(r.Context(), req.URL); err != nil {
			s.respondErr(w, r, holdfast.Invalidf("url", "%v", err))
			return
		}
		events, err := webhook.CheckEvents(req.Events)
		if err != nil {
			s.respondErr(w, r, holdfast.Invalidf("events", "%v", err))
			return
		}
		secret := req.Secret
		switch {
		case secret == "":
			secret = webhook.NewSecret()
		case len(secret) < minSecretLength || len(secret) > maxSecretLength:
			s.respondErr(w, r, holdfast.Invalidf("secret", "must be %d to %d characters", minSecretLength, maxSecretLength))
			return
		}
		existing, err := s.cfg.Store.Webhooks(r.Context())
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if len(existing) >= maxWebhooks {
			s.respondErr(w, r, &conflictError{msg: fmt.Sprintf("at most %d webhooks; delete one first", maxWebhooks)})
			return
		}
		now := s.cfg.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
		h := &holdfast.Webhook{ID: holdfast.NewID("whk", now), URL: req.URL, Events: events, CreatedAt: now}
		if h.Secret, err = wc.SealSecret(h.ID, secret); err != nil {
			s.respondErr(w, r, fmt.Errorf("seal secret of webhook %s: %w", h.ID, err))
			return
		}
		if err := s.cfg.Store.CreateWebhook(r.Context(), h); err != nil {
			s.respondErr(w, r, err)
			return
		}
		s.webhooksChanged()
		s.log.InfoContext(r.Context(), "webhook created", "webhook_id", h.ID, "events", events)
		out := toWebhookJSON(h)
		out.Secret = secret
		w.Header().Set("Location", "/v1/webhooks/"+h.ID)
		encode(w, http.StatusCreated, out)
	})
}

// handleListWebhooks lists every webhook, without secrets: GET
// /v1/webhooks.
func (s *server) handleListWebhooks() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.webhooks(w) == nil {
			return
		}
		hooks, err := s.cfg.Store.Webhooks(r.Context())
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		out := listJSON[webhookJSON]{Data: make([]webhookJSON, 0, len(hooks))}
		for _, h := range hooks {
			out.Data = append(out.Data, toWebhookJSON(h))
		}
		encode(w, http.StatusOK, out)
	})
}

// handleDeleteWebhook removes a webhook; its pending deliveries stop:
// DELETE /v1/webhooks/{id}. It answers 204.
func (s *server) handleDeleteWebhook() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.webhooks(w) == nil {
			return
		}
		id, err := webhookID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if err := s.cfg.Store.DeleteWebhook(r.Context(), id); err != nil {
			s.respondErr(w, r, err)
			return
		}
		s.webhooksChanged()
		s.log.InfoContext(r.Context(), "webhook deleted", "webhook_id", id)
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleListDeliveries answers one page of a webhook's deliveries, newest
// first, with their attempts: GET /v1/webhooks/{id}/deliveries.
func (s *server) handleListDeliveries() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.webhooks(w) == nil {
			return
		}
		id, err := webhookID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if _, err := s.cfg.Store.Webhook(r.Context(), id); err != nil {
			s.respondErr(w, r, err)
			return
		}
		f := holdfast.DeliveryFilter{Before: r.URL.Query().Get("cursor")}
		if f.Before != "" && !holdfast.ValidID("whd", f.Before) {
			s.respondErr(w, r, holdfast.Invalidf("cursor", "is not a cursor this API gave out"))
			return
		}
		limit, err := pageLimit(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		f.Limit = limit + 1
		ds, err := s.cfg.Store.WebhookDeliveries(r.Context(), id, f)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		out := listJSON[deliveryJSON]{Data: make([]deliveryJSON, 0, min(len(ds), limit))}
		for i, d := range ds {
			if i == limit {
				out.NextCursor = ds[limit-1].ID
				break
			}
			out.Data = append(out.Data, toDeliveryJSON(d))
		}
		encode(w, http.StatusOK, out)
	})
}

// handleReplayDelivery sends a delivered or failed event again, with the
// same event ID and body: POST
// /v1/webhooks/{id}/deliveries/{delivery_id}/replay. It answers 202 with
// the delivery, now pending, and 409 while it is pending or when the
// webhook is disabled.
func (s *server) handleReplayDelivery() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wc := s.webhooks(w)
		if wc == nil {
			return
		}
		id, err := webhookID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		did := r.PathValue("delivery_id")
		if !holdfast.ValidID("whd", did) {
			s.respondErr(w, r, holdfast.ErrNotFound)
			return
		}
		h, err := s.cfg.Store.Webhook(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if h.Disabled() {
			s.respondErr(w, r, &conflictError{msg: "the webhook is disabled (" + h.DisabledReason + "); create it again to receive events"})
			return
		}
		d, err := s.cfg.Store.WebhookDelivery(r.Context(), id, did)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if d.State == holdfast.DeliveryPending {
			s.respondErr(w, r, &conflictError{msg: "the delivery is pending: it is being retried"})
			return
		}
		// The compare-and-set makes one of two concurrent replays win; the
		// delivery turns pending in the transaction that appends its
		// replay to the outbox, from which the relay enqueues it.
		pending, err := s.cfg.Store.ReplayWebhookDelivery(r.Context(), id, did, d.State, s.cfg.Clock.Now())
		if errors.Is(err, holdfast.ErrConflict) {
			s.respondErr(w, r, &conflictError{msg: "the delivery changed meanwhile; try again"})
			return
		}
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if wc.Wake != nil {
			wc.Wake()
		}
		s.log.InfoContext(r.Context(), "webhook delivery replayed", "webhook_id", id, "delivery_id", did, "event_id", d.EventID)
		encode(w, http.StatusAccepted, toDeliveryJSON(pending))
	})
}

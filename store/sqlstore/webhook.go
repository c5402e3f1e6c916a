package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
)

// CreateWebhook stores w. A zero w.CreatedAt is set to now; the times are
// rounded down to the store's precision and set back in w. It returns
// ErrConflict if the ID exists.
func (s *Store) CreateWebhook(ctx context.Context, w *holdfast.Webhook) error {
	if w.ID == "" || w.URL == "" {
		return fmt.Errorf("create webhook %s: %w", w.ID, holdfast.Invalidf("", "webhook needs an id and a url"))
	}
	w.CreatedAt = s.orNow(w.CreatedAt)
	w.DisabledAt = orTime(w.DisabledAt, w.DisabledAt)
	_, err := s.db.Exec(ctx, queryInsertWebhook, w.ID, w.URL, encodeList(w.Events), nonNilBytes(w.Secret),
		s.time(w.CreatedAt), s.nullTime(w.DisabledAt), w.DisabledReason)
	if err != nil {
		return fmt.Errorf("create webhook %s: %w", w.ID, s.conflict(err))
	}
	return nil
}

// Webhook returns one webhook, or ErrNotFound.
func (s *Store) Webhook(ctx context.Context, id string) (*holdfast.Webhook, error) {
	w, err := one(ctx, s.db, scanWebhook, queryWebhook, id)
	return w, wrapf(err, "webhook %s", id)
}

// Webhooks returns every webhook, ordered by ID.
func (s *Store) Webhooks(ctx context.Context) ([]*holdfast.Webhook, error) {
	out, err := all(ctx, s.db, scanWebhook, queryWebhooks)
	return out, wrapf(err, "webhooks")
}

// DeleteWebhook removes a webhook and, through the foreign key's cascade,
// its deliveries. It returns ErrNotFound if the webhook does not exist.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	if err := changeOne(ctx, s.db, queryDeleteWebhook, id); err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	return nil
}

// SetWebhookSecret replaces the webhook's sealed signing secret.
// ErrNotFound for an unknown webhook.
func (s *Store) SetWebhookSecret(ctx context.Context, id string, sealed []byte) error {
	if err := changeOne(ctx, s.db, querySetWebhookSecret, id, sealed); err != nil {
		return fmt.Errorf("set secret of webhook %s: %w", id, err)
	}
	return nil
}

// SwapWebhookSecret replaces the webhook's sealed signing secret with
// sealed if it is still byte-equal to old. It returns ErrNotFound for an
// unknown webhook and ErrConflict, with nothing changed, when the secret
// is no longer old. The compare-and-set is one UPDATE, which on PostgreSQL
// rechecks the secret once a concurrent change has committed.
func (s *Store) SwapWebhookSecret(ctx context.Context, id string, old, sealed []byte) error {
	err := swapOne(ctx, s.db, "secret changed", querySwapWebhookSecret, queryWebhookExists, id, sealed, nonNilBytes(old))
	if err != nil {
		return fmt.Errorf("swap secret of webhook %s: %w", id, err)
	}
	return nil
}

// DisableWebhook sets the webhook's DisabledAt (a zero at means now) and
// DisabledReason, unless it is disabled already. ErrNotFound for an
// unknown webhook.
func (s *Store) DisableWebhook(ctx context.Context, id string, at time.Time, reason string) error {
	if err := swapOne(ctx, s.db, "", queryDisableWebhook, queryWebhookExists, id, s.time(s.orNow(at)), reason); err != nil {
		return fmt.Errorf("disable webhook %s: %w", id, err)
	}
	return nil
}

// RecordWebhookAttempt appends a to the delivery of (d.WebhookID,
// d.EventID), creating it first if needed, and sets its state to d.State.
// ErrNotFound when the webhook does not exist.
func (s *Store) RecordWebhookAttempt(ctx context.Context, d *holdfast.WebhookDelivery, a holdfast.WebhookAttempt) (*holdfast.WebhookDelivery, error) {
	a.At = s.orNow(a.At)
	attempt, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("record attempt of event %s to webhook %s: %w", d.EventID, d.WebhookID, err)
	}
	id := d.ID
	if id == "" {
		id = holdfast.NewID("whd", a.At)
	}
	out, err := scanDelivery(s.db.QueryRow(ctx, s.sql.RecordAttempt,
		id, d.WebhookID, d.EventID, d.EventType, nonNilBytes(d.Payload), string(d.State), string(attempt),
		s.time(orTime(d.CreatedAt, a.At)), s.time(a.At)))
	if s.dialect.IsForeignKeyViolation(err) {
		err = holdfast.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("record attempt of event %s to webhook %s: %w", d.EventID, d.WebhookID, err)
	}
	return out, nil
}

// WebhookDelivery returns one delivery of a webhook, or ErrNotFound.
func (s *Store) WebhookDelivery(ctx context.Context, webhookID, id string) (*holdfast.WebhookDelivery, error) {
	d, err := one(ctx, s.db, scanDelivery, queryDelivery, webhookID, id)
	return d, wrapf(err, "delivery %s of webhook %s", id, webhookID)
}

// WebhookDeliveries returns one page of a webhook's deliveries, newest
// first by ID.
func (s *Store) WebhookDeliveries(ctx context.Context, webhookID string, f holdfast.DeliveryFilter) ([]*holdfast.WebhookDelivery, error) {
	q, args := queryDeliveries, []any{webhookID, limit(f.Limit)}
	if f.Before != "" {
		q, args = queryDeliveriesBefore, append(args, f.Before)
	}
	out, err := all(ctx, s.db, scanDelivery, q, args...)
	return out, wrapf(err, "deliveries of webhook %s", webhookID)
}

// ReplayWebhookDelivery makes a delivery pending again if it is still in
// state from and appends its event, targeted at the webhook, to the
// outbox, in one transaction. ErrNotFound for an unknown delivery,
// ErrConflict when it is no longer in from.
func (s *Store) ReplayWebhookDelivery(ctx context.Context, webhookID, id string, from holdfast.DeliveryState, at time.Time) (*holdfast.WebhookDelivery, error) {
	at = s.orNow(at)
	var d *holdfast.WebhookDelivery
	err := s.db.Tx(ctx, func(tx Executor) error {
		var err error
		d, err = one(ctx, tx, scanDelivery, queryReplayDelivery, webhookID, id, string(from), s.time(at), string(holdfast.DeliveryPending))
		if errors.Is(err, holdfast.ErrNotFound) {
			return notFoundOr(ctx, tx, "not "+string(from), queryDeliveryExists, webhookID, id)
		}
		if err != nil {
			return err
		}
		return s.appendOutbox(ctx, tx, []holdfast.OutboxEvent{{
			ID: d.EventID, Type: d.EventType, Payload: d.Payload, CreatedAt: at,
			WebhookID: webhookID, Replay: len(d.Attempts),
		}})
	})
	if err != nil {
		return nil, fmt.Errorf("replay delivery %s of webhook %s: %w", id, webhookID, err)
	}
	return d, nil
}

// scanWebhook reads one row of webhookColumns.
func scanWebhook(r Row) (*holdfast.Webhook, error) {
	var w holdfast.Webhook
	err := r.Scan(&w.ID, &w.URL, listDest(&w.Events), &w.Secret, timeDest(&w.CreatedAt), timeDest(&w.DisabledAt), &w.DisabledReason)
	return &w, err
}

// scanDelivery reads one row of deliveryColumns.
func scanDelivery(r Row) (*holdfast.WebhookDelivery, error) {
	var (
		d               holdfast.WebhookDelivery
		state, attempts string
	)
	if err := r.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.Payload, &state, &attempts,
		timeDest(&d.CreatedAt), timeDest(&d.UpdatedAt)); err != nil {
		return nil, err
	}
	var err error
	if d.Attempts, err = decodeEntries(attempts, func(a *holdfast.WebhookAttempt) *time.Time { return &a.At }); err != nil {
		return nil, fmt.Errorf("attempts of delivery %s: %w", d.ID, err)
	}
	d.State = holdfast.DeliveryState(state)
	return &d, nil
}

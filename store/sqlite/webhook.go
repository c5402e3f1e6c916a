package sqlite

import (
	"context"
	"database/sql"
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
	_, err := s.db.ExecContext(ctx, queryInsertWebhook, w.ID, w.URL, encodeList(w.Events), nonNilBytes(w.Secret),
		micros(w.CreatedAt), nullMicros(w.DisabledAt), w.DisabledReason)
	if isUnique(err) {
		return fmt.Errorf("create webhook %s: %w: %w", w.ID, holdfast.ErrConflict, err)
	}
	if err != nil {
		return fmt.Errorf("create webhook %s: %w", w.ID, err)
	}
	return nil
}

// Webhook returns one webhook, or ErrNotFound.
func (s *Store) Webhook(ctx context.Context, id string) (*holdfast.Webhook, error) {
	w, err := scanWebhook(s.db.QueryRowContext(ctx, queryWebhook, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("webhook %s: %w", id, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", id, err)
	}
	return w, nil
}

// Webhooks returns every webhook, ordered by ID.
func (s *Store) Webhooks(ctx context.Context) ([]*holdfast.Webhook, error) {
	rows, err := s.db.QueryContext(ctx, queryWebhooks)
	if err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	defer rows.Close()
	var out []*holdfast.Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("webhooks: %w", err)
	}
	return out, nil
}

// DeleteWebhook removes a webhook and, through the foreign key's cascade,
// its deliveries. It returns ErrNotFound if the webhook does not exist.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, queryDeleteWebhook, id)
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("delete webhook %s: %w", id, holdfast.ErrNotFound)
	}
	return nil
}

// SetWebhookSecret replaces the webhook's sealed signing secret.
// ErrNotFound for an unknown webhook.
func (s *Store) SetWebhookSecret(ctx context.Context, id string, sealed []byte) error {
	res, err := s.db.ExecContext(ctx, querySetWebhookSecret, sealed, id)
	if err != nil {
		return fmt.Errorf("set secret of webhook %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set secret of webhook %s: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("set secret of webhook %s: %w", id, holdfast.ErrNotFound)
	}
	return nil
}

// SwapWebhookSecret replaces the webhook's sealed signing secret with
// sealed if it is still byte-equal to old. It returns ErrNotFound for an
// unknown webhook and ErrConflict, with nothing changed, when the secret
// is no longer old.
func (s *Store) SwapWebhookSecret(ctx context.Context, id string, old, sealed []byte) error {
	if old == nil {
		old = []byte{} // the secret is never NULL
	}
	res, err := s.db.ExecContext(ctx, querySwapWebhookSecret, sealed, id, old)
	if err != nil {
		return fmt.Errorf("swap secret of webhook %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("swap secret of webhook %s: %w", id, err)
	}
	if n > 0 {
		return nil
	}
	// Either no such webhook, or its secret changed.
	var one int
	err = s.db.QueryRowContext(ctx, queryWebhookExists, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("swap secret of webhook %s: %w", id, holdfast.ErrNotFound)
	case err != nil:
		return fmt.Errorf("swap secret of webhook %s: %w", id, err)
	}
	return fmt.Errorf("swap secret of webhook %s: %w: secret changed", id, holdfast.ErrConflict)
}

// DisableWebhook sets the webhook's DisabledAt (a zero at means now) and
// DisabledReason, unless it is disabled already. ErrNotFound for an
// unknown webhook.
func (s *Store) DisableWebhook(ctx context.Context, id string, at time.Time, reason string) error {
	res, err := s.db.ExecContext(ctx, queryDisableWebhook, micros(s.orNow(at)), reason, id)
	if err != nil {
		return fmt.Errorf("disable webhook %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("disable webhook %s: %w", id, err)
	} else if n > 0 {
		return nil
	}
	var one int
	err = s.db.QueryRowContext(ctx, queryWebhookExists, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("disable webhook %s: %w", id, holdfast.ErrNotFound)
	}
	if err != nil {
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
	created := orTime(d.CreatedAt, a.At)
	out, err := scanDelivery(s.db.QueryRowContext(ctx, queryRecordAttempt,
		id, d.WebhookID, d.EventID, d.EventType, nonNilBytes(d.Payload), string(d.State), string(attempt),
		micros(created), micros(a.At)))
	if isForeignKey(err) {
		return nil, fmt.Errorf("record attempt of event %s to webhook %s: %w", d.EventID, d.WebhookID, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("record attempt of event %s to webhook %s: %w", d.EventID, d.WebhookID, err)
	}
	return out, nil
}

// WebhookDelivery returns one delivery of a webhook, or ErrNotFound.
func (s *Store) WebhookDelivery(ctx context.Context, webhookID, id string) (*holdfast.WebhookDelivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, queryDelivery, webhookID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("delivery %s of webhook %s: %w", id, webhookID, holdfast.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("delivery %s of webhook %s: %w", id, webhookID, err)
	}
	return d, nil
}

// WebhookDeliveries returns one page of a webhook's deliveries, newest
// first by ID.
func (s *Store) WebhookDeliveries(ctx context.Context, webhookID string, f holdfast.DeliveryFilter) ([]*holdfast.WebhookDelivery, error) {
	var (
		rows *sql.Rows
		err  error
	)
	if f.Before == "" {
		rows, err = s.db.QueryContext(ctx, queryDeliveries, webhookID, limit(f.Limit))
	} else {
		rows, err = s.db.QueryContext(ctx, queryDeliveriesBefore, webhookID, f.Before, limit(f.Limit))
	}
	if err != nil {
		return nil, fmt.Errorf("deliveries of webhook %s: %w", webhookID, err)
	}
	defer rows.Close()
	var out []*holdfast.WebhookDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("deliveries of webhook %s: %w", webhookID, err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("deliveries of webhook %s: %w", webhookID, err)
	}
	return out, nil
}

// ChangeWebhookDelivery moves a delivery from state from to state to.
// ErrNotFound for an unknown delivery, ErrConflict when it is no longer in
// from.
func (s *Store) ChangeWebhookDelivery(ctx context.Context, webhookID, id string, from, to holdfast.DeliveryState) (*holdfast.WebhookDelivery, error) {
	d, err := scanDelivery(s.db.QueryRowContext(ctx, queryChangeDelivery, webhookID, id, string(from), string(to), micros(s.now())))
	if err == nil {
		return d, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("change delivery %s of webhook %s: %w", id, webhookID, err)
	}
	var one int
	err = s.db.QueryRowContext(ctx, queryDeliveryExists, webhookID, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("change delivery %s of webhook %s: %w", id, webhookID, holdfast.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("change delivery %s of webhook %s: %w", id, webhookID, err)
	}
	return nil, fmt.Errorf("change delivery %s of webhook %s: not %s: %w", id, webhookID, from, holdfast.ErrConflict)
}

// scanWebhook reads one row of webhookColumns.
func scanWebhook(r rowScanner) (*holdfast.Webhook, error) {
	var (
		w          holdfast.Webhook
		events     string
		created    int64
		disabledAt sql.NullInt64
	)
	if err := r.Scan(&w.ID, &w.URL, &events, &w.Secret, &created, &disabledAt, &w.DisabledReason); err != nil {
		return nil, err
	}
	var err error
	if w.Events, err = decodeList(events); err != nil {
		return nil, fmt.Errorf("events of webhook %s: %w", w.ID, err)
	}
	w.CreatedAt, w.DisabledAt = fromMicros(created), fromNullMicros(disabledAt)
	return &w, nil
}

// scanDelivery reads one row of deliveryColumns.
func scanDelivery(r rowScanner) (*holdfast.WebhookDelivery, error) {
	var (
		d                  holdfast.WebhookDelivery
		state, attempts    string
		created, updatedAt int64
	)
	if err := r.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.Payload, &state, &attempts, &created, &updatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(attempts), &d.Attempts); err != nil {
		return nil, fmt.Errorf("attempts of delivery %s: %w", d.ID, err)
	}
	for i := range d.Attempts {
		d.Attempts[i].At = d.Attempts[i].At.UTC()
	}
	if len(d.Attempts) == 0 {
		d.Attempts = nil
	}
	d.State = holdfast.DeliveryState(state)
	d.CreatedAt, d.UpdatedAt = fromMicros(created), fromMicros(updatedAt)
	return &d, nil
}

// nonNilBytes returns b, or an empty slice for nil: the columns are NOT
// NULL.
func nonNilBytes(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// webhookTests are the conformance tests of webhooks and their deliveries.
var webhookTests = []conformanceTest{
	{"Webhooks", testWebhooks},
	{"DisableWebhook", testDisableWebhook},
	{"SetWebhookSecret", testSetWebhookSecret},
	{"SwapWebhookSecret", testSwapWebhookSecret},
	{"RecordWebhookAttempt", testRecordWebhookAttempt},
	{"WebhookDeliveriesPaging", testWebhookDeliveriesPaging},
	{"ReplayWebhookDelivery", testReplayWebhookDelivery},
	{"DeleteWebhookDeletesDeliveries", testDeleteWebhookDeletesDeliveries},
}

// newWebhook returns a complete, enabled webhook.
func newWebhook() *holdfast.Webhook {
	id := newID("whk")
	return &holdfast.Webhook{
		ID: id, URL: "https://crm.example.test/hooks/" + id,
		Events: []string{"inbox.state_changed", "send.sent"}, Secret: []byte("sealed " + id),
		CreatedAt: t0,
	}
}

// mustCreateWebhook stores w and returns it as the store keeps it.
func mustCreateWebhook(t *testing.T, s holdfast.Store, w *holdfast.Webhook) *holdfast.Webhook {
	t.Helper()
	if err := s.CreateWebhook(t.Context(), w); err != nil {
		t.Fatalf("CreateWebhook(%s) = %v", w.ID, err)
	}
	return w
}

func testWebhooks(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	a := mustCreateWebhook(t, s, newWebhook())
	if !a.CreatedAt.Equal(stored(t0)) || a.CreatedAt.Location() != time.UTC {
		t.Errorf("CreateWebhook set CreatedAt = %v; want %v", a.CreatedAt, stored(t0))
	}
	b := newWebhook()
	b.Events, b.CreatedAt = []string{"*"}, time.Time{}
	mustCreateWebhook(t, s, b)
	if b.CreatedAt.IsZero() {
		t.Errorf("CreateWebhook left a zero CreatedAt")
	}

	got, err := s.Webhook(ctx, a.ID)
	if err != nil {
		t.Fatalf("Webhook(%s) = %v", a.ID, err)
	}
	if diff := cmp.Diff(a, got); diff != "" {
		t.Errorf("Webhook(%s) mismatch (-want +got):\n%s", a.ID, diff)
	}
	if got.Disabled() {
		t.Errorf("a new webhook is disabled")
	}
	all, err := s.Webhooks(ctx)
	if err != nil {
		t.Fatalf("Webhooks = %v", err)
	}
	want := []*holdfast.Webhook{a, b}
	if b.ID < a.ID {
		want = []*holdfast.Webhook{b, a}
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("Webhooks mismatch (-want +got):\n%s", diff)
	}

	dup := newWebhook()
	dup.ID = a.ID
	if err := s.CreateWebhook(ctx, dup); !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("CreateWebhook with a taken ID = %v; want ErrConflict", err)
	}
	if _, err := s.Webhook(ctx, newID("whk")); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("Webhook(unknown) = %v; want ErrNotFound", err)
	}
	if err := s.DeleteWebhook(ctx, a.ID); err != nil {
		t.Fatalf("DeleteWebhook(%s) = %v", a.ID, err)
	}
	if err := s.DeleteWebhook(ctx, a.ID); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("DeleteWebhook twice = %v; want ErrNotFound", err)
	}
	if _, err := s.Webhook(ctx, a.ID); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("Webhook(deleted) = %v; want ErrNotFound", err)
	}
	if all, err := s.Webhooks(ctx); err != nil || len(all) != 1 || all[0].ID != b.ID {
		t.Errorf("Webhooks after a delete = %v, %v; want only %s", all, err, b.ID)
	}
}

func testSetWebhookSecret(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	w := mustCreateWebhook(t, s, newWebhook())
	if err := s.SetWebhookSecret(ctx, w.ID, []byte("resealed")); err != nil {
		t.Fatalf("SetWebhookSecret = %v", err)
	}
	got, err := s.Webhook(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Secret) != "resealed" || got.URL != w.URL {
		t.Errorf("after SetWebhookSecret: secret %q, url %q; want the new secret and the same url", got.Secret, got.URL)
	}
	if err := s.SetWebhookSecret(ctx, "whk_unknown", []byte("x")); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SetWebhookSecret(unknown) = %v, want ErrNotFound", err)
	}
}

func testSwapWebhookSecret(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	w := mustCreateWebhook(t, s, newWebhook())
	other := mustCreateWebhook(t, s, newWebhook())
	sealed := []byte("swapped sealed secret \x00\xff")
	if err := s.SwapWebhookSecret(ctx, w.ID, w.Secret, sealed); err != nil {
		t.Fatalf("SwapWebhookSecret from the stored secret = %v", err)
	}
	got, err := s.Webhook(ctx, w.ID)
	if err != nil {
		t.Fatalf("Webhook = %v", err)
	}
	want := *w
	want.Secret = sealed
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("SwapWebhookSecret stored (-want +got):\n%s", diff)
	}

	// A compare-and-set from anything but the stored value changes nothing.
	for _, tt := range []struct {
		name string
		old  []byte
	}{
		{"previous", w.Secret},
		{"prefix", sealed[:len(sealed)-1]},
		{"longer", append(slices.Clone(sealed), 0)},
		{"nil", nil},
		{"empty", []byte{}},
	} {
		err := s.SwapWebhookSecret(ctx, w.ID, tt.old, []byte("lost update"))
		if !errors.Is(err, holdfast.ErrConflict) {
			t.Errorf("SwapWebhookSecret from the %s secret = %v; want ErrConflict", tt.name, err)
		}
	}
	after, err := s.Webhook(ctx, w.ID)
	if err != nil {
		t.Fatalf("Webhook = %v", err)
	}
	if diff := cmp.Diff(got, after); diff != "" {
		t.Errorf("conflicting SwapWebhookSecret changed the webhook (-want +got):\n%s", diff)
	}
	// Another webhook's secret is left alone.
	if got, err := s.Webhook(ctx, other.ID); err != nil || string(got.Secret) != string(other.Secret) {
		t.Errorf("other webhook after SwapWebhookSecret = %v, %v; want its secret %q unchanged", got, err, other.Secret)
	}

	id := newID("whk")
	if err := s.SwapWebhookSecret(ctx, id, nil, sealed); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SwapWebhookSecret(%s) = %v; want ErrNotFound", id, err)
	}
	if err := s.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatalf("DeleteWebhook = %v", err)
	}
	if err := s.SwapWebhookSecret(ctx, w.ID, sealed, []byte("after delete")); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SwapWebhookSecret of a deleted webhook = %v; want ErrNotFound", err)
	}
}

func testDisableWebhook(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	w := mustCreateWebhook(t, s, newWebhook())
	at := t0.Add(time.Hour)
	if err := s.DisableWebhook(ctx, w.ID, at, "gone"); err != nil {
		t.Fatalf("DisableWebhook = %v", err)
	}
	// A second disabling keeps the first.
	if err := s.DisableWebhook(ctx, w.ID, at.Add(time.Hour), "again"); err != nil {
		t.Fatalf("DisableWebhook again = %v", err)
	}
	got, err := s.Webhook(ctx, w.ID)
	if err != nil {
		t.Fatalf("Webhook = %v", err)
	}
	if !got.Disabled() || !got.DisabledAt.Equal(stored(at)) || got.DisabledAt.Location() != time.UTC || got.DisabledReason != "gone" {
		t.Errorf("disabled webhook has DisabledAt %v, reason %q; want %v, gone", got.DisabledAt, got.DisabledReason, stored(at))
	}
	if err := s.DisableWebhook(ctx, newID("whk"), at, "gone"); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("DisableWebhook(unknown) = %v; want ErrNotFound", err)
	}
}

// newDelivery returns the delivery of a new event to webhook w.
func newDelivery(w *holdfast.Webhook, state holdfast.DeliveryState) *holdfast.WebhookDelivery {
	evt := newID("evt")
	return &holdfast.WebhookDelivery{
		WebhookID: w.ID, EventID: evt, EventType: "send.sent",
		Payload: []byte(`{"id":"` + evt + `"}`), State: state,
	}
}

func testRecordWebhookAttempt(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	w := mustCreateWebhook(t, s, newWebhook())
	d := newDelivery(w, holdfast.DeliveryPending)
	first := holdfast.WebhookAttempt{At: t0, StatusCode: 500, Duration: 1500 * time.Microsecond}
	got, err := s.RecordWebhookAttempt(ctx, d, first)
	if err != nil {
		t.Fatalf("RecordWebhookAttempt = %v", err)
	}
	if !holdfast.ValidID("whd", got.ID) {
		t.Errorf("RecordWebhookAttempt made delivery ID %q; want whd_...", got.ID)
	}
	if d.ID != "" {
		t.Errorf("RecordWebhookAttempt modified its argument: ID %q", d.ID)
	}
	want := *d
	want.ID = got.ID
	want.Attempts = []holdfast.WebhookAttempt{{At: stored(t0), StatusCode: 500, Duration: 1500 * time.Microsecond}}
	want.CreatedAt, want.UpdatedAt = stored(t0), stored(t0)
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("RecordWebhookAttempt mismatch (-want +got):\n%s", diff)
	}

	// A second attempt appends; the ID given is ignored for an existing
	// delivery.
	d2 := *d
	d2.ID, d2.State = newID("whd"), holdfast.DeliverySucceeded
	second := holdfast.WebhookAttempt{At: t0.Add(time.Minute), Error: "connection refused", Duration: time.Second}
	got, err = s.RecordWebhookAttempt(ctx, &d2, second)
	if err != nil {
		t.Fatalf("RecordWebhookAttempt again = %v", err)
	}
	want.State, want.UpdatedAt = holdfast.DeliverySucceeded, stored(t0.Add(time.Minute))
	want.Attempts = append(want.Attempts, holdfast.WebhookAttempt{At: stored(t0.Add(time.Minute)), Error: "connection refused", Duration: time.Second})
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("second RecordWebhookAttempt mismatch (-want +got):\n%s", diff)
	}
	read, err := s.WebhookDelivery(ctx, w.ID, want.ID)
	if err != nil {
		t.Fatalf("WebhookDelivery = %v", err)
	}
	if diff := cmp.Diff(&want, read); diff != "" {
		t.Errorf("WebhookDelivery mismatch (-want +got):\n%s", diff)
	}
	checkUTC(t, "delivery", read.CreatedAt, read.UpdatedAt, read.Attempts[0].At)

	// The caller's ID is kept for a new delivery.
	d3 := newDelivery(w, holdfast.DeliveryFailed)
	d3.ID = newID("whd")
	if got, err := s.RecordWebhookAttempt(ctx, d3, holdfast.WebhookAttempt{At: t0, StatusCode: 404}); err != nil || got.ID != d3.ID {
		t.Errorf("RecordWebhookAttempt with ID %s = %v, %v; want that ID", d3.ID, got, err)
	}

	other := mustCreateWebhook(t, s, newWebhook())
	if _, err := s.WebhookDelivery(ctx, other.ID, want.ID); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("WebhookDelivery of another webhook = %v; want ErrNotFound", err)
	}
	gone := newDelivery(&holdfast.Webhook{ID: newID("whk")}, holdfast.DeliveryPending)
	if _, err := s.RecordWebhookAttempt(ctx, gone, holdfast.WebhookAttempt{At: t0}); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("RecordWebhookAttempt for an unknown webhook = %v; want ErrNotFound", err)
	}
}

func testWebhookDeliveriesPaging(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	w := mustCreateWebhook(t, s, newWebhook())
	other := mustCreateWebhook(t, s, newWebhook())
	if _, err := s.RecordWebhookAttempt(ctx, newDelivery(other, holdfast.DeliveryPending), holdfast.WebhookAttempt{At: t0}); err != nil {
		t.Fatalf("RecordWebhookAttempt = %v", err)
	}
	var ids []string
	for i := range 5 {
		d := newDelivery(w, holdfast.DeliveryPending)
		d.ID = fmt.Sprintf("whd_%026d", i)
		if _, err := s.RecordWebhookAttempt(ctx, d, holdfast.WebhookAttempt{At: t0}); err != nil {
			t.Fatalf("RecordWebhookAttempt = %v", err)
		}
		ids = append([]string{d.ID}, ids...) // newest first
	}
	var got []string
	f := holdfast.DeliveryFilter{Limit: 2}
	for {
		page, err := s.WebhookDeliveries(ctx, w.ID, f)
		if err != nil {
			t.Fatalf("WebhookDeliveries(%+v) = %v", f, err)
		}
		for _, d := range page {
			got = append(got, d.ID)
		}
		if len(page) < f.Limit {
			break
		}
		f.Before = page[len(page)-1].ID
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("WebhookDeliveries pages mismatch (-want +got):\n%s", diff)
	}
	if page, err := s.WebhookDeliveries(ctx, newID("whk"), holdfast.DeliveryFilter{}); err != nil || len(page) != 0 {
		t.Errorf("WebhookDeliveries(unknown) = %v, %v; want none", page, err)
	}
}

// testReplayWebhookDelivery checks that a replay makes the delivery
// pending and appends its targeted outbox event in one transaction, and a
// replay that loses its compare-and-set does neither.
func testReplayWebhookDelivery(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	w := mustCreateWebhook(t, s, newWebhook())
	d, err := s.RecordWebhookAttempt(ctx, newDelivery(w, holdfast.DeliveryFailed), holdfast.WebhookAttempt{At: t0, StatusCode: 500})
	if err != nil {
		t.Fatalf("RecordWebhookAttempt = %v", err)
	}
	at := t0.Add(time.Hour)
	got, err := s.ReplayWebhookDelivery(ctx, w.ID, d.ID, holdfast.DeliveryFailed, at)
	if err != nil {
		t.Fatalf("ReplayWebhookDelivery = %v", err)
	}
	if got.State != holdfast.DeliveryPending || len(got.Attempts) != 1 {
		t.Errorf("ReplayWebhookDelivery = state %s, %d attempts; want pending, 1", got.State, len(got.Attempts))
	}
	want := []*holdfast.OutboxEvent{{
		ID: d.EventID, Type: d.EventType, Payload: d.Payload, CreatedAt: stored(at), WebhookID: w.ID, Replay: 1,
	}}
	if diff := cmp.Diff(want, unrelayed(t, s), ignoreSeq); diff != "" {
		t.Errorf("outbox after a replay mismatch (-want +got):\n%s", diff)
	}
	if _, err := s.ReplayWebhookDelivery(ctx, w.ID, d.ID, holdfast.DeliveryFailed, at); !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("ReplayWebhookDelivery from a state it left = %v; want ErrConflict", err)
	}
	if _, err := s.ReplayWebhookDelivery(ctx, w.ID, newID("whd"), holdfast.DeliveryFailed, at); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("ReplayWebhookDelivery(unknown) = %v; want ErrNotFound", err)
	}
	if diff := cmp.Diff(want, unrelayed(t, s), ignoreSeq); diff != "" {
		t.Errorf("outbox after refused replays mismatch (-want +got):\n%s", diff)
	}
}

func testDeleteWebhookDeletesDeliveries(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	w := mustCreateWebhook(t, s, newWebhook())
	d, err := s.RecordWebhookAttempt(ctx, newDelivery(w, holdfast.DeliveryPending), holdfast.WebhookAttempt{At: t0})
	if err != nil {
		t.Fatalf("RecordWebhookAttempt = %v", err)
	}
	if err := s.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatalf("DeleteWebhook = %v", err)
	}
	if _, err := s.WebhookDelivery(ctx, w.ID, d.ID); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("WebhookDelivery after DeleteWebhook = %v; want ErrNotFound", err)
	}
	// Recreating the same ID starts afresh.
	again := newWebhook()
	again.ID = w.ID
	mustCreateWebhook(t, s, again)
	if page, err := s.WebhookDeliveries(ctx, w.ID, holdfast.DeliveryFilter{}); err != nil || len(page) != 0 {
		t.Errorf("WebhookDeliveries of a recreated webhook = %v, %v; want none", page, err)
	}
}

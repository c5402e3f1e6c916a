package webhook_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/webhook"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeQueue records the deliveries enqueued.
type fakeQueue struct {
	mu sync.Mutex
	ds []webhook.Delivery
}

func (q *fakeQueue) EnqueueDeliveries(_ context.Context, ds []webhook.Delivery) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ds = append(q.ds, ds...)
	return nil
}

func (q *fakeQueue) all() []webhook.Delivery {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.ds)
}

// fakeStore is a fixed list of webhooks.
type fakeStore struct {
	// WebhookStore's other methods are not called: they would panic.
	holdfast.WebhookStore
	hooks []*holdfast.Webhook
}

func (s *fakeStore) Webhooks(context.Context) ([]*holdfast.Webhook, error) { return s.hooks, nil }

func TestPublisherFansOut(t *testing.T) {
	t.Parallel()
	st := &fakeStore{hooks: []*holdfast.Webhook{
		{ID: "whk_all", Events: []string{"*"}},
		{ID: "whk_inbox", Events: []string{webhook.InboxStateChanged, webhook.InboxRecovered}},
		{ID: "whk_sends", Events: []string{webhook.SendSent}},
		{ID: "whk_disabled", Events: []string{"*"}, DisabledAt: time.Now()},
	}}
	q := &fakeQueue{}
	p, err := webhook.NewPublisher(webhook.PublisherConfig{Store: st, Queue: q, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	in := &holdfast.Inbox{ID: "inb_1", Email: "a@example.test", Provider: holdfast.ProviderIMAP, State: holdfast.StateConnected, Since: time.Now()}
	p.InboxStateChanged(t.Context(), in, holdfast.StatePaused) // state_changed and recovered
	p.SendChanged(t.Context(), &holdfast.Send{ID: "snd_1", State: holdfast.SendFailed, Reason: "recipient_refused"})
	p.SendChanged(t.Context(), &holdfast.Send{ID: "snd_2", State: holdfast.SendSending}) // nothing
	p.MessagesReceived(t.Context(), "inb_1", []holdfast.Message{{ID: "msg_1", Added: true}, {ID: "msg_2"}})
	if err := p.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	got := map[string][]string{} // webhook → event types
	for _, d := range q.all() {
		got[d.WebhookID] = append(got[d.WebhookID], d.EventType)
		var ev map[string]any
		if err := json.Unmarshal(d.Payload, &ev); err != nil || ev["id"] != d.EventID || ev["type"] != d.EventType {
			t.Errorf("payload %s does not match delivery %+v (%v)", d.Payload, d, err)
		}
	}
	want := map[string][]string{
		"whk_all":   {webhook.InboxStateChanged, webhook.InboxRecovered, webhook.SendFailed, webhook.MessageReceived},
		"whk_inbox": {webhook.InboxStateChanged, webhook.InboxRecovered},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries per webhook mismatch (-want +got):\n%s", diff)
	}
}

func TestPublisherDropsWhenFull(t *testing.T) {
	t.Parallel()
	p, err := webhook.NewPublisher(webhook.PublisherConfig{Store: &fakeStore{}, Queue: &fakeQueue{}, Logger: slog.New(slog.DiscardHandler), QueueSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 { // not started: nothing drains
		p.Publish(t.Context(), webhook.NewEvent(webhook.SendSent, nil, time.Now()))
	}
	if n := p.Dropped(); n != 3 {
		t.Errorf("Dropped() = %d; want 3", n)
	}
	if err := p.Stop(context.Background()); err != nil {
		t.Errorf("Stop before Start = %v", err)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	base := 10 * time.Second
	for _, tt := range []struct {
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{1, 0.5, 10 * time.Second},
		{2, 0.5, 20 * time.Second},
		{1, 0, 8 * time.Second},
		{1, 1, 12 * time.Second},
		{10, 0.5, webhook.MaxRetryWait},
		{100, 0.5, webhook.MaxRetryWait},
	} {
		if got := webhook.Backoff(base, tt.attempt, tt.rnd); got != tt.want {
			t.Errorf("Backoff(%v, %d, %v) = %v; want %v", base, tt.attempt, tt.rnd, got, tt.want)
		}
	}
}

package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/sqlite"
	"github.com/holdfast/holdfast/store/sqlite/sqlitetest"
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

// failingQueue refuses every enqueue, as a database that is down.
type failingQueue struct{}

func (failingQueue) EnqueueDeliveries(context.Context, []webhook.Delivery) error {
	return errors.New("database unreachable")
}

// relayBundle is a store with webhooks, and a relay on it.
type relayBundle struct {
	store *sqlite.Store
	queue *fakeQueue
}

func newRelayBundle(t *testing.T, hooks ...*holdfast.Webhook) *relayBundle {
	t.Helper()
	b := &relayBundle{store: sqlitetest.Open(t), queue: &fakeQueue{}}
	for _, w := range hooks {
		if err := b.store.CreateWebhook(t.Context(), w); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// relay returns a new relay on the bundle's store, delivering to q.
func (b *relayBundle) relay(t *testing.T, q webhook.Queue) *webhook.Relay {
	t.Helper()
	r, err := webhook.NewRelay(webhook.RelayConfig{Store: b.store, Queue: q, Logger: slog.New(slog.DiscardHandler), PollInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// incident stores an incident and, with it, its events.
func (b *relayBundle) incident(t *testing.T, id int64, evs []holdfast.OutboxEvent) {
	t.Helper()
	in := &holdfast.Incident{ID: id, Kind: holdfast.IncidentKind("provider_outage"), Provider: holdfast.ProviderMicrosoft, OpenedAt: time.Now()}
	err := b.store.SaveIncident(t.Context(), in, func(*holdfast.Incident) ([]holdfast.OutboxEvent, error) { return evs, nil })
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor waits until the queue holds n deliveries.
func (q *fakeQueue) waitFor(t *testing.T, n int) []webhook.Delivery {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ds := q.all()
		if len(ds) >= n || time.Now().After(deadline) {
			return ds
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRelayFansOut(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t,
		&holdfast.Webhook{ID: "whk_all", URL: "https://a.example.test/", Events: []string{"*"}},
		&holdfast.Webhook{ID: "whk_inbox", URL: "https://b.example.test/", Events: []string{webhook.InboxStateChanged, webhook.InboxRecovered}},
		&holdfast.Webhook{ID: "whk_sends", URL: "https://c.example.test/", Events: []string{webhook.SendSent}},
		&holdfast.Webhook{ID: "whk_disabled", URL: "https://d.example.test/", Events: []string{"*"}, DisabledAt: time.Now()},
	)
	now := time.Now()
	in := &holdfast.Inbox{ID: "inb_1", Email: "a@example.test", Provider: holdfast.ProviderIMAP, State: holdfast.StateConnected, Since: now}
	var evs []holdfast.OutboxEvent
	for _, f := range []func() ([]holdfast.OutboxEvent, error){
		func() ([]holdfast.OutboxEvent, error) { return webhook.InboxEvents(in, holdfast.StatePaused, now) },    // state_changed and recovered
		func() ([]holdfast.OutboxEvent, error) { return webhook.InboxEvents(in, holdfast.StateConnected, now) }, // none
		func() ([]holdfast.OutboxEvent, error) {
			return webhook.SendEvents(&holdfast.Send{ID: "snd_1", State: holdfast.SendFailed, Reason: "recipient_refused"}, now)
		},
		func() ([]holdfast.OutboxEvent, error) {
			return webhook.SendEvents(&holdfast.Send{ID: "snd_2", State: holdfast.SendSending}, now) // none
		},
		func() ([]holdfast.OutboxEvent, error) {
			return webhook.MessageEvents("inb_1", []holdfast.Message{{ID: "msg_1", Added: true}, {ID: "msg_2"}}, now)
		},
	} {
		e, err := f()
		if err != nil {
			t.Fatal(err)
		}
		evs = append(evs, e...)
	}
	b.incident(t, 1, evs)
	// A replay goes to its webhook alone, whatever it subscribed to.
	replay := holdfast.OutboxEvent{ID: evs[0].ID, Type: evs[0].Type, Payload: evs[0].Payload, CreatedAt: now, WebhookID: "whk_sends", Replay: 2}
	b.incident(t, 2, []holdfast.OutboxEvent{replay})

	r := b.relay(t, b.queue)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	got := map[string][]string{} // webhook → event types
	for _, d := range b.queue.all() {
		got[d.WebhookID] = append(got[d.WebhookID], d.EventType)
		var ev map[string]any
		if err := json.Unmarshal(d.Payload, &ev); err != nil || ev["id"] != d.EventID || ev["type"] != d.EventType {
			t.Errorf("payload %s does not match delivery %+v (%v)", d.Payload, d, err)
		}
		if d.WebhookID == "whk_sends" && d.Replay != 2 {
			t.Errorf("replay delivered as %+v; want replay 2", d)
		}
	}
	want := map[string][]string{
		"whk_all":   {webhook.InboxStateChanged, webhook.InboxRecovered, webhook.SendFailed, webhook.MessageReceived},
		"whk_inbox": {webhook.InboxStateChanged, webhook.InboxRecovered},
		"whk_sends": {webhook.InboxStateChanged},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deliveries per webhook mismatch (-want +got):\n%s", diff)
	}
	if left, err := b.store.OutboxEvents(t.Context(), 10); err != nil || len(left) != 0 {
		t.Errorf("outbox after the relay = %v, %v; want every event relayed", left, err)
	}
}

// TestRelayAfterCrash: events committed while no relay runs (the process
// died right after the write), or while one could not enqueue them, are
// delivered once a relay runs again.
func TestRelayAfterCrash(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t, &holdfast.Webhook{ID: "whk_all", URL: "https://a.example.test/", Events: []string{"*"}})
	first, err := webhook.IncidentEvents(&holdfast.Incident{ID: 1, Kind: "provider_outage"}, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.incident(t, 1, first) // no relay runs

	down := b.relay(t, failingQueue{}) // a relay whose queue is down
	if err := down.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	second, err := webhook.IncidentEvents(&holdfast.Incident{ID: 2, Kind: "provider_outage"}, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.incident(t, 2, second)
	down.Wake()
	time.Sleep(50 * time.Millisecond)
	if err := down.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if left, err := b.store.OutboxEvents(t.Context(), 10); err != nil || len(left) != 2 {
		t.Fatalf("outbox after a relay that could not enqueue = %v, %v; want both events left", left, err)
	}

	r := b.relay(t, b.queue)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop(context.Background()) })
	ds := b.queue.waitFor(t, 2)
	var ids []string
	for _, d := range ds {
		ids = append(ids, d.EventID)
	}
	if want := []string{first[0].ID, second[0].ID}; !slices.Equal(ids, want) {
		t.Errorf("delivered events %v; want %v, in order", ids, want)
	}
}

// TestRelayBurstDropsNothing: a burst well beyond the old in-memory
// queue's 10,000 events is relayed whole, none dropped.
func TestRelayBurstDropsNothing(t *testing.T) {
	t.Parallel()
	const n = 10_500
	b := newRelayBundle(t, &holdfast.Webhook{ID: "whk_all", URL: "https://a.example.test/", Events: []string{"*"}})
	msgs := make([]holdfast.Message, n)
	for i := range msgs {
		msgs[i] = holdfast.Message{ID: fmt.Sprintf("msg_%d", i), Added: true}
	}
	evs, err := webhook.MessageEvents("inb_1", msgs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.incident(t, 1, evs)
	r := b.relay(t, b.queue)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.queue.waitFor(t, n)
	// Stop relays whatever the goroutine has not reached yet.
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	ds := b.queue.all()
	seen := map[string]bool{}
	for _, d := range ds {
		seen[d.EventID] = true
	}
	if len(ds) != n || len(seen) != n {
		t.Errorf("%d deliveries of %d events; want %d of %d", len(ds), len(seen), n, n)
	}
}

// TestRelayStopRelaysWhatIsCommitted: Stop relays the events committed
// before it, also those the relay's goroutine has not reached.
func TestRelayStopRelaysWhatIsCommitted(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t, &holdfast.Webhook{ID: "whk_all", URL: "https://a.example.test/", Events: []string{"*"}})
	r, err := webhook.NewRelay(webhook.RelayConfig{Store: b.store, Queue: b.queue, Logger: slog.New(slog.DiscardHandler), PollInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs, err := webhook.IncidentEvents(&holdfast.Incident{ID: 1, Kind: "provider_outage"}, true, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the goroutine's first pass found nothing
	b.incident(t, 1, evs)             // and no Wake
	if err := r.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ds := b.queue.all(); len(ds) != 1 || ds[0].EventID != evs[0].ID {
		t.Errorf("deliveries after Stop = %+v; want the committed event", ds)
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

// slowQueue takes a while per enqueue, or until its context ends.
type slowQueue struct {
	fakeQueue
	each time.Duration
}

func (q *slowQueue) EnqueueDeliveries(ctx context.Context, ds []webhook.Delivery) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(q.each):
	}
	return q.fakeQueue.EnqueueDeliveries(ctx, ds)
}

// TestRelayStopWithinBudget: with a backlog that takes longer to relay
// than Stop's budget, Stop returns within the budget (it waited for the
// whole backlog before); what is left stays in the outbox.
func TestRelayStopWithinBudget(t *testing.T) {
	t.Parallel()
	b := newRelayBundle(t, &holdfast.Webhook{ID: "whk_all", URL: "https://a.example.test/", Events: []string{"*"}})
	msgs := make([]holdfast.Message, 2000)
	for i := range msgs {
		msgs[i] = holdfast.Message{ID: fmt.Sprintf("msg_%d", i), Added: true}
	}
	evs, err := webhook.MessageEvents("inb_1", msgs, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.incident(t, 1, evs)
	q := &slowQueue{each: 100 * time.Millisecond}
	r := b.relay(t, q)
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	q.waitFor(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_ = r.Stop(ctx)
	if took := time.Since(start); took > time.Second {
		t.Errorf("Stop with a 200ms budget took %v", took.Round(time.Millisecond))
	}
	left, err := b.store.OutboxEvents(t.Context(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) == 0 {
		t.Errorf("Stop relayed the whole backlog; want some left in the outbox for the next start")
	}
}

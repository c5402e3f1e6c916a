package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/jobs"
	"github.com/holdfast/holdfast/webhook"
)

// receiver is a webhook endpoint that verifies signatures and
// de-duplicates events by ID, as a host application should. Its status
// function decides each answer from the number of requests for the event
// so far (1 for the first).
type receiver struct {
	t      *testing.T
	secret []byte
	status func(n int) int

	mu       sync.Mutex
	requests map[string]int // event ID → requests
	handled  []string       // event IDs, once each
	srv      *httptest.Server
}

func newReceiver(t *testing.T, secret string, status func(n int) int) *receiver {
	rc := &receiver{t: t, secret: []byte(secret), status: status, requests: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if err := webhook.Verify(rc.secret, r.Header.Get(webhook.SignatureHeader), body, 0, time.Now()); err != nil {
		rc.t.Errorf("receiver: signature of %s: %v", body, err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := r.Header.Get(webhook.EventIDHeader)
	if !strings.Contains(string(body), `"id":"`+id+`"`) {
		rc.t.Errorf("receiver: header event ID %q not in body %s", id, body)
	}
	rc.mu.Lock()
	rc.requests[id]++
	n := rc.requests[id]
	st := rc.status(n)
	if st/100 == 2 && !slices.Contains(rc.handled, id) {
		rc.handled = append(rc.handled, id)
	}
	rc.mu.Unlock()
	w.WriteHeader(st)
}

func (rc *receiver) count(id string) (requests, handled int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, h := range rc.handled {
		if h == id {
			handled++
		}
	}
	return rc.requests[id], handled
}

// webhookBundle is a started runner that delivers webhooks.
type webhookBundle struct {
	st holdfast.Store
	r  *jobs.Runner
}

func setupWebhooks(t *testing.T, e engine, guard *webhook.Guard) *webhookBundle {
	t.Helper()
	sender := webhook.NewSender(guard, 2*time.Second)
	t.Cleanup(sender.Close)
	var st holdfast.Store
	var r *jobs.Runner
	st, r = e.setup(t, jobs.WithWebhooks(jobs.WebhookConfig{
		Store: storeOf(&st), Sender: sender, RetryBase: 50 * time.Millisecond,
		OpenSecret: func(_ string, sealed []byte) ([]byte, error) { return slices.Clone(sealed), nil },
	}))
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("Start = %v", err)
	}
	t.Cleanup(func() { r.Stop(context.Background()) })
	return &webhookBundle{st: st, r: r}
}

// lazyStore lets the worker's config name the store before setup returns
// it.
type lazyStore struct {
	// WebhookStore's other methods are not called: they would panic.
	holdfast.WebhookStore
	p *holdfast.Store
}

func storeOf(p *holdfast.Store) jobs.WebhookStore { return lazyStore{p: p} }

func (l lazyStore) Webhook(ctx context.Context, id string) (*holdfast.Webhook, error) {
	return (*l.p).Webhook(ctx, id)
}

func (l lazyStore) DisableWebhook(ctx context.Context, id string, at time.Time, reason string) error {
	return (*l.p).DisableWebhook(ctx, id, at, reason)
}

func (l lazyStore) RecordWebhookAttempt(ctx context.Context, d *holdfast.WebhookDelivery, a holdfast.WebhookAttempt) (*holdfast.WebhookDelivery, error) {
	return (*l.p).RecordWebhookAttempt(ctx, d, a)
}

// addWebhook stores a webhook to url signed with secret.
func (b *webhookBundle) addWebhook(t *testing.T, url, secret string) *holdfast.Webhook {
	t.Helper()
	w := &holdfast.Webhook{ID: holdfast.NewID("whk", time.Now()), URL: url, Events: []string{"*"}, Secret: []byte(secret)}
	if err := b.st.CreateWebhook(t.Context(), w); err != nil {
		t.Fatalf("CreateWebhook = %v", err)
	}
	return w
}

// publish enqueues one event for webhook w, its round of attempts begun
// at since.
func (b *webhookBundle) publish(t *testing.T, w *holdfast.Webhook, ev webhook.Event, since time.Time, replay int) {
	t.Helper()
	payload, err := jsonMarshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	d := webhook.Delivery{WebhookID: w.ID, EventID: ev.ID, EventType: ev.Type, Payload: payload, Since: since, Replay: replay}
	if err := b.r.EnqueueDeliveries(t.Context(), []webhook.Delivery{d}); err != nil {
		t.Fatalf("EnqueueDeliveries = %v", err)
	}
}

// waitDelivery waits until the delivery of event evID to w satisfies ok.
func (b *webhookBundle) waitDelivery(t *testing.T, w *holdfast.Webhook, evID string, ok func(d *holdfast.WebhookDelivery) bool) *holdfast.WebhookDelivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last *holdfast.WebhookDelivery
	for time.Now().Before(deadline) {
		ds, err := b.st.WebhookDeliveries(t.Context(), w.ID, holdfast.DeliveryFilter{})
		if err != nil {
			t.Fatalf("WebhookDeliveries = %v", err)
		}
		for _, d := range ds {
			if d.EventID == evID {
				last = d
				if ok(d) {
					return d
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("after 30 s the delivery of %s is %+v", evID, last)
	return nil
}

func TestWebhookDelivery(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			testWebhookDelivery(t, e)
		})
	}
}

func testWebhookDelivery(t *testing.T, e engine) {
	b := setupWebhooks(t, e, &webhook.Guard{AllowPrivate: true})

	t.Run("RetriedUntil2xx", func(t *testing.T) {
		rc := newReceiver(t, "whsec_a", func(n int) int {
			if n <= 2 {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		w := b.addWebhook(t, rc.srv.URL+"/hooks", "whsec_a")
		ev := webhook.NewEvent(webhook.SendSent, map[string]string{"id": "snd_1"}, time.Now())
		b.publish(t, w, ev, ev.CreatedAt, 0)
		b.publish(t, w, ev, ev.CreatedAt, 0) // a duplicate enqueue makes no second job
		d := b.waitDelivery(t, w, ev.ID, func(d *holdfast.WebhookDelivery) bool { return d.State == holdfast.DeliverySucceeded })
		codes := []int{}
		for _, a := range d.Attempts {
			codes = append(codes, a.StatusCode)
		}
		if !slices.Equal(codes, []int{500, 500, 200}) {
			t.Errorf("attempts' status codes = %v; want [500 500 200]", codes)
		}
		time.Sleep(300 * time.Millisecond) // no further attempt
		if req, handled := rc.count(ev.ID); req != 3 || handled != 1 {
			t.Errorf("receiver got %d requests for %s, handled %d; want 3, 1", req, ev.ID, handled)
		}
	})

	t.Run("FailedThenReplayed", func(t *testing.T) {
		down := true
		var mu sync.Mutex
		rc := newReceiver(t, "whsec_b", func(int) int {
			mu.Lock()
			defer mu.Unlock()
			if down {
				return http.StatusServiceUnavailable
			}
			return http.StatusNoContent
		})
		w := b.addWebhook(t, rc.srv.URL, "whsec_b")
		ev := webhook.NewEvent(webhook.InboxNeedsReconnect, map[string]string{"inbox_id": "inb_1"}, time.Now())
		// Its 24 hours of retries are over: one attempt, then failed.
		b.publish(t, w, ev, time.Now().Add(-webhook.RetryWindow), 0)
		d := b.waitDelivery(t, w, ev.ID, func(d *holdfast.WebhookDelivery) bool { return d.State == holdfast.DeliveryFailed })
		if len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 503 {
			t.Errorf("failed delivery's attempts = %+v; want one 503", d.Attempts)
		}
		mu.Lock()
		down = false
		mu.Unlock()
		b.publish(t, w, ev, time.Now(), 1) // the replay
		d = b.waitDelivery(t, w, ev.ID, func(d *holdfast.WebhookDelivery) bool { return d.State == holdfast.DeliverySucceeded })
		if len(d.Attempts) != 2 || d.Attempts[1].StatusCode != 204 {
			t.Errorf("replayed delivery's attempts = %+v; want a 503 then a 204", d.Attempts)
		}
		if req, handled := rc.count(ev.ID); req != 2 || handled != 1 {
			t.Errorf("receiver got %d requests for %s, handled %d; want 2 with the same event ID, 1", req, ev.ID, handled)
		}
	})

	t.Run("GoneDisables", func(t *testing.T) {
		rc := newReceiver(t, "whsec_c", func(int) int { return http.StatusGone })
		w := b.addWebhook(t, rc.srv.URL, "whsec_c")
		ev := webhook.NewEvent(webhook.SendFailed, nil, time.Now())
		b.publish(t, w, ev, ev.CreatedAt, 0)
		b.waitDelivery(t, w, ev.ID, func(d *holdfast.WebhookDelivery) bool { return d.State == holdfast.DeliveryFailed })
		got, err := b.st.Webhook(t.Context(), w.ID)
		if err != nil || !got.Disabled() {
			t.Fatalf("Webhook after a 410 = %+v, %v; want disabled", got, err)
		}
		ev2 := webhook.NewEvent(webhook.SendFailed, nil, time.Now())
		b.publish(t, w, ev2, ev2.CreatedAt, 0)
		time.Sleep(500 * time.Millisecond)
		if req, _ := rc.count(ev2.ID); req != 0 {
			t.Errorf("a disabled webhook got %d requests; want none", req)
		}
	})

	t.Run("DeleteStopsDeliveries", func(t *testing.T) {
		rc := newReceiver(t, "whsec_d", func(int) int { return http.StatusInternalServerError })
		w := b.addWebhook(t, rc.srv.URL, "whsec_d")
		ev := webhook.NewEvent(webhook.MessageReceived, nil, time.Now())
		b.publish(t, w, ev, ev.CreatedAt, 0)
		b.waitDelivery(t, w, ev.ID, func(d *holdfast.WebhookDelivery) bool { return len(d.Attempts) >= 1 })
		if err := b.st.DeleteWebhook(t.Context(), w.ID); err != nil {
			t.Fatalf("DeleteWebhook = %v", err)
		}
		time.Sleep(300 * time.Millisecond) // an attempt in flight ends
		before, _ := rc.count(ev.ID)
		time.Sleep(time.Second) // many retry intervals
		if after, _ := rc.count(ev.ID); after != before {
			t.Errorf("receiver got %d more requests after the webhook was deleted; want none", after-before)
		}
	})
}

// TestWebhookDeliveryRefusesPrivate shows the guard at delivery time: a
// webhook stored with a loopback URL (as if its DNS answer changed after
// it was checked) is never reached.
func TestWebhookDeliveryRefusesPrivate(t *testing.T) {
	t.Parallel()
	b := setupWebhooks(t, engines[0], &webhook.Guard{})
	rc := newReceiver(t, "whsec_e", func(int) int { return http.StatusOK })
	port := rc.srv.URL[strings.LastIndexByte(rc.srv.URL, ':')+1:]
	for _, url := range []string{rc.srv.URL, "http://localhost:" + port + "/"} {
		w := b.addWebhook(t, url, "whsec_e")
		ev := webhook.NewEvent(webhook.SendSent, nil, time.Now())
		b.publish(t, w, ev, time.Now().Add(-webhook.RetryWindow), 0)
		d := b.waitDelivery(t, w, ev.ID, func(d *holdfast.WebhookDelivery) bool { return d.State == holdfast.DeliveryFailed })
		if a := d.Attempts[0]; a.StatusCode != 0 || !strings.Contains(a.Error, "refused address") {
			t.Errorf("attempt to %s = %+v; want refused", url, a)
		}
		if req, _ := rc.count(ev.ID); req != 0 {
			t.Errorf("the loopback receiver got %d requests; want none", req)
		}
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// TestWebhookNewMailBeforeStateFlood: a provider outage queues a state
// change for every inbox; a message.received enqueued after them is
// delivered in the first round of work, not after the flood (it was
// delivered last: the load test's new mail waited 15 minutes behind
// 300,000 state events).
func TestWebhookNewMailBeforeStateFlood(t *testing.T) {
	t.Parallel()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Parallel()
			b := setupWebhooks(t, e, &webhook.Guard{AllowPrivate: true})
			rc := newReceiver(t, "s3cret", func(int) int { return http.StatusOK })
			w := b.addWebhook(t, rc.srv.URL, "s3cret")
			const flood = 60
			now := time.Now()
			var ds []webhook.Delivery
			add := func(typ string) string {
				ev := webhook.NewEvent(typ, map[string]string{"inbox_id": "inb_x"}, now)
				payload, err := jsonMarshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				ds = append(ds, webhook.Delivery{WebhookID: w.ID, EventID: ev.ID, EventType: ev.Type, Payload: payload, Since: now})
				return ev.ID
			}
			for i := range flood {
				add([]string{webhook.InboxStateChanged, webhook.InboxRecovered}[i%2])
			}
			mail := add(webhook.MessageReceived)
			if err := b.r.EnqueueDeliveries(t.Context(), ds); err != nil {
				t.Fatalf("EnqueueDeliveries = %v", err)
			}
			b.waitDelivery(t, w, mail, func(d *holdfast.WebhookDelivery) bool { return d.State == holdfast.DeliverySucceeded })
			rc.mu.Lock()
			at := slices.Index(rc.handled, mail)
			rc.mu.Unlock()
			// One round of work is the runner's workers (10); the flood
			// is six rounds.
			if at < 0 || at >= flood/3 {
				t.Errorf("message.received was delivered %d-th of %d, want within the first %d", at+1, flood+1, flood/3)
			}
		})
	}
}

package webhook_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
	"github.com/holdfast/holdfast/webhook"
)

// nodeQueue is the job queue of one node, recording into a log shared by
// the nodes; each enqueue takes a random while, as River's insert on a
// loaded database, so that two relays working at once interleave.
type nodeQueue struct {
	node string
	log  *enqueueLog
}

// enqueueLog is every delivery enqueued, by any node, in enqueue order.
type enqueueLog struct {
	mu sync.Mutex
	ds []enqueued
}

type enqueued struct {
	node string
	d    webhook.Delivery
}

func (q nodeQueue) EnqueueDeliveries(_ context.Context, ds []webhook.Delivery) error {
	time.Sleep(time.Duration(rand.N(10)) * time.Millisecond)
	q.log.mu.Lock()
	defer q.log.mu.Unlock()
	for _, d := range ds {
		q.log.ds = append(q.log.ds, enqueued{q.node, d})
	}
	return nil
}

func (l *enqueueLog) all() []enqueued {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]enqueued(nil), l.ds...)
}

// waitFor waits until the log holds n deliveries, then a little longer
// for any duplicate, and returns them.
func (l *enqueueLog) waitFor(t *testing.T, n int) []enqueued {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for len(l.all()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	return l.all()
}

// TestRelayAcrossNodes runs two relays, one per node, on one PostgreSQL
// schema while events of three inboxes are written from both nodes: every
// event is enqueued exactly once, in the order of the outbox (so each
// inbox's events in the order they were written), one relay at a time; and
// once the first relay stops, the second relays what follows.
func TestRelayAcrossNodes(t *testing.T) {
	t.Parallel()
	url, _ := pgtest.Schema(t)
	stores := []holdfast.Store{pgtest.Open(t, url), pgtest.Open(t, url)}
	if err := stores[0].CreateWebhook(t.Context(), &holdfast.Webhook{ID: "whk_all", URL: "https://a.example.test/", Events: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	log := &enqueueLog{}
	var relays []*webhook.Relay
	for i, st := range stores {
		r, err := webhook.NewRelay(webhook.RelayConfig{
			Store: st, Queue: nodeQueue{fmt.Sprintf("node%d", i), log}, Logger: slog.New(slog.DiscardHandler),
			PollInterval: 5 * time.Millisecond, BatchSize: 4,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Stop(context.Background()) })
		relays = append(relays, r)
	}

	inboxes := []string{"inb_a", "inb_b", "inb_c"}
	type place struct {
		inbox string
		n     int
	}
	written := map[string]place{} // event ID → its inbox and rank there
	var order []string            // event IDs in outbox order
	next := map[string]int{}
	var incident int64
	// write appends one event for each inbox, each in its own transaction,
	// from node (and its relay is woken, as after a local write).
	write := func(node int) {
		t.Helper()
		for _, inbox := range inboxes {
			incident++
			evs, err := webhook.MessageEvents(inbox, []holdfast.Message{{ID: fmt.Sprintf("msg_%d", incident), Added: true}}, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			in := &holdfast.Incident{ID: incident, Kind: holdfast.IncidentKind("provider_outage"), Provider: holdfast.ProviderMicrosoft, OpenedAt: time.Now()}
			if err := stores[node].SaveIncident(t.Context(), in, func(*holdfast.Incident) ([]holdfast.OutboxEvent, error) { return evs, nil }); err != nil {
				t.Fatal(err)
			}
			written[evs[0].ID] = place{inbox, next[inbox]}
			next[inbox]++
			order = append(order, evs[0].ID)
			relays[node].Wake()
		}
	}
	check := func(got []enqueued, wantNodes map[string]bool) {
		t.Helper()
		seen := map[string]int{}
		rank := map[string]int{}
		for _, e := range got {
			seen[e.d.EventID]++
			p, ok := written[e.d.EventID]
			if !ok {
				t.Errorf("unknown event %s enqueued", e.d.EventID)
				continue
			}
			if seen[e.d.EventID] > 1 {
				t.Errorf("event %s (%s #%d) enqueued %d times; want once", e.d.EventID, p.inbox, p.n, seen[e.d.EventID])
				continue
			}
			if p.n != rank[p.inbox] {
				t.Errorf("%s's event #%d enqueued where #%d was due: out of order", p.inbox, p.n, rank[p.inbox])
			}
			rank[p.inbox] = p.n + 1
			if wantNodes != nil && !wantNodes[e.node] {
				t.Errorf("event %s enqueued by %s; want one of %v", e.d.EventID, e.node, wantNodes)
			}
		}
		for _, id := range order {
			if seen[id] == 0 {
				t.Errorf("event %s (%s #%d) never enqueued", id, written[id].inbox, written[id].n)
			}
		}
	}

	for i := range 30 {
		write(i % 2)
	}
	check(log.waitFor(t, len(order)), nil)

	// The first node stops: the second relays on alone.
	if err := relays[0].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := len(log.all())
	for range 10 {
		write(1)
	}
	got := log.waitFor(t, len(order))
	check(got, nil)
	for _, e := range got[before:] {
		if e.node != "node1" {
			t.Errorf("event %s enqueued by %s after node0 stopped", e.d.EventID, e.node)
		}
	}
}

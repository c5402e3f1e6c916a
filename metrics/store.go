package metrics

import (
	"context"
	"time"

	"github.com/holdfast/holdfast"
)

// InstrumentStore returns s with the latency of its inbox, event and API key
// operations recorded in holdfast_store_latency_seconds. Methods it does not
// wrap pass straight through.
func (m *Metrics) InstrumentStore(s holdfast.Store) holdfast.Store {
	return &store{Store: s, m: m}
}

// store times the calls it forwards to the embedded Store.
type store struct {
	holdfast.Store
	m *Metrics
}

// timer starts timing op; the function it returns records the time taken
// and whether *err is set. Use it as defer s.timer("op")(&err).
func (s *store) timer(op string) func(*error) {
	start := time.Now()
	return func(err *error) {
		outcome := "ok"
		if *err != nil {
			outcome = "error"
		}
		s.m.storeLatency.WithLabelValues(op, outcome).Observe(time.Since(start).Seconds())
	}
}

func (s *store) CreateInbox(ctx context.Context, in *holdfast.Inbox, ev holdfast.Event) (err error) {
	defer s.timer("create_inbox")(&err)
	return s.Store.CreateInbox(ctx, in, ev)
}

func (s *store) Inbox(ctx context.Context, id string) (in *holdfast.Inbox, err error) {
	defer s.timer("inbox")(&err)
	return s.Store.Inbox(ctx, id)
}

func (s *store) Inboxes(ctx context.Context, f holdfast.InboxFilter) (ins []*holdfast.Inbox, err error) {
	defer s.timer("inboxes")(&err)
	return s.Store.Inboxes(ctx, f)
}

func (s *store) DeleteInbox(ctx context.Context, id string, ev holdfast.Event) (err error) {
	defer s.timer("delete_inbox")(&err)
	return s.Store.DeleteInbox(ctx, id, ev)
}

func (s *store) ChangeState(ctx context.Context, id string, c holdfast.StateChange) (in *holdfast.Inbox, err error) {
	defer s.timer("change_state")(&err)
	return s.Store.ChangeState(ctx, id, c)
}

func (s *store) Events(ctx context.Context, inboxID string, f holdfast.EventFilter) (evs []holdfast.Event, err error) {
	defer s.timer("events")(&err)
	return s.Store.Events(ctx, inboxID, f)
}

func (s *store) CountInboxes(ctx context.Context) (c []holdfast.InboxCount, err error) {
	defer s.timer("count_inboxes")(&err)
	return s.Store.CountInboxes(ctx)
}

func (s *store) APIKeyByHash(ctx context.Context, hash []byte) (k *holdfast.APIKey, err error) {
	defer s.timer("api_key_by_hash")(&err)
	return s.Store.APIKeyByHash(ctx, hash)
}

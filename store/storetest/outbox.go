package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/holdfast/holdfast"
)

// outboxTests are the conformance tests of the webhook outbox: every
// announcing write appends its events in its own transaction.
var outboxTests = []conformanceTest{
	{"OutboxChangeState", testOutboxChangeState},
	{"OutboxSaveSync", testOutboxSaveSync},
	{"OutboxChangeSend", testOutboxChangeSend},
	{"OutboxSaveIncident", testOutboxSaveIncident},
	{"OutboxChangeNotice", testOutboxChangeNotice},
	{"OutboxOrderRelayPrune", testOutboxOrderRelayPrune},
}

// ignoreSeq leaves the store's sequence out of comparisons.
var ignoreSeq = cmpopts.IgnoreFields(holdfast.OutboxEvent{}, "Seq")

// errAnnounce is what a failing Announce returns.
var errAnnounce = errors.New("announce failed")

// outboxEvent returns a new event of type typ whose payload names what.
func outboxEvent(typ, what string) holdfast.OutboxEvent {
	return holdfast.OutboxEvent{
		ID: newID("evt"), Type: typ, Payload: fmt.Appendf(nil, `{"what":%q}`, what), CreatedAt: stored(t0),
	}
}

// unrelayed returns the unrelayed outbox events, in order.
func unrelayed(t *testing.T, s holdfast.Store) []*holdfast.OutboxEvent {
	t.Helper()
	evs, err := s.OutboxEvents(t.Context(), 1000)
	if err != nil {
		t.Fatalf("OutboxEvents = %v", err)
	}
	return evs
}

// wantOutbox checks that the unrelayed events are want, in order.
func wantOutbox(t *testing.T, s holdfast.Store, step string, want ...holdfast.OutboxEvent) {
	t.Helper()
	var w []*holdfast.OutboxEvent
	for i := range want {
		w = append(w, &want[i])
	}
	if diff := cmp.Diff(w, unrelayed(t, s), ignoreSeq, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("outbox %s mismatch (-want +got):\n%s", step, diff)
	}
}

func testOutboxChangeState(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	ev := outboxEvent("inbox.state_changed", "paused")
	var seen *holdfast.Inbox
	got, err := s.ChangeState(ctx, in.ID, holdfast.StateChange{
		From: in.State, To: holdfast.StatePaused, Reason: "outage", At: t0.Add(time.Minute),
		Announce: func(stored *holdfast.Inbox) ([]holdfast.OutboxEvent, error) {
			seen = stored
			return []holdfast.OutboxEvent{ev}, nil
		},
	})
	if err != nil {
		t.Fatalf("ChangeState = %v", err)
	}
	if seen == nil || seen.State != holdfast.StatePaused || !seen.Since.Equal(got.Since) {
		t.Errorf("Announce was given %+v; want the inbox as stored, paused since %v", seen, got.Since)
	}
	wantOutbox(t, s, "after a change", ev)

	// A lost compare-and-set appends nothing, and is not announced.
	lost := outboxEvent("inbox.state_changed", "lost")
	_, err = s.ChangeState(ctx, in.ID, holdfast.StateChange{
		From: holdfast.StateConnected, To: holdfast.StateDegraded,
		Announce: func(*holdfast.Inbox) ([]holdfast.OutboxEvent, error) { return []holdfast.OutboxEvent{lost}, nil },
	})
	if !errors.Is(err, holdfast.ErrConflict) {
		t.Fatalf("ChangeState from a state it left = %v; want ErrConflict", err)
	}
	// A failing Announce rolls the change back.
	_, err = s.ChangeState(ctx, in.ID, holdfast.StateChange{
		From: holdfast.StatePaused, To: holdfast.StateConnected,
		Announce: func(*holdfast.Inbox) ([]holdfast.OutboxEvent, error) { return nil, errAnnounce },
	})
	if !errors.Is(err, errAnnounce) {
		t.Fatalf("ChangeState with a failing Announce = %v; want errAnnounce", err)
	}
	if now, err := s.Inbox(ctx, in.ID); err != nil || now.State != holdfast.StatePaused {
		t.Errorf("inbox after a failed Announce = %+v, %v; want still paused", now, err)
	}
	// Events with the ID of one appended already: the change rolls back.
	_, err = s.ChangeState(ctx, in.ID, holdfast.StateChange{
		From: holdfast.StatePaused, To: holdfast.StateConnected,
		Announce: func(*holdfast.Inbox) ([]holdfast.OutboxEvent, error) { return []holdfast.OutboxEvent{ev}, nil },
	})
	if !errors.Is(err, holdfast.ErrConflict) {
		t.Fatalf("ChangeState announcing an event twice = %v; want ErrConflict", err)
	}
	if now, err := s.Inbox(ctx, in.ID); err != nil || now.State != holdfast.StatePaused {
		t.Errorf("inbox after a refused event = %+v, %v; want still paused", now, err)
	}
	wantOutbox(t, s, "after refused changes", ev)
}

func testOutboxSaveSync(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	announce := func(msgs []holdfast.Message) ([]holdfast.OutboxEvent, error) {
		var evs []holdfast.OutboxEvent
		for _, m := range msgs {
			if m.Added {
				ev := outboxEvent("message.received", m.ID)
				ev.ID = "evt_" + m.ID // deterministic, to compare
				evs = append(evs, ev)
			}
		}
		return evs, nil
	}
	msgs := []holdfast.Message{newMessage("p/1", "<1@x>", t0), newMessage("p/2", "<2@x>", t0)}
	if _, err := s.SaveSync(ctx, in.ID, msgs, "c1", t0, announce); err != nil {
		t.Fatalf("SaveSync = %v", err)
	}
	first, _ := announce(msgs)
	wantOutbox(t, s, "after a sync", first...)

	// Seen again, plus one new: only the new one is announced.
	again := []holdfast.Message{newMessage("p/1", "<1@x>", t0), newMessage("p/3", "<3@x>", t0)}
	if _, err := s.SaveSync(ctx, in.ID, again, "c2", t0, announce); err != nil {
		t.Fatalf("SaveSync again = %v", err)
	}
	second, _ := announce(again)
	if len(second) != 1 {
		t.Fatalf("second sync announced %d messages; want 1", len(second))
	}
	wantOutbox(t, s, "after a second sync", append(first, second...)...)

	// A failing Announce stores nothing: neither messages nor cursor.
	failed := []holdfast.Message{newMessage("p/4", "<4@x>", t0)}
	_, err := s.SaveSync(ctx, in.ID, failed, "c3", t0, func([]holdfast.Message) ([]holdfast.OutboxEvent, error) { return nil, errAnnounce })
	if !errors.Is(err, errAnnounce) {
		t.Fatalf("SaveSync with a failing Announce = %v; want errAnnounce", err)
	}
	if got, err := s.Inbox(ctx, in.ID); err != nil || got.SyncCursor != "c2" {
		t.Errorf("inbox after a failed Announce = %+v, %v; want cursor c2", got, err)
	}
	if _, err := s.SaveSync(ctx, newID("inb"), failed, "c", t0, announce); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SaveSync(unknown inbox) = %v; want ErrNotFound", err)
	}
	wantOutbox(t, s, "after refused syncs", append(first, second...)...)
}

func testOutboxChangeSend(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	sd := mustCreateSend(t, s, newSend(in.ID, ""))
	ev := outboxEvent("send.sent", sd.ID)
	var seen *holdfast.Send
	announce := func(stored *holdfast.Send) ([]holdfast.OutboxEvent, error) {
		seen = stored
		return []holdfast.OutboxEvent{ev}, nil
	}
	if _, err := s.ChangeSend(ctx, sd.ID, holdfast.SendChange{From: holdfast.SendScheduled, To: holdfast.SendSending}); err != nil {
		t.Fatalf("ChangeSend to sending = %v", err)
	}
	got, err := s.ChangeSend(ctx, sd.ID, holdfast.SendChange{From: holdfast.SendSending, To: holdfast.SendSent, At: t0, Announce: announce})
	if err != nil {
		t.Fatalf("ChangeSend to sent = %v", err)
	}
	if seen == nil || seen.State != holdfast.SendSent || !seen.SentAt.Equal(got.SentAt) {
		t.Errorf("Announce was given %+v; want the send as stored, sent at %v", seen, got.SentAt)
	}
	lost := outboxEvent("send.failed", sd.ID)
	_, err = s.ChangeSend(ctx, sd.ID, holdfast.SendChange{From: holdfast.SendSending, To: holdfast.SendFailed,
		Announce: func(*holdfast.Send) ([]holdfast.OutboxEvent, error) { return []holdfast.OutboxEvent{lost}, nil }})
	if !errors.Is(err, holdfast.ErrConflict) {
		t.Fatalf("ChangeSend from a state it left = %v; want ErrConflict", err)
	}
	_, err = s.ChangeSend(ctx, newID("snd"), holdfast.SendChange{To: holdfast.SendFailed,
		Announce: func(*holdfast.Send) ([]holdfast.OutboxEvent, error) { return []holdfast.OutboxEvent{lost}, nil }})
	if !errors.Is(err, holdfast.ErrNotFound) {
		t.Fatalf("ChangeSend(unknown) = %v; want ErrNotFound", err)
	}
	wantOutbox(t, s, "after send changes", ev)
}

// testOutboxSaveIncident checks that SaveIncident gives its Announce the
// incident as stored before (nil when new), and appends the events with
// the save, or neither.
func testOutboxSaveIncident(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := newIncident(1)
	in.ResolvedAt = time.Time{}
	ev := outboxEvent("incident.opened", "1")
	var prevs []*holdfast.Incident
	announce := func(evs ...holdfast.OutboxEvent) holdfast.Announce[*holdfast.Incident] {
		return func(prev *holdfast.Incident) ([]holdfast.OutboxEvent, error) {
			prevs = append(prevs, prev)
			return evs, nil
		}
	}
	if err := s.SaveIncident(ctx, in, announce(ev)); err != nil {
		t.Fatalf("SaveIncident = %v", err)
	}
	// An event that cannot be appended (its ID is taken) fails the save.
	bad := *in
	bad.ResolvedAt = in.OpenedAt.Add(time.Hour)
	if err := s.SaveIncident(ctx, &bad, announce(ev)); !errors.Is(err, holdfast.ErrConflict) {
		t.Fatalf("SaveIncident with a taken event ID = %v; want ErrConflict", err)
	}
	if got, err := s.IncidentByID(ctx, in.ID); err != nil || !got.Open() {
		t.Errorf("incident after a refused save = %+v, %v; want still open", got, err)
	}
	resolved := outboxEvent("incident.resolved", "1")
	if err := s.SaveIncident(ctx, &bad, announce(resolved)); err != nil {
		t.Fatalf("SaveIncident resolved = %v", err)
	}
	if len(prevs) != 3 || prevs[0] != nil || prevs[1] == nil || !prevs[1].Open() || prevs[2] == nil || !prevs[2].Open() {
		t.Errorf("Announce was given %v; want nil (new), then the open incident twice", prevs)
	}
	wantOutbox(t, s, "after incident saves", ev, resolved)
}

func testOutboxChangeNotice(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	n := &holdfast.Notice{InboxID: in.ID, Episode: 1, Reason: "invalid_grant", At: t0}
	if err := s.AppendNotice(ctx, n); err != nil {
		t.Fatalf("AppendNotice = %v", err)
	}
	if _, err := s.ChangeNotice(ctx, n.ID, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeSending}); err != nil {
		t.Fatalf("ChangeNotice to sending = %v", err)
	}
	ev := outboxEvent("notice.sent", in.ID)
	rec, err := s.ChangeNotice(ctx, n.ID, holdfast.NoticeChange{From: holdfast.NoticeSending, To: holdfast.NoticeSent, At: t0,
		Events: []holdfast.OutboxEvent{ev}})
	if err != nil || rec.Status != holdfast.NoticeSent {
		t.Fatalf("ChangeNotice to sent = %+v, %v; want sent", rec, err)
	}
	lost := outboxEvent("notice.sent", "lost")
	if _, err := s.ChangeNotice(ctx, n.ID, holdfast.NoticeChange{From: holdfast.NoticeSending, To: holdfast.NoticeSent,
		Events: []holdfast.OutboxEvent{lost}}); !errors.Is(err, holdfast.ErrConflict) {
		t.Fatalf("ChangeNotice from a status it left = %v; want ErrConflict", err)
	}
	if _, err := s.ChangeNotice(ctx, n.ID+1000, holdfast.NoticeChange{From: holdfast.NoticeSending, To: holdfast.NoticeSent,
		Events: []holdfast.OutboxEvent{lost}}); !errors.Is(err, holdfast.ErrNotFound) {
		t.Fatalf("ChangeNotice(unknown) = %v; want ErrNotFound", err)
	}
	wantOutbox(t, s, "after notice changes", ev)
}

// testOutboxOrderRelayPrune checks that unrelayed events are read in the
// order appended, that MarkRelayed takes them out, and that PruneOutbox
// deletes only relayed ones past the cut.
func testOutboxOrderRelayPrune(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	var evs []holdfast.OutboxEvent
	for i := range 5 {
		ev := outboxEvent("incident.opened", fmt.Sprint(i))
		evs = append(evs, ev)
		err := s.SaveIncident(ctx, newIncident(int64(i+1)), func(*holdfast.Incident) ([]holdfast.OutboxEvent, error) {
			return []holdfast.OutboxEvent{ev}, nil
		})
		if err != nil {
			t.Fatalf("SaveIncident(%d) = %v", i+1, err)
		}
	}
	wantOutbox(t, s, "in order", evs...)
	page, err := s.OutboxEvents(ctx, 2)
	if err != nil || len(page) != 2 || page[0].ID != evs[0].ID || page[1].ID != evs[1].ID || page[0].Seq >= page[1].Seq {
		t.Fatalf("OutboxEvents(2) = %v, %v; want the first two, in order", page, err)
	}
	if err := s.MarkRelayed(ctx, []int64{page[0].Seq, page[1].Seq}, t0); err != nil {
		t.Fatalf("MarkRelayed = %v", err)
	}
	wantOutbox(t, s, "after relaying two", evs[2:]...)
	rest := unrelayed(t, s)
	// Marking again keeps the first time; unknown seqs are ignored.
	if err := s.MarkRelayed(ctx, []int64{page[0].Seq, rest[0].Seq, rest[len(rest)-1].Seq + 1000}, t0.Add(2*time.Hour)); err != nil {
		t.Fatalf("MarkRelayed again = %v", err)
	}
	wantOutbox(t, s, "after relaying three", evs[3:]...)

	// Relayed at t0: the first two; at t0+2h: the third.
	n, err := s.PruneOutbox(ctx, t0.Add(time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("PruneOutbox(t0+1h) = %d, %v; want 2", n, err)
	}
	n, err = s.PruneOutbox(ctx, t0.Add(100*time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("PruneOutbox(t0+100h) = %d, %v; want 1 (the unrelayed stay)", n, err)
	}
	wantOutbox(t, s, "after pruning", evs[3:]...)
}

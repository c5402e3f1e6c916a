package storetest

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/holdfast/holdfast"
)

// newIncident returns an open incident with every other field set; its
// times, t0 and later, have nanoseconds and a zone other than UTC.
func newIncident(id int64) *holdfast.Incident {
	return &holdfast.Incident{
		ID:       id,
		Kind:     "tenant_outage",
		Provider: holdfast.ProviderMicrosoft,
		Tenant:   "contoso.example",
		OpenedAt: t0.Add(time.Duration(id) * time.Minute),
		Evidence: fmt.Sprintf("incident %d: 40 of 50 inboxes failed with AADSTS50020 within 5 minutes", id),
		Affected: 40,
		Timeline: []holdfast.IncidentEntry{
			// Out of time order, to show that the timeline keeps its order.
			{At: t0.Add(2 * time.Second), What: "held 12 disconnects"},
			{At: t0.Add(time.Second), What: "opened: 40 of 50 failed"},
			{At: t0.Add(3*time.Second + 999*time.Nanosecond), What: "paused 28 inboxes \"quoted\" <b>"},
		},
	}
}

// storedIncident returns in as a store keeps it.
func storedIncident(in *holdfast.Incident) *holdfast.Incident {
	out := *in
	out.OpenedAt = stored(in.OpenedAt)
	if !in.ResolvedAt.IsZero() {
		out.ResolvedAt = stored(in.ResolvedAt)
	}
	if !in.EscalatedAt.IsZero() {
		out.EscalatedAt = stored(in.EscalatedAt)
	}
	out.Timeline = nil
	for _, e := range in.Timeline {
		out.Timeline = append(out.Timeline, holdfast.IncidentEntry{At: stored(e.At), What: e.What})
	}
	return &out
}

// mustSaveIncidents saves ins, each in its own call.
func mustSaveIncidents(t *testing.T, s holdfast.Store, ins ...*holdfast.Incident) {
	t.Helper()
	for _, in := range ins {
		if err := s.SaveIncident(t.Context(), in, nil); err != nil {
			t.Fatalf("SaveIncident(%d) = %v", in.ID, err)
		}
	}
}

// checkUTC fails t if any of ts is not zero and not in UTC.
func checkUTC(t *testing.T, what string, ts ...time.Time) {
	t.Helper()
	for _, tm := range ts {
		if !tm.IsZero() && tm.Location() != time.UTC {
			t.Errorf("%s: time %v in %v; want UTC", what, tm, tm.Location())
		}
	}
}

func testIncidents(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	// IDs are the caller's and are saved out of order.
	open1 := newIncident(1)
	resolved2 := newIncident(2)
	resolved2.Kind = "provider_outage"
	resolved2.Provider = holdfast.ProviderGoogle
	resolved2.Tenant = ""
	resolved2.ResolvedAt = t0.Add(time.Hour + 999*time.Nanosecond)
	resolved2.Recovered = 38
	open3 := newIncident(3)
	open3.Kind = "declared"
	open3.Timeline = nil
	big := newIncident(1 << 40)
	mustSaveIncidents(t, s, open3, big, open1, resolved2)

	t.Run("RoundTrip", func(t *testing.T) {
		for _, in := range []*holdfast.Incident{open1, resolved2, open3, big} {
			got, err := s.IncidentByID(ctx, in.ID)
			if err != nil {
				t.Fatalf("IncidentByID(%d) = %v", in.ID, err)
			}
			if diff := cmp.Diff(storedIncident(in), got); diff != "" {
				t.Errorf("IncidentByID(%d) mismatch (-want +got):\n%s", in.ID, diff)
			}
			checkUTC(t, fmt.Sprintf("incident %d", in.ID), got.OpenedAt, got.ResolvedAt)
			for _, e := range got.Timeline {
				checkUTC(t, fmt.Sprintf("incident %d timeline", in.ID), e.At)
			}
			if got.Open() != in.ResolvedAt.IsZero() {
				t.Errorf("IncidentByID(%d).Open() = %v; want %v", in.ID, got.Open(), in.ResolvedAt.IsZero())
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		_, err := s.IncidentByID(ctx, 4)
		if !errors.Is(err, holdfast.ErrNotFound) {
			t.Errorf("IncidentByID(unknown) = %v; want ErrNotFound", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		tests := []struct {
			name     string
			openOnly bool
			limit    int
			want     []*holdfast.Incident
		}{
			{"All", false, 0, []*holdfast.Incident{big, open3, resolved2, open1}},
			{"OpenOnly", true, 0, []*holdfast.Incident{big, open3, open1}},
			{"Limit", false, 2, []*holdfast.Incident{big, open3}},
			{"OpenOnlyLimit", true, 3, []*holdfast.Incident{big, open3, open1}},
		}
		for _, tt := range tests {
			got, err := s.Incidents(ctx, tt.openOnly, tt.limit)
			if err != nil {
				t.Fatalf("%s: Incidents(%v, %d) = %v", tt.name, tt.openOnly, tt.limit, err)
			}
			var want []*holdfast.Incident
			for _, in := range tt.want {
				want = append(want, storedIncident(in))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: Incidents(%v, %d) mismatch (-want +got):\n%s", tt.name, tt.openOnly, tt.limit, diff)
			}
		}
	})

	t.Run("OpenPaged", func(t *testing.T) {
		tests := []struct {
			name    string
			afterID int64
			limit   int
			want    []*holdfast.Incident
		}{
			{"All", 0, 0, []*holdfast.Incident{open1, open3, big}},
			{"FirstPage", 0, 2, []*holdfast.Incident{open1, open3}},
			{"NextPage", 3, 2, []*holdfast.Incident{big}},
			{"PastResolved", 1, 0, []*holdfast.Incident{open3, big}},
			{"PastTheLast", 1 << 40, 0, nil},
		}
		for _, tt := range tests {
			got, err := s.OpenIncidents(ctx, tt.afterID, tt.limit)
			if err != nil {
				t.Fatalf("%s: OpenIncidents(%d, %d) = %v", tt.name, tt.afterID, tt.limit, err)
			}
			var want []*holdfast.Incident
			for _, in := range tt.want {
				want = append(want, storedIncident(in))
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s: OpenIncidents(%d, %d) mismatch (-want +got):\n%s", tt.name, tt.afterID, tt.limit, diff)
			}
		}
	})

	t.Run("UpsertReplaces", func(t *testing.T) { checkIncidentUpserts(t, s) })
}

// checkIncidentUpserts is testIncidents' check that SaveIncident replaces
// an incident, field by field, and what Incidents lists as open follows.
// The steps run in order, each on what the previous left.
func checkIncidentUpserts(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	escalatedAt := t0.Add(90*time.Minute + 999*time.Nanosecond)
	steps := []struct {
		name   string
		change func(in *holdfast.Incident)
		open   []int64
	}{
		{"Escalate", func(in *holdfast.Incident) {
			in.EscalatedAt = escalatedAt
			in.Timeline = append(in.Timeline, holdfast.IncidentEntry{At: escalatedAt, What: "escalated"})
		}, []int64{1 << 40, 3, 1}},
		// The first escalation stays: a save without one keeps it.
		{"EscalationKept", func(in *holdfast.Incident) {
			in.EscalatedAt = time.Time{}
		}, []int64{1 << 40, 3, 1}},
		{"Resolve", func(in *holdfast.Incident) {
			in.EscalatedAt = escalatedAt
			in.ResolvedAt = t0.Add(2 * time.Hour)
			in.Recovered = 40
			in.Timeline = append(in.Timeline, holdfast.IncidentEntry{At: t0.Add(2 * time.Hour), What: "resolved"})
		}, []int64{1 << 40, 3}},
		{"EveryField", func(in *holdfast.Incident) {
			in.Kind = "tenant_event"
			in.Provider = holdfast.ProviderIMAP
			in.Tenant = "mail.example.test"
			in.OpenedAt = t0.Add(-time.Hour)
			in.Evidence = "replaced"
			in.Affected, in.Recovered = 1, 0
			in.Timeline = in.Timeline[:1]
		}, []int64{1 << 40, 3}},
		// A save never reopens a resolved incident: nothing changes.
		{"ReopenIgnored", func(in *holdfast.Incident) {
			in.ResolvedAt = time.Time{}
			in.Timeline = nil
			in.Evidence = "a late re-save from another node"
		}, []int64{1 << 40, 3}},
	}
	in := newIncident(1)
	var want *holdfast.Incident
	for _, st := range steps {
		st.change(in)
		mustSaveIncidents(t, s, in)
		got, err := s.IncidentByID(ctx, in.ID)
		if err != nil {
			t.Fatalf("%s: IncidentByID = %v", st.name, err)
		}
		if st.name != "ReopenIgnored" {
			want = storedIncident(in)
		}
		if st.name == "EscalationKept" {
			want.EscalatedAt = stored(escalatedAt)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: IncidentByID after SaveIncident mismatch (-want +got):\n%s", st.name, diff)
		}
		open, err := s.Incidents(ctx, true, 0)
		if err != nil {
			t.Fatalf("%s: Incidents(open) = %v", st.name, err)
		}
		var ids []int64
		for _, o := range open {
			ids = append(ids, o.ID)
		}
		if diff := cmp.Diff(st.open, ids); diff != "" {
			t.Errorf("%s: IDs of open incidents (-want +got):\n%s", st.name, diff)
		}
		all, err := s.Incidents(ctx, false, 0)
		if err != nil || len(all) != 4 {
			t.Errorf("%s: Incidents(all) = %d incidents, %v; want 4, nil", st.name, len(all), err)
		}
	}
}

// newHeldAction returns a pending held action.
func newHeldAction(id int64) *holdfast.HeldAction {
	return &holdfast.HeldAction{
		ID:       id,
		InboxID:  newID("inb"),
		Provider: holdfast.ProviderGoogle,
		Tenant:   "example.com",
		To:       holdfast.StateNeedsReconnect,
		Reason:   "invalid_grant",
		Why:      "budget",
		HeldAt:   t0.Add(time.Duration(id) * time.Second),
	}
}

// storedHeldAction returns h as a store keeps it.
func storedHeldAction(h *holdfast.HeldAction) *holdfast.HeldAction {
	out := *h
	out.HeldAt = stored(h.HeldAt)
	if !h.ClosedAt.IsZero() {
		out.ClosedAt = stored(h.ClosedAt)
	}
	return &out
}

func storedHeldActions(hs ...*holdfast.HeldAction) []*holdfast.HeldAction {
	var out []*holdfast.HeldAction
	for _, h := range hs {
		out = append(out, storedHeldAction(h))
	}
	return out
}

func testHeldActions(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	if got, err := s.FindHeldActions(ctx, holdfast.HeldActionFilter{}); err != nil || len(got) != 0 {
		t.Fatalf("FindHeldActions of an empty store = %v, %v; want none", got, err)
	}
	pending1 := newHeldAction(1)
	done2 := newHeldAction(2)
	done2.To = holdfast.StateNeedsAdmin
	done2.Why = "incident"
	done2.Done = true
	done2.Outcome = "released"
	done2.ClosedAt = t0.Add(time.Hour + 999*time.Nanosecond)
	pending3 := newHeldAction(3)
	pending3.Provider = holdfast.ProviderIMAP
	pending3.Tenant = ""
	for _, h := range []*holdfast.HeldAction{pending3, done2, pending1} {
		if err := s.SaveHeldAction(ctx, h); err != nil {
			t.Fatalf("SaveHeldAction(%d) = %v", h.ID, err)
		}
	}

	list := func(t *testing.T, pendingOnly bool, limit int) []*holdfast.HeldAction {
		t.Helper()
		got, err := s.FindHeldActions(ctx, holdfast.HeldActionFilter{PendingOnly: pendingOnly, Limit: limit})
		if err != nil {
			t.Fatalf("FindHeldActions(pending only %v, limit %d) = %v", pendingOnly, limit, err)
		}
		for _, h := range got {
			checkUTC(t, fmt.Sprintf("held action %d", h.ID), h.HeldAt, h.ClosedAt)
		}
		return got
	}
	tests := []struct {
		name        string
		pendingOnly bool
		limit       int
		want        []*holdfast.HeldAction
	}{
		{"All", false, 0, storedHeldActions(pending1, done2, pending3)},
		{"PendingOnly", true, 0, storedHeldActions(pending1, pending3)},
		{"Limit", false, 2, storedHeldActions(pending1, done2)},
		{"PendingOnlyLimit", true, 1, storedHeldActions(pending1)},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(t, tt.pendingOnly, tt.limit)); diff != "" {
			t.Errorf("%s: HeldActions(%v, %d) mismatch (-want +got):\n%s", tt.name, tt.pendingOnly, tt.limit, diff)
		}
	}

	// Closing the first replaces it; a new ID adds a row.
	closed1 := *pending1
	closed1.Done = true
	closed1.Outcome = "taken"
	closed1.ClosedAt = t0.Add(2 * time.Hour)
	closed1.Reason = "replaced"
	pending4 := newHeldAction(4)
	for _, h := range []*holdfast.HeldAction{&closed1, pending4} {
		if err := s.SaveHeldAction(ctx, h); err != nil {
			t.Fatalf("SaveHeldAction(%d) = %v", h.ID, err)
		}
	}
	if diff := cmp.Diff(storedHeldActions(&closed1, done2, pending3, pending4), list(t, false, 0)); diff != "" {
		t.Errorf("HeldActions after an upsert mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(storedHeldActions(pending3, pending4), list(t, true, 0)); diff != "" {
		t.Errorf("pending HeldActions after an upsert mismatch (-want +got):\n%s", diff)
	}
	// A closed action's outcome is final: saving it pending again, or
	// closed another way (a stale copy on another node), changes nothing.
	if err := s.SaveHeldAction(ctx, done2Reopened(done2)); err != nil {
		t.Fatalf("SaveHeldAction(2) = %v", err)
	}
	other := closed1
	other.Outcome = "cancelled_left_suspect"
	if err := s.SaveHeldAction(ctx, &other); err != nil {
		t.Fatalf("SaveHeldAction(1) = %v", err)
	}
	if diff := cmp.Diff(storedHeldActions(&closed1, done2, pending3, pending4), list(t, false, 0)); diff != "" {
		t.Errorf("HeldActions after saving closed ones again mismatch (-want +got):\n%s", diff)
	}
}

// testFindHeldActions checks each field of HeldActionFilter, alone and
// together, in both orders.
func testFindHeldActions(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	inbox := newID("inb")
	h1 := newHeldAction(1) // pending, held at t0+1s
	h1.InboxID = inbox
	h2 := newHeldAction(2) // done, held at t0+2s, closed at t0+1h
	h2.InboxID = inbox
	h2.Done, h2.Outcome, h2.ClosedAt = true, "released", t0.Add(time.Hour)
	h3 := newHeldAction(3) // pending, IMAP without a tenant
	h3.Provider, h3.Tenant = holdfast.ProviderIMAP, ""
	h4 := newHeldAction(4) // done, held at t0-1h, closed at t0+30m
	h4.Provider, h4.Tenant = holdfast.ProviderMicrosoft, "contoso.example"
	h4.HeldAt = t0.Add(-time.Hour)
	h4.Done, h4.Outcome, h4.ClosedAt = true, "taken", t0.Add(30*time.Minute)
	h5 := newHeldAction(5) // pending, held at t0+2h
	h5.HeldAt = t0.Add(2 * time.Hour)
	h6 := newHeldAction(6) // pending, held at t0, stored a little before it
	h6.HeldAt = t0
	all := []*holdfast.HeldAction{h1, h2, h3, h4, h5, h6}
	for _, h := range all {
		if err := s.SaveHeldAction(ctx, h); err != nil {
			t.Fatalf("SaveHeldAction(%d) = %v", h.ID, err)
		}
	}
	tests := []struct {
		name string
		f    holdfast.HeldActionFilter
		want []*holdfast.HeldAction
	}{
		{"All", holdfast.HeldActionFilter{}, all},
		{"AllNewest", holdfast.HeldActionFilter{Newest: true}, []*holdfast.HeldAction{h6, h5, h4, h3, h2, h1}},
		{"NewestLimit", holdfast.HeldActionFilter{Newest: true, Limit: 2}, []*holdfast.HeldAction{h6, h5}},
		{"ByID", holdfast.HeldActionFilter{ID: 2}, []*holdfast.HeldAction{h2}},
		{"UnknownID", holdfast.HeldActionFilter{ID: 77}, nil},
		{"ByInbox", holdfast.HeldActionFilter{InboxID: inbox}, []*holdfast.HeldAction{h1, h2}},
		{"ByInboxNewest", holdfast.HeldActionFilter{InboxID: inbox, Newest: true}, []*holdfast.HeldAction{h2, h1}},
		{"ByInboxPending", holdfast.HeldActionFilter{InboxID: inbox, PendingOnly: true}, []*holdfast.HeldAction{h1}},
		{"UnknownInbox", holdfast.HeldActionFilter{InboxID: newID("inb")}, nil},
		{"PendingOnly", holdfast.HeldActionFilter{PendingOnly: true}, []*holdfast.HeldAction{h1, h3, h5, h6}},
		{"PendingOnlyNewestLimit", holdfast.HeldActionFilter{PendingOnly: true, Newest: true, Limit: 3}, []*holdfast.HeldAction{h6, h5, h3}},
		{"DoneOnly", holdfast.HeldActionFilter{DoneOnly: true}, []*holdfast.HeldAction{h2, h4}},
		{"DoneOnlyNewest", holdfast.HeldActionFilter{DoneOnly: true, Newest: true}, []*holdfast.HeldAction{h4, h2}},
		{"PendingAndDoneOnly", holdfast.HeldActionFilter{PendingOnly: true, DoneOnly: true}, nil},
		{"Provider", holdfast.HeldActionFilter{Provider: holdfast.ProviderGoogle}, []*holdfast.HeldAction{h1, h2, h5, h6}},
		{"ProviderTenantAnyCase", holdfast.HeldActionFilter{Provider: holdfast.ProviderGoogle, Tenant: "EXAMPLE.com"}, []*holdfast.HeldAction{h1, h2, h5, h6}},
		{"TenantOnly", holdfast.HeldActionFilter{Tenant: "Contoso.Example"}, []*holdfast.HeldAction{h4}},
		{"OtherTenant", holdfast.HeldActionFilter{Provider: holdfast.ProviderGoogle, Tenant: "contoso.example"}, nil},
		// Held or closed within the window: h6 is stored before t0, h4
		// was held before it but closed in it.
		{"Window", holdfast.HeldActionFilter{Since: t0, Until: t0.Add(30 * time.Minute)}, []*holdfast.HeldAction{h1, h2, h3, h4}},
		{"Since", holdfast.HeldActionFilter{Since: t0.Add(59 * time.Minute)}, []*holdfast.HeldAction{h2, h5}},
		{"Until", holdfast.HeldActionFilter{Until: t0.Add(2 * time.Second)}, []*holdfast.HeldAction{h1, h2, h4, h6}},
		{"Incident", holdfast.HeldActionFilter{Provider: holdfast.ProviderGoogle, Tenant: "example.com",
			Since: t0, Until: t0.Add(30 * time.Minute), Newest: true, Limit: 1}, []*holdfast.HeldAction{h2}},
		{"AfterID", holdfast.HeldActionFilter{AfterID: 3}, []*holdfast.HeldAction{h4, h5, h6}},
		{"AfterIDNewest", holdfast.HeldActionFilter{AfterID: 4, Newest: true}, []*holdfast.HeldAction{h6, h5}},
		{"ByInboxAfterID", holdfast.HeldActionFilter{InboxID: inbox, AfterID: 1}, []*holdfast.HeldAction{h2}},
		// Paging through the pending ones, as the health monitor does at
		// start.
		{"PendingFirstPage", holdfast.HeldActionFilter{PendingOnly: true, Limit: 2}, []*holdfast.HeldAction{h1, h3}},
		{"PendingNextPage", holdfast.HeldActionFilter{PendingOnly: true, AfterID: 3, Limit: 2}, []*holdfast.HeldAction{h5, h6}},
		{"PendingLastPage", holdfast.HeldActionFilter{PendingOnly: true, AfterID: 6, Limit: 2}, nil},
		{"PendingNewestAfterID", holdfast.HeldActionFilter{PendingOnly: true, Newest: true, AfterID: 4}, []*holdfast.HeldAction{h6, h5}},
	}
	for _, tt := range tests {
		got, err := s.FindHeldActions(ctx, tt.f)
		if err != nil {
			t.Errorf("%s: FindHeldActions(%+v) = %v", tt.name, tt.f, err)
			continue
		}
		for _, h := range got {
			checkUTC(t, fmt.Sprintf("held action %d", h.ID), h.HeldAt, h.ClosedAt)
		}
		if diff := cmp.Diff(storedHeldActions(tt.want...), got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: FindHeldActions(%+v) mismatch (-want +got):\n%s", tt.name, tt.f, diff)
		}
	}
}

func done2Reopened(h *holdfast.HeldAction) *holdfast.HeldAction {
	out := *h
	out.Done, out.Outcome, out.ClosedAt = false, "", time.Time{}
	return &out
}

// testHealthLimits checks the page size rules of Incidents, HeldActions
// and FindHeldActions, which returns the newest ones past the limit.
func testHealthLimits(t *testing.T, s holdfast.Store) {
	const n = 1001
	// Save concurrently: n commits one after the other are slow on a store
	// that syncs every commit to disk.
	var (
		wg   sync.WaitGroup
		errs = make(chan error, 2*n)
		next = make(chan int64)
	)
	for range 8 {
		wg.Go(func() {
			for id := range next {
				errs <- s.SaveIncident(t.Context(), newIncident(id), nil)
				errs <- s.SaveHeldAction(t.Context(), newHeldAction(id))
			}
		})
	}
	for id := range int64(n) {
		next <- id + 1
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("save = %v", err)
		}
	}
	tests := []struct {
		limit, want int
	}{
		{0, 100},
		{-1, 100},
		{7, 7},
		{1000, 1000},
		{1001, 1000},
		{1 << 30, 1000},
	}
	for _, tt := range tests {
		for _, only := range []bool{false, true} {
			ins, err := s.Incidents(t.Context(), only, tt.limit)
			if err != nil || len(ins) != tt.want {
				t.Errorf("Incidents(%v, %d) = %d incidents, %v; want %d", only, tt.limit, len(ins), err, tt.want)
			} else if ins[0].ID != n || ins[len(ins)-1].ID != int64(n-tt.want+1) {
				t.Errorf("Incidents(%v, %d) = IDs %d to %d; want %d to %d", only, tt.limit, ins[0].ID, ins[len(ins)-1].ID, n, n-tt.want+1)
			}
			hs, err := s.FindHeldActions(t.Context(), holdfast.HeldActionFilter{PendingOnly: only, Limit: tt.limit})
			if err != nil || len(hs) != tt.want {
				t.Errorf("FindHeldActions(pending only %v, limit %d) = %d actions, %v; want %d", only, tt.limit, len(hs), err, tt.want)
			} else if hs[0].ID != 1 || hs[len(hs)-1].ID != int64(tt.want) {
				t.Errorf("FindHeldActions(pending only %v, limit %d) = IDs %d to %d; want 1 to %d", only, tt.limit, hs[0].ID, hs[len(hs)-1].ID, tt.want)
			}
			// Newest first, the page holds the last ones saved, also
			// when the store holds more than the most a page can.
			f := holdfast.HeldActionFilter{PendingOnly: only, Newest: true, Limit: tt.limit}
			hs, err = s.FindHeldActions(t.Context(), f)
			if err != nil || len(hs) != tt.want {
				t.Errorf("FindHeldActions(%+v) = %d actions, %v; want %d", f, len(hs), err, tt.want)
			} else if hs[0].ID != n || hs[len(hs)-1].ID != int64(n-tt.want+1) {
				t.Errorf("FindHeldActions(%+v) = IDs %d to %d; want %d to %d", f, hs[0].ID, hs[len(hs)-1].ID, n, n-tt.want+1)
			}
		}
	}
}

func testNotices(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	inbox, other := newID("inb"), newID("inb")
	appendNotice := func(t *testing.T, n *holdfast.Notice) error {
		t.Helper()
		return s.AppendNotice(ctx, n)
	}
	first := &holdfast.Notice{InboxID: inbox, Episode: 7, Reason: "invalid_grant", At: t0}
	if err := appendNotice(t, first); err != nil {
		t.Fatalf("AppendNotice = %v", err)
	}
	if first.ID == 0 || !first.At.Equal(stored(t0)) || first.At.Location() != time.UTC {
		t.Errorf("AppendNotice left ID %d, At %v; want an ID and %v", first.ID, first.At, stored(t0))
	}

	// Episodes are per inbox, and a later episode of the same inbox gets
	// its own notice.
	otherFirst := &holdfast.Notice{InboxID: other, Episode: 7, Admin: true, Reason: "admin_consent_revoked", At: t0.Add(time.Second)}
	second := &holdfast.Notice{InboxID: inbox, Episode: 8, Admin: true, Reason: "mailbox_disabled", At: t0.Add(-time.Hour)}
	for _, n := range []*holdfast.Notice{otherFirst, second} {
		if err := appendNotice(t, n); err != nil {
			t.Fatalf("AppendNotice(%s, %d) = %v", n.InboxID, n.Episode, err)
		}
	}
	if !(first.ID < otherFirst.ID && otherFirst.ID < second.ID) {
		t.Errorf("notice IDs %d, %d, %d; want them increasing", first.ID, otherFirst.ID, second.ID)
	}

	dup := &holdfast.Notice{InboxID: inbox, Episode: 7, Reason: "again", At: t0.Add(time.Hour)}
	if err := appendNotice(t, dup); !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("AppendNotice of a repeated episode = %v; want ErrConflict", err)
	}
	if dup.ID != 0 {
		t.Errorf("AppendNotice that failed set ID %d; want 0", dup.ID)
	}

	tests := []struct {
		name    string
		inboxID string
		want    []*holdfast.Notice
	}{
		// Oldest first is by ID, the order of appending, not by At.
		{"Inbox", inbox, []*holdfast.Notice{first, second}},
		{"Other", other, []*holdfast.Notice{otherFirst}},
		{"Unknown", newID("inb"), nil},
	}
	for _, tt := range tests {
		got, err := s.Notices(ctx, tt.inboxID)
		if err != nil {
			t.Fatalf("%s: Notices = %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: Notices mismatch (-want +got):\n%s", tt.name, diff)
		}
		for _, n := range got {
			checkUTC(t, "notice", n.At)
		}
	}
}

func testEngineState(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	if _, _, err := s.EngineState(ctx); !errors.Is(err, holdfast.ErrNotFound) {
		t.Fatalf("EngineState of an empty store = %v; want ErrNotFound", err)
	}
	big := make([]byte, 5<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	// The steps run in order, each replacing what the previous saved.
	steps := []struct {
		name  string
		at    time.Time
		state []byte
	}{
		{"Small", t0, []byte("gob\x00\x01\xff")},
		{"FiveMegabytes", t0.Add(time.Minute), big},
		{"Empty", t0.Add(2 * time.Minute), []byte{}},
		{"SmallAgain", t0.Add(3*time.Minute + 999*time.Nanosecond), []byte("after")},
	}
	for _, st := range steps {
		if err := s.SaveEngineState(ctx, st.at, st.state); err != nil {
			t.Fatalf("%s: SaveEngineState(%d bytes) = %v", st.name, len(st.state), err)
		}
		at, state, err := s.EngineState(ctx)
		if err != nil {
			t.Fatalf("%s: EngineState = %v", st.name, err)
		}
		if !at.Equal(stored(st.at)) || at.Location() != time.UTC {
			t.Errorf("%s: EngineState saved at %v; want %v", st.name, at, stored(st.at))
		}
		if !bytes.Equal(state, st.state) {
			t.Errorf("%s: EngineState = %d bytes; want the %d saved", st.name, len(state), len(st.state))
		}
	}
}

func testReserveIDs(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	var invalid *holdfast.InvalidError
	if _, err := s.ReserveIDs(ctx, 0); !errors.As(err, &invalid) {
		t.Errorf("ReserveIDs(0) = %v; want an *InvalidError", err)
	}
	// The steps run in order on a fresh store: each block follows the last.
	steps := []struct {
		n     int
		first int64
	}{{1, 1}, {100, 2}, {1, 102}}
	for _, st := range steps {
		first, err := s.ReserveIDs(ctx, st.n)
		if err != nil || first != st.first {
			t.Fatalf("ReserveIDs(%d) = %d, %v; want %d", st.n, first, err, st.first)
		}
	}
	// Concurrent reservations get disjoint blocks.
	const workers, rounds, n = 4, 10, 7
	var (
		mu    sync.Mutex
		owner = map[int64]int{}
		wg    sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				first, err := s.ReserveIDs(ctx, n)
				if err != nil {
					t.Errorf("ReserveIDs(%d) = %v", n, err)
					return
				}
				mu.Lock()
				for id := first; id < first+n; id++ {
					if o, dup := owner[id]; dup {
						t.Errorf("ID %d reserved by workers %d and %d", id, o, w)
					}
					owner[id] = w
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(owner) != workers*rounds*n {
		t.Errorf("%d IDs reserved; want %d", len(owner), workers*rounds*n)
	}
}

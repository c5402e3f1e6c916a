// Package storetest is the conformance suite for holdfast.Store. Every
// implementation (store/sqlite, store/postgres) runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) holdfast.Store { return newTestStore(t) })
//	}
//
// The suite checks behaviour callers rely on: round trips at the store's
// time precision, the sentinel errors, keyset paging, the event log, the
// atomicity of writes that touch two tables, compare-and-set state changes
// and credentials, the pruning of fleet snapshots, the health engine's
// incidents, held actions, notices and saved state, synced messages
// (deduplication, sync cursors, paging), sends (idempotency,
// compare-and-set, the due sweep), webhooks and their deliveries (attempts
// appended, cascades), and concurrent use. Options add tests of
// capabilities some stores have (WithReopen, WithPruneBatchSize).
//
// The Go API is not stable.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/holdfast/holdfast"
)

// Option adds an optional capability to Run.
type Option func(*config)

type config struct {
	reopen       func(t *testing.T) func(t *testing.T) holdfast.Store
	setBatchSize func(s holdfast.Store, n int)
}

// WithReopen runs the persistence tests, for stores that keep their data
// after Close. newLocation makes a fresh, empty location (a database file, a
// schema) and returns a function that opens and migrates a store there; the
// suite calls it more than once, closing the store in between, and the
// returned stores must also be closed at the test's cleanup (Close must
// tolerate being called twice).
func WithReopen(newLocation func(t *testing.T) func(t *testing.T) holdfast.Store) Option {
	return func(c *config) { c.reopen = newLocation }
}

// WithPruneBatchSize runs the tests of PruneFleetSnapshots deleting in
// batches, for stores that delete in batches. setBatchSize sets the most
// rows one statement of s deletes, which the suite makes small; it is
// called before s is used.
func WithPruneBatchSize(setBatchSize func(s holdfast.Store, n int)) Option {
	return func(c *config) { c.setBatchSize = setBatchSize }
}

// conformanceTest is one test of the suite, run on a new store.
type conformanceTest struct {
	name string
	test func(t *testing.T, s holdfast.Store)
}

// Run runs the conformance suite. newStore must return an open, migrated
// and empty store, and close it when t's test ends; each test of the suite
// calls it once and runs in parallel with the others.
func Run(t *testing.T, newStore func(t *testing.T) holdfast.Store, opts ...Option) {
	t.Helper()
	var cfg config
	for _, opt := range opts {
		opt(&cfg)
	}
	tests := []conformanceTest{
		{"CreateInboxRoundTrip", testCreateInboxRoundTrip},
		{"CreateInboxDefaultTimes", testCreateInboxDefaultTimes},
		{"CreateInboxConflict", testCreateInboxConflict},
		{"CreateInboxInvalid", testCreateInboxInvalid},
		{"InboxNotFound", testInboxNotFound},
		{"InboxesFilter", testInboxesFilter},
		{"InboxesPaging", testInboxesPaging},
		{"InboxesLimit", testInboxesLimit},
		{"EventsOrderAndPaging", testEventsOrderAndPaging},
		{"EventsUnknownInbox", testEventsUnknownInbox},
		{"DeleteInbox", testDeleteInbox},
		{"ChangeState", testChangeState},
		{"ChangeStateConcurrentCompareAndSet", testChangeStateConcurrentCAS},
		{"SetCredentials", testSetCredentials},
		{"SwapCredentials", testSwapCredentials},
		{"CountInboxes", testCountInboxes},
		{"APIKeys", testAPIKeys},
		{"Incidents", testIncidents},
		{"HeldActions", testHeldActions},
		{"FindHeldActions", testFindHeldActions},
		{"HealthLimits", testHealthLimits},
		{"Notices", testNotices},
		{"NoticeOutbox", testNoticeOutbox},
		{"NoticeLimits", testNoticeLimits},
		{"EngineState", testEngineState},
		{"ReserveIDs", testReserveIDs},
		{"FleetSnapshots", testFleetSnapshots},
		{"PruneFleetSnapshots", testPruneFleetSnapshots},
		{"ConcurrentCreates", testConcurrentCreates},
		{"Ping", testPing},
	}
	tests = append(tests, mailTests...)
	tests = append(tests, webhookTests...)
	tests = append(tests, outboxTests...)
	tests = append(tests, oauthTests...)
	tests = append(tests, ownerTests...)
	tests = append(tests, apiKeyTests...)
	tests = append(tests, signingKeyTests...)
	tests = append(tests, leaseTests...)
	tests = append(tests, fleetTests...)
	tests = append(tests, lockTests...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.test(t, newStore(t))
		})
	}
	if cfg.reopen != nil {
		t.Run("ReopenKeepsData", func(t *testing.T) {
			t.Parallel()
			testReopen(t, cfg.reopen)
		})
	}
	if cfg.setBatchSize != nil {
		t.Run("PruneFleetSnapshotsInBatches", func(t *testing.T) {
			t.Parallel()
			testPruneFleetSnapshotsInBatches(t, newStore, cfg.setBatchSize)
		})
	}
}

// t0 has nanoseconds and a zone other than UTC, so that round trips show
// rounding down to microseconds and conversion to UTC.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("CET", 3600))

// stored returns t as a store keeps it.
func stored(t time.Time) time.Time { return t.UTC().Truncate(holdfast.StoreTimePrecision) }

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

// newID returns a random ID in the shape of holdfast IDs. Being random,
// IDs made one after the other do not sort in creation order, which is what
// the paging tests want.
func newID(prefix string) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// newInbox returns a complete IMAP inbox with a fresh ID and email.
func newInbox() *holdfast.Inbox {
	id := newID("inb")
	return &holdfast.Inbox{
		ID:          id,
		Email:       id + "@example.test",
		Provider:    holdfast.ProviderIMAP,
		Tenant:      "mail.example.test",
		Username:    id,
		IMAP:        &holdfast.ServerConfig{Host: "imap.example.test", Port: 993, Security: holdfast.SecurityTLS},
		SMTP:        &holdfast.ServerConfig{Host: "smtp.example.test", Port: 587, Security: holdfast.SecurityStartTLS},
		Credentials: []byte{0, 1, 2, 0xfe, 0xff, 'x'},
		State:       holdfast.StateConnecting,
		Reason:      "created",
		Message:     "Checking the sign-in.",
		Since:       t0,
		CreatedAt:   t0,
		UpdatedAt:   t0,
	}
}

// creation returns the creation event for in.
func creation(in *holdfast.Inbox) holdfast.Event {
	return holdfast.Event{
		InboxID:  in.ID,
		At:       in.CreatedAt,
		NewState: in.State,
		Reason:   "created",
		Message:  "Inbox connected.",
		Cause:    holdfast.CauseAPI,
	}
}

// mustCreate stores in with its creation event.
func mustCreate(t *testing.T, s holdfast.Store, in *holdfast.Inbox) *holdfast.Inbox {
	t.Helper()
	if err := s.CreateInbox(t.Context(), in, creation(in)); err != nil {
		t.Fatalf("CreateInbox(%s) = %v", in.ID, err)
	}
	return in
}

// ignoreEventID compares events without their store-assigned IDs.
var ignoreEventID = cmpopts.IgnoreFields(holdfast.Event{}, "ID")

func testCreateInboxRoundTrip(t *testing.T, s holdfast.Store) {
	tests := []struct {
		name  string
		inbox func() *holdfast.Inbox
	}{
		{"IMAPWithEverything", newInbox},
		{"OAuthWithoutServers", func() *holdfast.Inbox {
			in := newInbox()
			in.Provider = holdfast.ProviderMicrosoft
			in.Tenant = "contoso.example"
			in.Username = ""
			in.IMAP, in.SMTP = nil, nil
			in.State = holdfast.StateConnected
			in.Reason, in.Message = "", ""
			in.Since = t0.Add(time.Second)
			in.UpdatedAt = t0.Add(2 * time.Second)
			return in
		}},
		{"WithOwner", func() *holdfast.Inbox {
			in := newInbox()
			in.OwnerEmail = "Owner.Ann@example.test"
			return in
		}},
		{"DistinctTimes", func() *holdfast.Inbox {
			in := newInbox()
			in.Since = t0.Add(-time.Hour + 999*time.Nanosecond)
			in.UpdatedAt = t0.Add(time.Hour + time.Microsecond)
			return in
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			in := tt.inbox()
			want := tt.inbox()
			want.ID, want.Email, want.Username = in.ID, in.Email, in.Username
			want.Since, want.CreatedAt, want.UpdatedAt = stored(want.Since), stored(want.CreatedAt), stored(want.UpdatedAt)

			if err := s.CreateInbox(ctx, in, creation(in)); err != nil {
				t.Fatalf("CreateInbox = %v", err)
			}
			if diff := cmp.Diff(want, in); diff != "" {
				t.Errorf("CreateInbox left its argument as (-want +got):\n%s", diff)
			}
			got, err := s.Inbox(ctx, in.ID)
			if err != nil {
				t.Fatalf("Inbox(%s) = %v", in.ID, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Inbox(%s) mismatch (-want +got):\n%s", in.ID, diff)
			}
			for name, tm := range map[string]time.Time{"Since": got.Since, "CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt} {
				if tm.Location() != time.UTC {
					t.Errorf("Inbox(%s).%s location = %v; want UTC", in.ID, name, tm.Location())
				}
			}

			evs, err := s.Events(ctx, in.ID, holdfast.EventFilter{})
			if err != nil {
				t.Fatalf("Events(%s) = %v", in.ID, err)
			}
			wantEv := creation(want)
			if diff := cmp.Diff([]holdfast.Event{wantEv}, evs, ignoreEventID); diff != "" {
				t.Errorf("Events(%s) after CreateInbox mismatch (-want +got):\n%s", in.ID, diff)
			}
		})
	}
}

func testCreateInboxDefaultTimes(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := newInbox()
	in.Since, in.CreatedAt, in.UpdatedAt = time.Time{}, time.Time{}, time.Time{}
	before := stored(time.Now())
	if err := s.CreateInbox(ctx, in, holdfast.Event{Cause: holdfast.CauseAPI}); err != nil {
		t.Fatalf("CreateInbox = %v", err)
	}
	after := time.Now()
	got, err := s.Inbox(ctx, in.ID)
	if err != nil {
		t.Fatalf("Inbox = %v", err)
	}
	if got.CreatedAt.Before(before) || got.CreatedAt.After(after) {
		t.Errorf("CreatedAt = %v; want between %v and %v", got.CreatedAt, before, after)
	}
	if !got.Since.Equal(got.CreatedAt) || !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("Since, UpdatedAt = %v, %v; want both CreatedAt %v", got.Since, got.UpdatedAt, got.CreatedAt)
	}
	evs, err := s.Events(ctx, in.ID, holdfast.EventFilter{})
	if err != nil {
		t.Fatalf("Events = %v", err)
	}
	want := []holdfast.Event{{InboxID: in.ID, At: got.CreatedAt, NewState: in.State, Cause: holdfast.CauseAPI}}
	if diff := cmp.Diff(want, evs, ignoreEventID); diff != "" {
		t.Errorf("creation event with defaults mismatch (-want +got):\n%s", diff)
	}
}

func testCreateInboxConflict(t *testing.T, s holdfast.Store) {
	base := mustCreate(t, s, newInbox())
	tests := []struct {
		name    string
		inbox   func() *holdfast.Inbox
		wantErr error
	}{
		{"SameID", func() *holdfast.Inbox {
			in := newInbox()
			in.ID = base.ID
			return in
		}, holdfast.ErrConflict},
		{"SameProviderAndEmail", func() *holdfast.Inbox {
			in := newInbox()
			in.Email = base.Email
			return in
		}, holdfast.ErrConflict},
		{"SameProviderAndEmailOtherCase", func() *holdfast.Inbox {
			in := newInbox()
			in.Email = strings.ToUpper(base.Email)
			return in
		}, holdfast.ErrConflict},
		{"SameEmailOtherProvider", func() *holdfast.Inbox {
			in := newInbox()
			in.Email = base.Email
			in.Provider = holdfast.ProviderGoogle
			return in
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			in := tt.inbox()
			err := s.CreateInbox(ctx, in, creation(in))
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CreateInbox = %v; want %v", err, tt.wantErr)
			}
			if err == nil || in.ID == base.ID {
				return
			}
			// The failed create left no trace, not even its event.
			if _, err := s.Inbox(ctx, in.ID); !errors.Is(err, holdfast.ErrNotFound) {
				t.Errorf("Inbox(%s) after failed create = %v; want ErrNotFound", in.ID, err)
			}
			evs, err := s.Events(ctx, in.ID, holdfast.EventFilter{})
			if err != nil || len(evs) != 0 {
				t.Errorf("Events(%s) after failed create = %v, %v; want none", in.ID, evs, err)
			}
		})
	}
}

func testCreateInboxInvalid(t *testing.T, s holdfast.Store) {
	tests := []struct {
		name   string
		modify func(in *holdfast.Inbox)
	}{
		{"NoID", func(in *holdfast.Inbox) { in.ID = "" }},
		{"NoEmail", func(in *holdfast.Inbox) { in.Email = "" }},
		{"UnknownProvider", func(in *holdfast.Inbox) { in.Provider = "aol" }},
		{"UnknownState", func(in *holdfast.Inbox) { in.State = "sleepy" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := newInbox()
			tt.modify(in)
			err := s.CreateInbox(t.Context(), in, holdfast.Event{})
			var inv *holdfast.InvalidError
			if !errors.As(err, &inv) {
				t.Errorf("CreateInbox = %v; want *holdfast.InvalidError", err)
			}
		})
	}
}

func testInboxNotFound(t *testing.T, s holdfast.Store) {
	id := newID("inb")
	if _, err := s.Inbox(t.Context(), id); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("Inbox(%s) = %v; want ErrNotFound", id, err)
	}
}

// createFleet stores n inboxes per provider and state pair among states,
// and returns them sorted by ID.
func createFleet(t *testing.T, s holdfast.Store, n int, states []holdfast.State) []*holdfast.Inbox {
	t.Helper()
	var all []*holdfast.Inbox
	for _, p := range holdfast.Providers {
		for _, st := range states {
			for range n {
				in := newInbox()
				in.Provider, in.State = p, st
				all = append(all, mustCreate(t, s, in))
			}
		}
	}
	slices.SortFunc(all, func(a, b *holdfast.Inbox) int { return strings.Compare(a.ID, b.ID) })
	return all
}

// matching returns the IDs of the inboxes that f selects, ignoring paging.
func matching(all []*holdfast.Inbox, f holdfast.InboxFilter) []string {
	var ids []string
	for _, in := range all {
		if (f.State == "" || in.State == f.State) && (f.Provider == "" || in.Provider == f.Provider) {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

func ids(ins []*holdfast.Inbox) []string {
	var out []string
	for _, in := range ins {
		out = append(out, in.ID)
	}
	return out
}

var filterTests = []struct {
	name   string
	filter holdfast.InboxFilter
}{
	{"All", holdfast.InboxFilter{}},
	{"State", holdfast.InboxFilter{State: holdfast.StateDegraded}},
	{"Provider", holdfast.InboxFilter{Provider: holdfast.ProviderGoogle}},
	{"StateAndProvider", holdfast.InboxFilter{State: holdfast.StatePaused, Provider: holdfast.ProviderMicrosoft}},
	{"NoMatch", holdfast.InboxFilter{State: holdfast.StateNeedsAdmin}},
}

func testInboxesFilter(t *testing.T, s holdfast.Store) {
	all := createFleet(t, s, 2, []holdfast.State{holdfast.StateConnected, holdfast.StateDegraded, holdfast.StatePaused})
	for _, tt := range filterTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.Inboxes(t.Context(), tt.filter)
			if err != nil {
				t.Fatalf("Inboxes(%+v) = %v", tt.filter, err)
			}
			if diff := cmp.Diff(matching(all, tt.filter), ids(got), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Inboxes(%+v) IDs mismatch (-want +got):\n%s", tt.filter, diff)
			}
			for _, in := range got {
				if in.Credentials == nil || in.IMAP == nil {
					t.Errorf("Inboxes(%+v) returned inbox %s without all its fields", tt.filter, in.ID)
				}
			}
		})
	}
}

func testInboxesPaging(t *testing.T, s holdfast.Store) {
	all := createFleet(t, s, 4, []holdfast.State{holdfast.StateConnected, holdfast.StateDegraded, holdfast.StatePaused})
	for _, tt := range filterTests {
		for _, size := range []int{1, 5, 12} {
			t.Run(fmt.Sprintf("%s/Size%d", tt.name, size), func(t *testing.T) {
				t.Parallel()
				f := tt.filter
				f.Limit = size
				var got []string
				for page := 0; ; page++ {
					if page > len(all)+1 {
						t.Fatalf("paging with %+v does not end", f)
					}
					ins, err := s.Inboxes(t.Context(), f)
					if err != nil {
						t.Fatalf("Inboxes(%+v) = %v", f, err)
					}
					if len(ins) > size {
						t.Fatalf("Inboxes(%+v) returned %d inboxes; want at most %d", f, len(ins), size)
					}
					got = append(got, ids(ins)...)
					if len(ins) < size {
						break
					}
					f.After = ins[len(ins)-1].ID
				}
				if diff := cmp.Diff(matching(all, tt.filter), got, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("IDs over all pages mismatch (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func testInboxesLimit(t *testing.T, s holdfast.Store) {
	const n = 1001
	// Create concurrently: n transactions one after the other are slow on
	// a store that syncs every commit to disk.
	var (
		wg   sync.WaitGroup
		errs = make(chan error, n)
		next = make(chan int)
	)
	for range 8 {
		wg.Go(func() {
			for range next {
				in := newInbox()
				errs <- s.CreateInbox(t.Context(), in, creation(in))
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("CreateInbox = %v", err)
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
		t.Run(fmt.Sprintf("Limit%d", tt.limit), func(t *testing.T) {
			t.Parallel()
			got, err := s.Inboxes(t.Context(), holdfast.InboxFilter{Limit: tt.limit})
			if err != nil {
				t.Fatalf("Inboxes(Limit: %d) = %v", tt.limit, err)
			}
			if len(got) != tt.want {
				t.Errorf("Inboxes(Limit: %d) returned %d inboxes; want %d", tt.limit, len(got), tt.want)
			}
		})
	}
}

// changeStates moves in through states, one second apart after t0, and
// returns the events it expects, oldest first, creation included.
func changeStates(t *testing.T, s holdfast.Store, in *holdfast.Inbox, states ...holdfast.State) []holdfast.Event {
	t.Helper()
	want := []holdfast.Event{creation(in)}
	old := in.State
	for i, st := range states {
		c := holdfast.StateChange{
			To:      st,
			Reason:  fmt.Sprintf("reason_%d", i),
			Message: fmt.Sprintf("Message %d.", i),
			Cause:   holdfast.CauseHealth,
			At:      t0.Add(time.Duration(i+1) * time.Second),
		}
		if _, err := s.ChangeState(t.Context(), in.ID, c); err != nil {
			t.Fatalf("ChangeState(%s, %+v) = %v", in.ID, c, err)
		}
		want = append(want, holdfast.Event{
			InboxID: in.ID, At: stored(c.At), OldState: old, NewState: st,
			Reason: c.Reason, Message: c.Message, Cause: c.Cause,
		})
		old = st
	}
	return want
}

func testEventsOrderAndPaging(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	a := mustCreate(t, s, newInbox())
	b := mustCreate(t, s, newInbox())
	wantA := changeStates(t, s, a, holdfast.StateConnected, holdfast.StateDegraded, holdfast.StatePaused,
		holdfast.StateConnected, holdfast.StateSuspect, holdfast.StateNeedsReconnect)
	changeStates(t, s, b, holdfast.StateConnected, holdfast.StateDegraded)
	slices.Reverse(wantA)

	all, err := s.Events(ctx, a.ID, holdfast.EventFilter{})
	if err != nil {
		t.Fatalf("Events(%s) = %v", a.ID, err)
	}
	if diff := cmp.Diff(wantA, all, ignoreEventID); diff != "" {
		t.Fatalf("Events(%s) mismatch, newest first (-want +got):\n%s", a.ID, diff)
	}
	for i := 1; i < len(all); i++ {
		if all[i].ID >= all[i-1].ID {
			t.Errorf("event IDs %d then %d; want strictly decreasing", all[i-1].ID, all[i].ID)
		}
	}

	for _, size := range []int{1, 2, 3, 7, 100} {
		t.Run(fmt.Sprintf("Size%d", size), func(t *testing.T) {
			t.Parallel()
			f := holdfast.EventFilter{Limit: size}
			var got []holdfast.Event
			for page := 0; ; page++ {
				if page > len(all)+1 {
					t.Fatalf("paging with %+v does not end", f)
				}
				evs, err := s.Events(t.Context(), a.ID, f)
				if err != nil {
					t.Fatalf("Events(%s, %+v) = %v", a.ID, f, err)
				}
				got = append(got, evs...)
				if len(evs) < size {
					break
				}
				f.Before = evs[len(evs)-1].ID
			}
			if diff := cmp.Diff(all, got); diff != "" {
				t.Errorf("events over all pages mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func testEventsUnknownInbox(t *testing.T, s holdfast.Store) {
	mustCreate(t, s, newInbox())
	id := newID("inb")
	evs, err := s.Events(t.Context(), id, holdfast.EventFilter{})
	if err != nil || len(evs) != 0 {
		t.Errorf("Events(%s) = %v, %v; want no events and no error", id, evs, err)
	}
}

func testDeleteInbox(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	other := mustCreate(t, s, newInbox())
	want := changeStates(t, s, in, holdfast.StateDegraded)
	slices.Reverse(want)

	del := holdfast.Event{Reason: "deleted", Message: "Inbox disconnected.", Cause: holdfast.CauseAPI, At: t0.Add(time.Minute)}
	if err := s.DeleteInbox(ctx, in.ID, del); err != nil {
		t.Fatalf("DeleteInbox(%s) = %v", in.ID, err)
	}
	if _, err := s.Inbox(ctx, in.ID); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("Inbox(%s) after delete = %v; want ErrNotFound", in.ID, err)
	}
	if _, err := s.Inbox(ctx, other.ID); err != nil {
		t.Errorf("Inbox(%s), another inbox, after delete = %v", other.ID, err)
	}
	want = append([]holdfast.Event{{
		InboxID: in.ID, At: stored(del.At), OldState: holdfast.StateDegraded,
		Reason: del.Reason, Message: del.Message, Cause: del.Cause,
	}}, want...)
	evs, err := s.Events(ctx, in.ID, holdfast.EventFilter{})
	if err != nil {
		t.Fatalf("Events(%s) after delete = %v", in.ID, err)
	}
	if diff := cmp.Diff(want, evs, ignoreEventID); diff != "" {
		t.Errorf("Events(%s) after delete mismatch (-want +got):\n%s", in.ID, diff)
	}

	if err := s.DeleteInbox(ctx, in.ID, del); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("DeleteInbox(%s) twice = %v; want ErrNotFound", in.ID, err)
	}
	if evs, _ := s.Events(ctx, in.ID, holdfast.EventFilter{}); len(evs) != len(want) {
		t.Errorf("a failed delete appended an event: %d events; want %d", len(evs), len(want))
	}

	// The provider and email are free again.
	again := newInbox()
	again.Email = in.Email
	if err := s.CreateInbox(ctx, again, creation(again)); err != nil {
		t.Errorf("CreateInbox with a deleted inbox's email = %v", err)
	}
}

func testChangeState(t *testing.T, s holdfast.Store) {
	at := t0.Add(time.Hour)
	tests := []struct {
		name    string
		unknown bool // change an inbox that does not exist
		change  holdfast.StateChange
		wantErr error
		invalid bool // want *holdfast.InvalidError
		// keepSince: the state does not change, so neither does Since.
		keepSince bool
	}{
		{name: "Unconditional", change: holdfast.StateChange{To: holdfast.StateDegraded, Reason: "throttled", Message: "Slow.", Cause: holdfast.CauseHealth, At: at}},
		{name: "FromMatches", change: holdfast.StateChange{From: holdfast.StateConnected, To: holdfast.StateSuspect, Reason: "token_revoked", Cause: holdfast.CauseHealth, At: at}},
		{name: "FromDiffers", change: holdfast.StateChange{From: holdfast.StateDegraded, To: holdfast.StateConnected, At: at}, wantErr: holdfast.ErrConflict},
		{name: "SameState", change: holdfast.StateChange{To: holdfast.StateConnected, Reason: "recheck", Cause: holdfast.CauseOperator, At: at}, keepSince: true},
		{name: "UnknownInbox", unknown: true, change: holdfast.StateChange{To: holdfast.StateDegraded, At: at}, wantErr: holdfast.ErrNotFound},
		{name: "UnknownInboxWithFrom", unknown: true, change: holdfast.StateChange{From: holdfast.StateConnected, To: holdfast.StateDegraded, At: at}, wantErr: holdfast.ErrNotFound},
		{name: "InvalidState", change: holdfast.StateChange{To: "sleepy", At: at}, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			in := newInbox()
			in.State = holdfast.StateConnected
			mustCreate(t, s, in)
			id := in.ID
			if tt.unknown {
				id = newID("inb")
			}

			got, err := s.ChangeState(ctx, id, tt.change)
			var inv *holdfast.InvalidError
			switch {
			case tt.invalid && !errors.As(err, &inv):
				t.Fatalf("ChangeState = %v; want *holdfast.InvalidError", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("ChangeState = %v; want %v", err, tt.wantErr)
			case !tt.invalid && tt.wantErr == nil && err != nil:
				t.Fatalf("ChangeState = %v", err)
			}

			wantEvents := []holdfast.Event{creation(in)}
			want := *in
			if err == nil {
				want.State = tt.change.To
				want.Reason, want.Message = tt.change.Reason, tt.change.Message
				want.UpdatedAt = stored(at)
				if !tt.keepSince {
					want.Since = stored(at)
				}
				if diff := cmp.Diff(&want, got); diff != "" {
					t.Errorf("ChangeState returned (-want +got):\n%s", diff)
				}
				wantEvents = append([]holdfast.Event{{
					InboxID: id, At: stored(at), OldState: holdfast.StateConnected, NewState: tt.change.To,
					Reason: tt.change.Reason, Message: tt.change.Message, Cause: tt.change.Cause,
				}}, wantEvents...)
			}
			if tt.unknown {
				if evs, err := s.Events(ctx, id, holdfast.EventFilter{}); err != nil || len(evs) != 0 {
					t.Errorf("Events(%s) of the unknown inbox = %v, %v; want none", id, evs, err)
				}
				return
			}
			after, err := s.Inbox(ctx, in.ID)
			if err != nil {
				t.Fatalf("Inbox = %v", err)
			}
			if diff := cmp.Diff(&want, after); diff != "" {
				t.Errorf("Inbox after ChangeState (-want +got):\n%s", diff)
			}
			evs, err := s.Events(ctx, in.ID, holdfast.EventFilter{})
			if err != nil {
				t.Fatalf("Events = %v", err)
			}
			if diff := cmp.Diff(wantEvents, evs, ignoreEventID); diff != "" {
				t.Errorf("Events after ChangeState (-want +got):\n%s", diff)
			}
		})
	}
}

func testChangeStateConcurrentCAS(t *testing.T, s holdfast.Store) {
	const n = 8
	in := newInbox()
	in.State = holdfast.StateConnected
	mustCreate(t, s, in)
	var (
		wg   sync.WaitGroup
		errs = make(chan error, n)
	)
	for i := range n {
		wg.Go(func() {
			_, err := s.ChangeState(t.Context(), in.ID, holdfast.StateChange{
				From: holdfast.StateConnected, To: holdfast.StateSuspect,
				Reason: fmt.Sprint(i), Cause: holdfast.CauseHealth, At: t0.Add(time.Minute),
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	var won, lost int
	for err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, holdfast.ErrConflict):
			lost++
		default:
			t.Errorf("ChangeState = %v; want nil or ErrConflict", err)
		}
	}
	if won != 1 || lost != n-1 {
		t.Errorf("%d concurrent compare-and-sets: %d won, %d conflicted; want 1 and %d", n, won, lost, n-1)
	}
	evs, err := s.Events(t.Context(), in.ID, holdfast.EventFilter{})
	if err != nil || len(evs) != 2 {
		t.Errorf("Events = %d events, %v; want creation and one change", len(evs), err)
	}
}

func testSetCredentials(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	sealed := []byte("new sealed credentials \x00\xff")
	before := stored(time.Now())
	if err := s.SetCredentials(ctx, in.ID, sealed); err != nil {
		t.Fatalf("SetCredentials = %v", err)
	}
	got, err := s.Inbox(ctx, in.ID)
	if err != nil {
		t.Fatalf("Inbox = %v", err)
	}
	if !slices.Equal(got.Credentials, sealed) {
		t.Errorf("Credentials = %q; want %q", got.Credentials, sealed)
	}
	if got.UpdatedAt.Before(before) {
		t.Errorf("UpdatedAt = %v; want at least %v", got.UpdatedAt, before)
	}
	want := *in
	want.Credentials, want.UpdatedAt = sealed, got.UpdatedAt
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("SetCredentials changed more than credentials (-want +got):\n%s", diff)
	}

	id := newID("inb")
	if err := s.SetCredentials(ctx, id, sealed); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SetCredentials(%s) = %v; want ErrNotFound", id, err)
	}
}

func testSwapCredentials(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	sealed := []byte("swapped sealed credentials \x00\xff")
	before := stored(time.Now())
	if err := s.SwapCredentials(ctx, in.ID, in.Credentials, sealed); err != nil {
		t.Fatalf("SwapCredentials from the stored credentials = %v", err)
	}
	got, err := s.Inbox(ctx, in.ID)
	if err != nil {
		t.Fatalf("Inbox = %v", err)
	}
	if got.UpdatedAt.Before(before) {
		t.Errorf("UpdatedAt = %v; want at least %v", got.UpdatedAt, before)
	}
	want := *in
	want.Credentials, want.UpdatedAt = sealed, got.UpdatedAt
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("SwapCredentials stored (-want +got):\n%s", diff)
	}

	// A compare-and-set from anything but the stored value changes nothing.
	for _, tt := range []struct {
		name string
		old  []byte
	}{
		{"previous", in.Credentials},
		{"prefix", sealed[:len(sealed)-1]},
		{"longer", append(slices.Clone(sealed), 0)},
		{"nil", nil},
		{"empty", []byte{}},
	} {
		err := s.SwapCredentials(ctx, in.ID, tt.old, []byte("lost update"))
		if !errors.Is(err, holdfast.ErrConflict) {
			t.Errorf("SwapCredentials from the %s credentials = %v; want ErrConflict", tt.name, err)
		}
	}
	after, err := s.Inbox(ctx, in.ID)
	if err != nil {
		t.Fatalf("Inbox = %v", err)
	}
	if diff := cmp.Diff(got, after); diff != "" {
		t.Errorf("conflicting SwapCredentials changed the inbox (-want +got):\n%s", diff)
	}

	// No credentials compare equal to empty ones, whichever the store keeps.
	bare := newInbox()
	bare.Credentials = nil
	bare = mustCreate(t, s, bare)
	for i, old := range [][]byte{nil, []byte{}} {
		next := fmt.Appendf(nil, "sealed %d", i)
		if err := s.SwapCredentials(ctx, bare.ID, old, next); err != nil {
			t.Errorf("SwapCredentials from %#v on an inbox without credentials = %v", old, err)
		}
		if err := s.SwapCredentials(ctx, bare.ID, next, old); err != nil {
			t.Errorf("SwapCredentials back to %#v = %v", old, err)
		}
	}
	got, err = s.Inbox(ctx, bare.ID)
	if err != nil || len(got.Credentials) != 0 {
		t.Errorf("Inbox without credentials = %q, %v; want none", got.Credentials, err)
	}

	id := newID("inb")
	if err := s.SwapCredentials(ctx, id, nil, sealed); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SwapCredentials(%s) = %v; want ErrNotFound", id, err)
	}
	if err := s.DeleteInbox(ctx, in.ID, holdfast.Event{Reason: "deleted", Cause: holdfast.CauseAPI}); err != nil {
		t.Fatalf("DeleteInbox = %v", err)
	}
	if err := s.SwapCredentials(ctx, in.ID, sealed, []byte("after delete")); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SwapCredentials of a deleted inbox = %v; want ErrNotFound", err)
	}
}

func testCountInboxes(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	got, err := s.CountInboxes(ctx)
	if err != nil || len(got) != 0 {
		t.Fatalf("CountInboxes of an empty store = %v, %v; want none", got, err)
	}
	for _, c := range []struct {
		p holdfast.Provider
		s holdfast.State
		n int
	}{
		{holdfast.ProviderMicrosoft, holdfast.StateConnected, 3},
		{holdfast.ProviderMicrosoft, holdfast.StatePaused, 2},
		{holdfast.ProviderGoogle, holdfast.StateNeedsReconnect, 1},
		{holdfast.ProviderIMAP, holdfast.StateConnected, 4},
	} {
		for range c.n {
			in := newInbox()
			in.Provider, in.State = c.p, c.s
			mustCreate(t, s, in)
		}
	}
	got, err = s.CountInboxes(ctx)
	if err != nil {
		t.Fatalf("CountInboxes = %v", err)
	}
	want := []holdfast.InboxCount{
		{Provider: holdfast.ProviderGoogle, State: holdfast.StateNeedsReconnect, Count: 1},
		{Provider: holdfast.ProviderIMAP, State: holdfast.StateConnected, Count: 4},
		{Provider: holdfast.ProviderMicrosoft, State: holdfast.StateConnected, Count: 3},
		{Provider: holdfast.ProviderMicrosoft, State: holdfast.StatePaused, Count: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("CountInboxes mismatch (-want +got):\n%s", diff)
	}
}

func testAPIKeys(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	newKey := func() *holdfast.APIKey {
		id := newID("key")
		return &holdfast.APIKey{ID: id, Name: "ops " + id, Hash: []byte(id + "\x00hash"), Prefix: "hf_" + id[4:10], CreatedAt: t0}
	}
	k := newKey()
	if err := s.CreateAPIKey(ctx, k); err != nil {
		t.Fatalf("CreateAPIKey = %v", err)
	}
	want := *k
	want.CreatedAt = stored(t0)
	if diff := cmp.Diff(&want, k); diff != "" {
		t.Errorf("CreateAPIKey left its argument as (-want +got):\n%s", diff)
	}

	tests := []struct {
		name    string
		run     func(t *testing.T) error
		wantErr error
	}{
		{"LookupByHash", func(t *testing.T) error {
			got, err := s.APIKeyByHash(t.Context(), want.Hash)
			if err == nil {
				if diff := cmp.Diff(&want, got); diff != "" {
					t.Errorf("APIKeyByHash mismatch (-want +got):\n%s", diff)
				}
				if got.CreatedAt.Location() != time.UTC {
					t.Errorf("CreatedAt location = %v; want UTC", got.CreatedAt.Location())
				}
			}
			return err
		}, nil},
		{"UnknownHash", func(t *testing.T) error {
			_, err := s.APIKeyByHash(t.Context(), []byte("no such hash"))
			return err
		}, holdfast.ErrNotFound},
		{"DuplicateHash", func(t *testing.T) error {
			d := newKey()
			d.Hash = want.Hash
			return s.CreateAPIKey(t.Context(), d)
		}, holdfast.ErrConflict},
		{"DuplicateID", func(t *testing.T) error {
			d := newKey()
			d.ID = want.ID
			return s.CreateAPIKey(t.Context(), d)
		}, holdfast.ErrConflict},
		{"AnotherKey", func(t *testing.T) error {
			return s.CreateAPIKey(t.Context(), newKey())
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.run(t)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("err = %v; want %v", err, tt.wantErr)
			}
		})
	}
}

func testFleetSnapshots(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	t1, t2 := t0, t0.Add(time.Minute)
	first := []holdfast.InboxCount{
		{Provider: holdfast.ProviderGoogle, State: holdfast.StateConnected, Count: 10},
		{Provider: holdfast.ProviderGoogle, State: holdfast.StatePaused, Count: 0},
		{Provider: holdfast.ProviderMicrosoft, State: holdfast.StateConnected, Count: 1_700_000},
	}
	second := []holdfast.InboxCount{
		{Provider: holdfast.ProviderIMAP, State: holdfast.StateDegraded, Count: 3},
	}
	// Appended in reverse order of time, and of provider within the
	// first, to show that reads sort.
	if err := s.AppendFleetSnapshot(ctx, t2, second); err != nil {
		t.Fatalf("AppendFleetSnapshot(t2) = %v", err)
	}
	rev := slices.Clone(first)
	slices.Reverse(rev)
	if err := s.AppendFleetSnapshot(ctx, t1, rev); err != nil {
		t.Fatalf("AppendFleetSnapshot(t1) = %v", err)
	}
	if err := s.AppendFleetSnapshot(ctx, t2.Add(time.Minute), nil); err != nil {
		t.Fatalf("AppendFleetSnapshot with no counts = %v", err)
	}

	tests := []struct {
		name  string
		since time.Time
		want  []holdfast.FleetSnapshot
	}{
		{"All", time.Time{}, []holdfast.FleetSnapshot{{At: stored(t1), Counts: first}, {At: stored(t2), Counts: second}}},
		{"SinceFirst", stored(t1), []holdfast.FleetSnapshot{{At: stored(t1), Counts: first}, {At: stored(t2), Counts: second}}},
		{"JustAfterFirst", t1.Add(time.Nanosecond), []holdfast.FleetSnapshot{{At: stored(t2), Counts: second}}},
		{"SinceSecond", stored(t2), []holdfast.FleetSnapshot{{At: stored(t2), Counts: second}}},
		// t2 itself is later than the stored t2, rounded down.
		{"SinceUnroundedSecond", t2, nil},
		{"AfterAll", t2.Add(time.Second), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := s.FleetSnapshots(t.Context(), tt.since)
			if err != nil {
				t.Fatalf("FleetSnapshots(%v) = %v", tt.since, err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("FleetSnapshots(%v) mismatch (-want +got):\n%s", tt.since, diff)
			}
		})
	}

	err := s.AppendFleetSnapshot(ctx, t1, first[:1])
	if !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("AppendFleetSnapshot at a taken time = %v; want ErrConflict", err)
	}
}

func testPruneFleetSnapshots(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	if n, err := s.PruneFleetSnapshots(ctx, t0); err != nil || n != 0 {
		t.Fatalf("PruneFleetSnapshots of an empty store = %d, %v; want 0, nil", n, err)
	}
	t1, t2, t3 := t0, t0.Add(time.Minute), t0.Add(2*time.Minute)
	first := []holdfast.InboxCount{
		{Provider: holdfast.ProviderGoogle, State: holdfast.StateConnected, Count: 10},
		{Provider: holdfast.ProviderGoogle, State: holdfast.StatePaused, Count: 0},
		{Provider: holdfast.ProviderMicrosoft, State: holdfast.StateConnected, Count: 2},
	}
	second := []holdfast.InboxCount{
		{Provider: holdfast.ProviderIMAP, State: holdfast.StateDegraded, Count: 3},
	}
	third := []holdfast.InboxCount{
		{Provider: holdfast.ProviderGoogle, State: holdfast.StateConnected, Count: 11},
		{Provider: holdfast.ProviderIMAP, State: holdfast.StateDegraded, Count: 2},
	}
	for _, snap := range []holdfast.FleetSnapshot{{At: t1, Counts: first}, {At: t2, Counts: second}, {At: t3, Counts: third}} {
		if err := s.AppendFleetSnapshot(ctx, snap.At, snap.Counts); err != nil {
			t.Fatalf("AppendFleetSnapshot(%v) = %v", snap.At, err)
		}
	}

	// The steps run in order, each on what the previous left.
	steps := []struct {
		name   string
		before time.Time
		want   int64
		left   []holdfast.FleetSnapshot
	}{
		{"BeforeAll", t1.Add(-time.Hour), 0, []holdfast.FleetSnapshot{{At: stored(t1), Counts: first}, {At: stored(t2), Counts: second}, {At: stored(t3), Counts: third}}},
		// A snapshot taken at before is kept.
		{"AtFirst", stored(t1), 0, []holdfast.FleetSnapshot{{At: stored(t1), Counts: first}, {At: stored(t2), Counts: second}, {At: stored(t3), Counts: third}}},
		// t1 itself is later than the stored t1, rounded down.
		{"UnroundedFirst", t1, 3, []holdfast.FleetSnapshot{{At: stored(t2), Counts: second}, {At: stored(t3), Counts: third}}},
		{"AtThird", stored(t3), 1, []holdfast.FleetSnapshot{{At: stored(t3), Counts: third}}},
		{"AtThirdAgain", stored(t3), 0, []holdfast.FleetSnapshot{{At: stored(t3), Counts: third}}},
		{"AfterAll", t3.Add(time.Hour), 2, nil},
	}
	for _, st := range steps {
		n, err := s.PruneFleetSnapshots(ctx, st.before)
		if err != nil || n != st.want {
			t.Fatalf("%s: PruneFleetSnapshots(%v) = %d, %v; want %d, nil", st.name, st.before, n, err, st.want)
		}
		got, err := s.FleetSnapshots(ctx, time.Time{})
		if err != nil {
			t.Fatalf("%s: FleetSnapshots = %v", st.name, err)
		}
		if diff := cmp.Diff(st.left, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: FleetSnapshots after PruneFleetSnapshots(%v) (-want +got):\n%s", st.name, st.before, diff)
		}
	}
}

// testPruneFleetSnapshotsInBatches prunes with batch sizes that divide the
// rows to delete, and that do not, so that pruning takes several
// statements, the last one full or not.
func testPruneFleetSnapshotsInBatches(t *testing.T, newStore func(t *testing.T) holdfast.Store, setBatchSize func(s holdfast.Store, n int)) {
	for _, size := range []int{1, 4, 5, 12, 13} {
		t.Run(fmt.Sprintf("Size%d", size), func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			setBatchSize(s, size)
			ctx := t.Context()
			// Three old snapshots of four counts each: 12 rows to delete.
			for i := range 3 {
				counts := make([]holdfast.InboxCount, 0, 4)
				for _, st := range holdfast.States[:4] {
					counts = append(counts, holdfast.InboxCount{Provider: holdfast.ProviderGoogle, State: st, Count: int64(i)})
				}
				if err := s.AppendFleetSnapshot(ctx, t0.Add(time.Duration(i)*time.Minute), counts); err != nil {
					t.Fatalf("AppendFleetSnapshot = %v", err)
				}
			}
			kept := holdfast.FleetSnapshot{At: stored(t0.Add(time.Hour)), Counts: []holdfast.InboxCount{{Provider: holdfast.ProviderIMAP, State: holdfast.StateConnected, Count: 1}}}
			if err := s.AppendFleetSnapshot(ctx, kept.At, kept.Counts); err != nil {
				t.Fatalf("AppendFleetSnapshot = %v", err)
			}

			if n, err := s.PruneFleetSnapshots(ctx, kept.At); err != nil || n != 12 {
				t.Fatalf("PruneFleetSnapshots = %d, %v; want 12, nil", n, err)
			}
			got, err := s.FleetSnapshots(ctx, time.Time{})
			if err != nil {
				t.Fatalf("FleetSnapshots = %v", err)
			}
			if diff := cmp.Diff([]holdfast.FleetSnapshot{kept}, got); diff != "" {
				t.Errorf("FleetSnapshots after pruning (-want +got):\n%s", diff)
			}
		})
	}
}

func testConcurrentCreates(t *testing.T, s holdfast.Store) {
	const workers, each = 8, 25
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		want []string
	)
	for range workers {
		wg.Go(func() {
			for range each {
				in := newInbox()
				if err := s.CreateInbox(t.Context(), in, creation(in)); err != nil {
					t.Errorf("CreateInbox = %v", err)
					return
				}
				if _, err := s.Inbox(t.Context(), in.ID); err != nil {
					t.Errorf("Inbox = %v", err)
					return
				}
				mu.Lock()
				want = append(want, in.ID)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(want)
	got, err := s.Inboxes(t.Context(), holdfast.InboxFilter{Limit: 1000})
	if err != nil {
		t.Fatalf("Inboxes = %v", err)
	}
	if diff := cmp.Diff(want, ids(got)); diff != "" {
		t.Errorf("inboxes after concurrent creates (-want +got):\n%s", diff)
	}
	counts, err := s.CountInboxes(t.Context())
	if err != nil || len(counts) != 1 || counts[0].Count != workers*each {
		t.Errorf("CountInboxes = %v, %v; want one count of %d", counts, err, workers*each)
	}
}

func testPing(t *testing.T, s holdfast.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping = %v", err)
	}
}

func testReopen(t *testing.T, newLocation func(t *testing.T) func(t *testing.T) holdfast.Store) {
	ctx := t.Context()
	open := newLocation(t)

	s := open(t)
	in := mustCreate(t, s, newInbox())
	changeStates(t, s, in, holdfast.StateConnected)
	key := &holdfast.APIKey{ID: newID("key"), Name: "ops", Hash: []byte("hash"), Prefix: "hf_abcdef", CreatedAt: t0}
	if err := s.CreateAPIKey(ctx, key); err != nil {
		t.Fatalf("CreateAPIKey = %v", err)
	}
	if err := s.AppendFleetSnapshot(ctx, t0, []holdfast.InboxCount{{Provider: in.Provider, State: holdfast.StateConnected, Count: 1}}); err != nil {
		t.Fatalf("AppendFleetSnapshot = %v", err)
	}
	incident := newIncident(1)
	mustSaveIncidents(t, s, incident)
	if err := s.SaveEngineState(ctx, t0, []byte("engine state")); err != nil {
		t.Fatalf("SaveEngineState = %v", err)
	}
	wantInbox, err := s.Inbox(ctx, in.ID)
	if err != nil {
		t.Fatalf("Inbox = %v", err)
	}
	wantEvents, err := s.Events(ctx, in.ID, holdfast.EventFilter{})
	if err != nil {
		t.Fatalf("Events = %v", err)
	}
	wantSnaps, err := s.FleetSnapshots(ctx, time.Time{})
	if err != nil {
		t.Fatalf("FleetSnapshots = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}

	s = open(t)
	gotInbox, err := s.Inbox(ctx, in.ID)
	if err != nil {
		t.Fatalf("Inbox after reopen = %v", err)
	}
	if diff := cmp.Diff(wantInbox, gotInbox); diff != "" {
		t.Errorf("Inbox after reopen (-want +got):\n%s", diff)
	}
	gotEvents, err := s.Events(ctx, in.ID, holdfast.EventFilter{})
	if err != nil {
		t.Fatalf("Events after reopen = %v", err)
	}
	if diff := cmp.Diff(wantEvents, gotEvents); diff != "" {
		t.Errorf("Events after reopen (-want +got):\n%s", diff)
	}
	if _, err := s.APIKeyByHash(ctx, key.Hash); err != nil {
		t.Errorf("APIKeyByHash after reopen = %v", err)
	}
	gotSnaps, err := s.FleetSnapshots(ctx, time.Time{})
	if err != nil {
		t.Fatalf("FleetSnapshots after reopen = %v", err)
	}
	if diff := cmp.Diff(wantSnaps, gotSnaps); diff != "" {
		t.Errorf("FleetSnapshots after reopen (-want +got):\n%s", diff)
	}
	gotIncident, err := s.IncidentByID(ctx, incident.ID)
	if err != nil {
		t.Fatalf("IncidentByID after reopen = %v", err)
	}
	if diff := cmp.Diff(storedIncident(incident), gotIncident); diff != "" {
		t.Errorf("IncidentByID after reopen (-want +got):\n%s", diff)
	}
	if at, state, err := s.EngineState(ctx); err != nil || !at.Equal(stored(t0)) || string(state) != "engine state" {
		t.Errorf("EngineState after reopen = %v, %q, %v; want %v, %q, nil", at, state, err, stored(t0), "engine state")
	}
	// A new event continues the log after the old ones.
	if _, err := s.ChangeState(ctx, in.ID, holdfast.StateChange{To: holdfast.StateDegraded, At: t0.Add(time.Hour)}); err != nil {
		t.Fatalf("ChangeState after reopen = %v", err)
	}
	evs, err := s.Events(ctx, in.ID, holdfast.EventFilter{Limit: 1})
	if err != nil || len(evs) != 1 || evs[0].ID <= wantEvents[0].ID {
		t.Errorf("newest event after reopen = %v, %v; want an ID above %d", evs, err, wantEvents[0].ID)
	}
}

// Migrator is a store whose schema Migrate brings up to date, such as
// *sqlite.Store and *postgres.Store.
type Migrator interface {
	holdfast.Store
	Migrate(ctx context.Context) error
}

// Open returns the store open returns, migrated and closed when t ends; it
// fails t if either step fails. It serves the engines' test helpers
// (sqlitetest, pgtest).
func Open[S Migrator](t testing.TB, open func(ctx context.Context) (S, error)) S {
	t.Helper()
	st, err := open(t.Context())
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(t.Context()); err != nil {
		t.Fatalf("migrate store: %v", err)
	}
	return st
}

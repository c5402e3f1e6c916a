package storetest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/holdfast/holdfast"
)

// testNoticeOutbox checks the notification outbox: a new notice is
// pending, selected by ID, inbox, recipient (case-insensitive) and status,
// and moved between statuses by compare-and-set.
func testNoticeOutbox(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	a, b := newInbox(), newInbox()
	b.Email = strings.ToUpper(a.Email[:1]) + a.Email[1:] // same owner, other case
	b.Provider = holdfast.ProviderMicrosoft
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	gone := newID("inb") // a notice whose inbox does not exist (deleted)

	notices := []*holdfast.Notice{
		{InboxID: a.ID, Episode: 1, Reason: "invalid_grant", At: t0},
		{InboxID: b.ID, Episode: 4, Admin: true, Reason: "admin_consent_revoked", At: t0.Add(time.Second)},
		{InboxID: gone, Episode: 2, Reason: "invalid_grant", At: t0.Add(2 * time.Second)},
	}
	for _, n := range notices {
		if err := s.AppendNotice(ctx, n); err != nil {
			t.Fatalf("AppendNotice(%s) = %v", n.InboxID, err)
		}
	}
	rec := func(n *holdfast.Notice, recipient string) *holdfast.NoticeRecord {
		return &holdfast.NoticeRecord{Notice: *n, Recipient: recipient, Status: holdfast.NoticePending, UpdatedAt: n.At}
	}
	ra, rb, rg := rec(notices[0], a.Email), rec(notices[1], b.Email), rec(notices[2], "")

	list := func(t *testing.T, f holdfast.NoticeFilter) []*holdfast.NoticeRecord {
		t.Helper()
		got, err := s.NoticeRecords(ctx, f)
		if err != nil {
			t.Fatalf("NoticeRecords(%+v) = %v", f, err)
		}
		for _, n := range got {
			checkUTC(t, "notice", n.At)
			checkUTC(t, "notice updated", n.UpdatedAt)
		}
		return got
	}
	tests := []struct {
		name string
		f    holdfast.NoticeFilter
		want []*holdfast.NoticeRecord
	}{
		{"All", holdfast.NoticeFilter{}, []*holdfast.NoticeRecord{ra, rb, rg}},
		{"ByID", holdfast.NoticeFilter{ID: notices[1].ID}, []*holdfast.NoticeRecord{rb}},
		{"ByInbox", holdfast.NoticeFilter{InboxID: a.ID}, []*holdfast.NoticeRecord{ra}},
		{"ByRecipientAnyCase", holdfast.NoticeFilter{Recipient: strings.ToUpper(a.Email)}, []*holdfast.NoticeRecord{ra, rb}},
		{"Pending", holdfast.NoticeFilter{Status: holdfast.NoticePending}, []*holdfast.NoticeRecord{ra, rb, rg}},
		{"PendingLimit", holdfast.NoticeFilter{Status: holdfast.NoticePending, Limit: 1}, []*holdfast.NoticeRecord{ra}},
		{"Sent", holdfast.NoticeFilter{Status: holdfast.NoticeSent}, nil},
		{"Unknown", holdfast.NoticeFilter{ID: 1 << 40}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(t, tt.f), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: NoticeRecords mismatch (-want +got):\n%s", tt.name, diff)
		}
	}

	// Claimed, then sent: SentAt is the time of the change to sent.
	claimAt, sentAt := t0.Add(time.Minute), t0.Add(2*time.Minute)
	wantB := checkNoticeChanges(t, s, ra, rb, claimAt, sentAt)
	if diff := cmp.Diff([]*holdfast.NoticeRecord{rg}, list(t, holdfast.NoticeFilter{Status: holdfast.NoticePending}), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("pending after the changes mismatch (-want +got):\n%s", diff)
	}
	// The filters on what the changes set, and the newest first.
	wantA := *ra
	wantA.Status, wantA.UpdatedAt, wantA.SentAt = holdfast.NoticeSent, stored(sentAt), stored(sentAt)
	ra, rb = &wantA, &wantB
	tests = []struct {
		name string
		f    holdfast.NoticeFilter
		want []*holdfast.NoticeRecord
	}{
		{"StatusReason", holdfast.NoticeFilter{StatusReason: "recovered"}, []*holdfast.NoticeRecord{rb}},
		{"StatusAndReason", holdfast.NoticeFilter{Status: holdfast.NoticeSent, StatusReason: "recovered"}, nil},
		{"UpdatedSince", holdfast.NoticeFilter{UpdatedSince: t0.Add(30 * time.Second)}, []*holdfast.NoticeRecord{ra, rb}},
		// claimAt is stored rounded down, so before claimAt.
		{"UpdatedSinceRounding", holdfast.NoticeFilter{UpdatedSince: claimAt}, []*holdfast.NoticeRecord{ra}},
		{"UpdatedUntil", holdfast.NoticeFilter{UpdatedUntil: claimAt}, []*holdfast.NoticeRecord{rb, rg}},
		{"UpdatedWindow", holdfast.NoticeFilter{UpdatedSince: t0.Add(time.Second), UpdatedUntil: t0.Add(90 * time.Second)}, []*holdfast.NoticeRecord{rb, rg}},
		{"Newest", holdfast.NoticeFilter{Newest: true}, []*holdfast.NoticeRecord{rg, rb, ra}},
		{"NewestLimit", holdfast.NoticeFilter{Newest: true, Limit: 2}, []*holdfast.NoticeRecord{rg, rb}},
		{"NewestByRecipient", holdfast.NoticeFilter{Recipient: a.Email, Newest: true}, []*holdfast.NoticeRecord{rb, ra}},
		{"NewestPending", holdfast.NoticeFilter{Status: holdfast.NoticePending, Newest: true}, []*holdfast.NoticeRecord{rg}},
		{"ByInboxAndStatus", holdfast.NoticeFilter{InboxID: a.ID, Status: holdfast.NoticeSent}, []*holdfast.NoticeRecord{ra}},
		{"ByInboxOtherStatus", holdfast.NoticeFilter{InboxID: a.ID, Status: holdfast.NoticePending}, nil},
		{"ByInboxNewest", holdfast.NoticeFilter{InboxID: b.ID, Newest: true, Limit: 1}, []*holdfast.NoticeRecord{rb}},
		{"ByInboxAndID", holdfast.NoticeFilter{InboxID: a.ID, ID: rb.ID}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, list(t, tt.f), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: NoticeRecords mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	// Notices (the engine's view) is unchanged by the outbox.
	old, err := s.Notices(ctx, a.ID)
	if err != nil || len(old) != 1 || *old[0] != *notices[0] {
		t.Errorf("Notices(%s) = %v, %v; want the appended notice", a.ID, old, err)
	}
}

// checkNoticeChanges is testNoticeOutbox's check of ChangeNotice: ra is
// claimed at claimAt and sent at sentAt, rb cancelled at claimAt. It
// returns rb as cancelled.
func checkNoticeChanges(t *testing.T, s holdfast.Store, ra, rb *holdfast.NoticeRecord, claimAt, sentAt time.Time) holdfast.NoticeRecord {
	ctx := t.Context()
	got, err := s.ChangeNotice(ctx, ra.ID, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeSending, At: claimAt})
	if err != nil {
		t.Fatalf("ChangeNotice(pending → sending) = %v", err)
	}
	if got.Status != holdfast.NoticeSending || !got.UpdatedAt.Equal(stored(claimAt)) || !got.SentAt.IsZero() {
		t.Errorf("ChangeNotice(pending → sending) = %+v; want sending at %v, not sent", got, claimAt)
	}
	// A second claim loses: the notice is no longer pending.
	_, err = s.ChangeNotice(ctx, ra.ID, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeSending})
	if !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("second ChangeNotice(pending → sending) = %v; want ErrConflict", err)
	}
	got, err = s.ChangeNotice(ctx, ra.ID, holdfast.NoticeChange{From: holdfast.NoticeSending, To: holdfast.NoticeSent, At: sentAt})
	if err != nil {
		t.Fatalf("ChangeNotice(sending → sent) = %v", err)
	}
	if !got.SentAt.Equal(stored(sentAt)) || got.SentAt.Location() != time.UTC {
		t.Errorf("ChangeNotice(sending → sent) SentAt = %v; want %v", got.SentAt, stored(sentAt))
	}
	// Cancelled with a reason.
	got, err = s.ChangeNotice(ctx, rb.ID, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeCancelled, Reason: "recovered", At: claimAt})
	if err != nil {
		t.Fatalf("ChangeNotice(pending → cancelled) = %v", err)
	}
	wantB := *rb
	wantB.Status, wantB.StatusReason, wantB.UpdatedAt = holdfast.NoticeCancelled, "recovered", stored(claimAt)
	if diff := cmp.Diff(&wantB, got); diff != "" {
		t.Errorf("ChangeNotice(pending → cancelled) mismatch (-want +got):\n%s", diff)
	}
	if _, err := s.ChangeNotice(ctx, 1<<40, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeSent}); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("ChangeNotice of an unknown notice = %v; want ErrNotFound", err)
	}
	return wantB
}

// testNoticeLimits checks the page size rules of NoticeRecords, and that
// newest first it returns the last notices recorded, also when the store
// holds more than the most a page can.
func testNoticeLimits(t *testing.T, s holdfast.Store) {
	const n = 1001
	inbox := newID("inb")
	// Append concurrently: n commits one after the other are slow on a
	// store that syncs every commit to disk.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  []int64
		errs = make(chan error, n)
		next = make(chan int64)
	)
	for range 8 {
		wg.Go(func() {
			for episode := range next {
				no := &holdfast.Notice{InboxID: inbox, Episode: episode, Reason: "invalid_grant", At: t0}
				err := s.AppendNotice(t.Context(), no)
				errs <- err
				if err == nil {
					mu.Lock()
					ids = append(ids, no.ID)
					mu.Unlock()
				}
			}
		})
	}
	for episode := range int64(n) {
		next <- episode + 1
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("AppendNotice = %v", err)
		}
	}
	slices.Sort(ids)
	newest := slices.Clone(ids)
	slices.Reverse(newest)

	tests := []struct {
		name string
		f    holdfast.NoticeFilter
		want []int64
	}{
		{"Default", holdfast.NoticeFilter{}, ids[:100]},
		{"Oldest", holdfast.NoticeFilter{Limit: 1000}, ids[:1000]},
		{"OverMax", holdfast.NoticeFilter{Limit: 1 << 30}, ids[:1000]},
		{"Newest", holdfast.NoticeFilter{Newest: true, Limit: 1000}, newest[:1000]},
		{"NewestDefault", holdfast.NoticeFilter{Newest: true}, newest[:100]},
		{"PendingOldest", holdfast.NoticeFilter{Status: holdfast.NoticePending, Limit: 1000}, ids[:1000]},
		{"PendingNewest", holdfast.NoticeFilter{Status: holdfast.NoticePending, Newest: true, Limit: 1 << 30}, newest[:1000]},
		{"InboxNewest", holdfast.NoticeFilter{InboxID: inbox, Newest: true, Limit: 1}, newest[:1]},
		{"InboxOldest", holdfast.NoticeFilter{InboxID: inbox, Limit: 1}, ids[:1]},
		{"CancelledNewest", holdfast.NoticeFilter{Status: holdfast.NoticeCancelled, Newest: true, Limit: 1000}, nil},
	}
	for _, tt := range tests {
		recs, err := s.NoticeRecords(t.Context(), tt.f)
		if err != nil {
			t.Errorf("%s: NoticeRecords(%+v) = %v", tt.name, tt.f, err)
			continue
		}
		var got []int64
		for _, r := range recs {
			got = append(got, r.ID)
		}
		if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: NoticeRecords(%+v) IDs mismatch (-want +got):\n%s", tt.name, tt.f, diff)
		}
	}
}

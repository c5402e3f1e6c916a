package notify_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// mail is one message the fake mailer accepted.
type mail struct {
	To  []string
	Raw string
}

// fakeMailer records messages; FailFunc, if set, fails a send.
type fakeMailer struct {
	mu       sync.Mutex
	sent     []mail
	FailFunc func() error
}

func (m *fakeMailer) Send(_ context.Context, _ string, to []string, raw []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.FailFunc != nil {
		if err := m.FailFunc(); err != nil {
			return err
		}
	}
	m.sent = append(m.sent, mail{To: to, Raw: string(raw)})
	return nil
}

func (m *fakeMailer) Sent() []mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]mail(nil), m.sent...)
}

type testBundle struct {
	store  *sqlite.Store
	path   string
	clock  *fakeClock
	mailer *fakeMailer
	links  *notify.Links
	n      *notify.Notifier
}

func openStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate = %v", err)
	}
	return s
}

func newNotifier(t *testing.T, b *testBundle, resolved bool, tmpl *notify.Templates) *notify.Notifier {
	t.Helper()
	n, err := notify.New(notify.Config{
		Store: b.store, Mailer: b.mailer, Links: b.links, From: "holdfast <no-reply@holdfast.test>",
		Templates: tmpl, Resolved: resolved, Clock: b.clock, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatalf("notify.New = %v", err)
	}
	return n
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "holdfast.db")
	links, err := notify.NewLinks([]byte(strings.Repeat("k", 32)), "https://holdfast.example.test/", 0)
	if err != nil {
		t.Fatal(err)
	}
	b := &testBundle{store: openStore(t, path), path: path, clock: &fakeClock{now: t0}, mailer: &fakeMailer{}, links: links}
	b.n = newNotifier(t, b, true, nil)
	return b
}

// inbox creates an inbox of the owner email in state st.
func (b *testBundle) inbox(t *testing.T, id, email string, p holdfast.Provider, st holdfast.State) *holdfast.Inbox {
	t.Helper()
	in := &holdfast.Inbox{
		ID: id, Email: email, Provider: p, Tenant: "example.test", State: holdfast.StateConnected,
		Reason: "created", Credentials: []byte("sealed"), Since: t0, CreatedAt: t0, UpdatedAt: t0,
	}
	if err := b.store.CreateInbox(t.Context(), in, holdfast.Event{InboxID: id, At: t0, NewState: in.State, Reason: "created", Cause: holdfast.CauseAPI}); err != nil {
		t.Fatalf("CreateInbox = %v", err)
	}
	if st != holdfast.StateConnected {
		b.move(t, id, st, holdfast.CauseHealth)
	}
	return in
}

func (b *testBundle) move(t *testing.T, id string, st holdfast.State, cause holdfast.Cause) {
	t.Helper()
	if _, err := b.store.ChangeState(t.Context(), id, holdfast.StateChange{
		To: st, Reason: "invalid_grant", Message: holdfast.DefaultMessage(st), Cause: cause, At: b.clock.Now(),
	}); err != nil {
		t.Fatalf("ChangeState(%s → %s) = %v", id, st, err)
	}
}

// notice appends the engine's notice for inbox id, now.
func (b *testBundle) notice(t *testing.T, id string, episode int64, admin bool) *holdfast.Notice {
	t.Helper()
	n := &holdfast.Notice{InboxID: id, Episode: episode, Admin: admin, Reason: "invalid_grant", At: b.clock.Now()}
	if err := b.store.AppendNotice(t.Context(), n); err != nil {
		t.Fatalf("AppendNotice = %v", err)
	}
	return n
}

// deliver runs Deliver after the group wait.
func (b *testBundle) deliver(t *testing.T, n *notify.Notifier, id int64) error {
	t.Helper()
	wait, err := n.Deliver(t.Context(), id)
	if wait > 0 {
		b.clock.Add(wait)
		wait, err = n.Deliver(t.Context(), id)
	}
	if wait > 0 {
		t.Fatalf("Deliver(%d) still waits %v after the group wait", id, wait)
	}
	return err
}

func (b *testBundle) status(t *testing.T, id int64) (holdfast.NoticeStatus, holdfast.NoticeStatusReason) {
	t.Helper()
	recs, err := b.store.NoticeRecords(t.Context(), holdfast.NoticeFilter{ID: id})
	if err != nil || len(recs) != 1 {
		t.Fatalf("NoticeRecords(%d) = %v, %v", id, recs, err)
	}
	return recs[0].Status, recs[0].StatusReason
}

func TestPipeline(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// before runs after the notice is appended, before delivery.
		before     func(t *testing.T, b *testBundle, id string)
		wantStatus holdfast.NoticeStatus
		wantReason holdfast.NoticeStatusReason
		wantMails  int
	}{
		{"Sent", func(*testing.T, *testBundle, string) {}, holdfast.NoticeSent, "", 1},
		{"RecoveredBeforeDelivery", func(t *testing.T, b *testBundle, id string) {
			b.move(t, id, holdfast.StateConnected, holdfast.CauseHealth)
		}, holdfast.NoticeCancelled, holdfast.NoticeReasonRecovered, 0},
		{"PausedBeforeDelivery", func(t *testing.T, b *testBundle, id string) {
			b.move(t, id, holdfast.StatePaused, holdfast.CauseHealth)
		}, holdfast.NoticeCancelled, holdfast.NoticeReasonRecovered, 0},
		{"CoveredByProviderIncident", func(t *testing.T, b *testBundle, _ string) {
			b.incident(t, "provider_outage", "")
		}, holdfast.NoticeCancelled, holdfast.NoticeReasonIncident, 0},
		{"CoveredByTenantIncident", func(t *testing.T, b *testBundle, _ string) {
			b.incident(t, "tenant_outage", "example.test")
		}, holdfast.NoticeCancelled, holdfast.NoticeReasonIncident, 0},
		{"OtherTenantsIncident", func(t *testing.T, b *testBundle, _ string) {
			b.incident(t, "tenant_outage", "other.test")
		}, holdfast.NoticeSent, "", 1},
		{"Expired", func(t *testing.T, b *testBundle, _ string) {
			b.clock.Add(notify.DefaultTTL + time.Minute)
		}, holdfast.NoticeCancelled, holdfast.NoticeReasonExpired, 0},
		{"InboxDeleted", func(t *testing.T, b *testBundle, id string) {
			if err := b.store.DeleteInbox(t.Context(), id, holdfast.Event{InboxID: id, At: t0, OldState: holdfast.StateNeedsReconnect, Cause: holdfast.CauseAPI}); err != nil {
				t.Fatal(err)
			}
		}, holdfast.NoticeCancelled, holdfast.NoticeReasonInboxDeleted, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
			n := b.notice(t, "inb_a", 1, false)
			tt.before(t, b, "inb_a")
			if err := b.deliver(t, b.n, n.ID); err != nil {
				t.Fatalf("Deliver = %v", err)
			}
			st, reason := b.status(t, n.ID)
			if st != tt.wantStatus || reason != tt.wantReason {
				t.Errorf("notice is %s (%q); want %s (%q)", st, reason, tt.wantStatus, tt.wantReason)
			}
			if got := len(b.mailer.Sent()); got != tt.wantMails {
				t.Errorf("%d messages sent; want %d", got, tt.wantMails)
			}
		})
	}
}

func (b *testBundle) incident(t *testing.T, kind holdfast.IncidentKind, tenant string) {
	t.Helper()
	if err := b.store.SaveIncident(t.Context(), &holdfast.Incident{
		ID: 1, Kind: kind, Provider: holdfast.ProviderMicrosoft, Tenant: tenant, OpenedAt: b.clock.Now(),
	}, nil); err != nil {
		t.Fatal(err)
	}
}

// TestNoticeStormHolds covers a notice stored before a notice storm
// opened: it is held, neither sent nor cancelled, while the storm is open,
// and goes out, re-checked, once it is resolved.
func TestNoticeStormHolds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	n := b.notice(t, "inb_a", 1, false)
	b.incident(t, "notice_storm", "")
	b.clock.Add(notify.DefaultGroupWait)
	for range 2 {
		wait, err := b.n.Deliver(t.Context(), n.ID)
		if err != nil || wait != notify.DefaultHoldRetry {
			t.Fatalf("Deliver during the storm = %v, %v; want a %v wait", wait, err, notify.DefaultHoldRetry)
		}
		if st, reason := b.status(t, n.ID); st != holdfast.NoticePending {
			t.Fatalf("during the storm the notice is %s (%q); want pending", st, reason)
		}
		b.clock.Add(wait)
	}
	if got := len(b.mailer.Sent()); got != 0 {
		t.Fatalf("%d messages sent during the storm; want 0", got)
	}
	if err := b.store.SaveIncident(t.Context(), &holdfast.Incident{
		ID: 1, Kind: "notice_storm", Provider: holdfast.ProviderMicrosoft, OpenedAt: t0, ResolvedAt: b.clock.Now(),
	}, nil); err != nil {
		t.Fatal(err)
	}
	if wait, err := b.n.Deliver(t.Context(), n.ID); err != nil || wait != 0 {
		t.Fatalf("Deliver after the storm = %v, %v", wait, err)
	}
	if st, _ := b.status(t, n.ID); st != holdfast.NoticeSent || len(b.mailer.Sent()) != 1 {
		t.Errorf("after the storm the notice is %s with %d messages; want sent, 1", st, len(b.mailer.Sent()))
	}
}

func TestGroupWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	n := b.notice(t, "inb_a", 1, false)
	b.clock.Add(10 * time.Second)
	wait, err := b.n.Deliver(t.Context(), n.ID)
	if err != nil || wait != notify.DefaultGroupWait-10*time.Second {
		t.Errorf("Deliver before the group wait = %v, %v; want %v", wait, err, notify.DefaultGroupWait-10*time.Second)
	}
	if len(b.mailer.Sent()) != 0 {
		t.Errorf("sent during the group wait")
	}
}

func TestOneMessagePerOwner(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	b.inbox(t, "inb_b", "Owner@Example.test", holdfast.ProviderGoogle, holdfast.StateNeedsReconnect)
	b.inbox(t, "inb_c", "someone@example.test", holdfast.ProviderGoogle, holdfast.StateNeedsReconnect)
	na := b.notice(t, "inb_a", 1, false)
	b.clock.Add(5 * time.Second)
	nb := b.notice(t, "inb_b", 3, false)
	nc := b.notice(t, "inb_c", 1, false)
	for _, id := range []int64{na.ID, nb.ID, nc.ID} {
		if err := b.deliver(t, b.n, id); err != nil {
			t.Fatalf("Deliver(%d) = %v", id, err)
		}
	}
	sent := b.mailer.Sent()
	if len(sent) != 2 {
		t.Fatalf("%d messages sent; want 2 (one per owner)", len(sent))
	}
	if diff := cmp.Diff([]string{"owner@example.test"}, sent[0].To); diff != "" {
		t.Errorf("first message's recipients (-want +got):\n%s", diff)
	}
	for _, want := range []string{"Owner@Example.test", "owner@example.test", "Subject: Please reconnect 2 of your inboxes", "https://holdfast.example.test/status/"} {
		if !strings.Contains(sent[0].Raw, want) {
			t.Errorf("the owner's message lacks %q:\n%s", want, sent[0].Raw)
		}
	}
	for _, id := range []int64{na.ID, nb.ID, nc.ID} {
		if st, _ := b.status(t, id); st != holdfast.NoticeSent {
			t.Errorf("notice %d is %s; want sent", id, st)
		}
	}
}

// TestOneMessagePerOwnerAddress: two inboxes of different addresses with
// one owner address get one message, to the owner, listing both.
func TestOneMessagePerOwnerAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inbox(t, "inb_work", "ann@corp.example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	b.inbox(t, "inb_home", "ann.home@gmail.example.test", holdfast.ProviderGoogle, holdfast.StateNeedsReconnect)
	for _, id := range []string{"inb_work", "inb_home"} {
		if _, err := b.store.SetOwnerEmail(t.Context(), id, "ann@example.test"); err != nil {
			t.Fatalf("SetOwnerEmail(%s) = %v", id, err)
		}
	}
	nw := b.notice(t, "inb_work", 1, false)
	b.clock.Add(5 * time.Second)
	nh := b.notice(t, "inb_home", 1, false)
	for _, id := range []int64{nw.ID, nh.ID} {
		if err := b.deliver(t, b.n, id); err != nil {
			t.Fatalf("Deliver(%d) = %v", id, err)
		}
	}
	sent := b.mailer.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d messages sent; want 1 (one per owner)", len(sent))
	}
	if diff := cmp.Diff([]string{"ann@example.test"}, sent[0].To); diff != "" {
		t.Errorf("message's recipients (-want +got):\n%s", diff)
	}
	for _, want := range []string{"ann@corp.example.test", "ann.home@gmail.example.test", "Subject: Please reconnect 2 of your inboxes"} {
		if !strings.Contains(sent[0].Raw, want) {
			t.Errorf("the owner's message lacks %q:\n%s", want, sent[0].Raw)
		}
	}
	for _, id := range []int64{nw.ID, nh.ID} {
		if st, _ := b.status(t, id); st != holdfast.NoticeSent {
			t.Errorf("notice %d is %s; want sent", id, st)
		}
	}
}

// TestAnnounceTellsOfEachMessage: Announce hears of each message that
// goes out, with its recipient, status link and every inbox with its
// notice, its events are in the outbox with the notices sent, and OnSent
// hears of the message after; a cancelled notice is not heard of. It
// covers a mailer (the message is mailed, channel email) and none
// (Announce alone, channel webhook, after the same checks).
func TestAnnounceTellsOfEachMessage(t *testing.T) {
	t.Parallel()
	for _, channel := range []string{notify.ChannelEmail, notify.ChannelWebhook} {
		t.Run(channel, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var got, told []notify.Sent
			cfg := notify.Config{
				Store: b.store, Mailer: b.mailer, Links: b.links, From: "holdfast <no-reply@holdfast.test>",
				Clock: b.clock, Logger: testLogger(t),
				Announce: func(s notify.Sent) ([]holdfast.OutboxEvent, error) {
					got = append(got, s)
					return []holdfast.OutboxEvent{{ID: fmt.Sprintf("evt_%d", len(got)), Type: "notice.sent", Payload: []byte("{}")}}, nil
				},
				OnSent: func(_ context.Context, s notify.Sent) { told = append(told, s) },
			}
			if channel == notify.ChannelWebhook {
				cfg.Mailer, cfg.From = nil, ""
			}
			n, err := notify.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
			b.inbox(t, "inb_b", "owner@example.test", holdfast.ProviderGoogle, holdfast.StateNeedsAdmin)
			b.inbox(t, "inb_c", "back@example.test", holdfast.ProviderGoogle, holdfast.StateNeedsReconnect)
			na, nb := b.notice(t, "inb_a", 1, false), b.notice(t, "inb_b", 1, true)
			nc := b.notice(t, "inb_c", 1, false)
			b.move(t, "inb_c", holdfast.StateConnected, holdfast.CauseHealth)
			for _, id := range []int64{na.ID, nc.ID} {
				if err := b.deliver(t, n, id); err != nil {
					t.Fatalf("Deliver(%d) = %v", id, err)
				}
			}
			if len(got) != 1 {
				t.Fatalf("Announce called %d times; want once (one message, the other notice cancelled): %+v", len(got), got)
			}
			if diff := cmp.Diff(got, told); diff != "" {
				t.Errorf("OnSent heard otherwise than Announce (-announced +told):\n%s", diff)
			}
			if evs, err := b.store.OutboxEvents(t.Context(), 10); err != nil || len(evs) != 1 || evs[0].ID != "evt_1" {
				t.Errorf("outbox = %v, %v; want the one event announced", evs, err)
			}
			s := got[0]
			if s.Recipient != "owner@example.test" || s.Template != "reconnect" || s.Channel != channel || !strings.HasPrefix(s.StatusURL, "https://holdfast.example.test/status/") || !s.Expires.After(b.clock.Now()) || !s.SentAt.Equal(b.clock.Now()) {
				t.Errorf("Announce(%+v)", s)
			}
			var ids []int64
			var admin []bool
			for _, in := range s.Inboxes {
				ids, admin = append(ids, in.NoticeID), append(admin, in.Admin)
			}
			if diff := cmp.Diff([]int64{na.ID, nb.ID}, ids); diff != "" {
				t.Errorf("notice IDs (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]bool{false, true}, admin); diff != "" {
				t.Errorf("admin (-want +got):\n%s", diff)
			}
			if len(s.Inboxes) != 2 || s.Inboxes[0].ID != "inb_a" || s.Inboxes[1].ID != "inb_b" || s.Inboxes[0].Reason != "invalid_grant" {
				t.Errorf("inboxes = %+v", s.Inboxes)
			}
			for _, id := range []int64{na.ID, nb.ID} {
				if st, _ := b.status(t, id); st != holdfast.NoticeSent {
					t.Errorf("notice %d is %s, want sent", id, st)
				}
			}
			if channel == notify.ChannelWebhook {
				if n := len(b.mailer.Sent()); n != 0 {
					t.Errorf("%d messages mailed without a mailer", n)
				}
				return
			}
			if raw := strings.ReplaceAll(b.mailer.Sent()[0].Raw, "=\r\n", ""); !strings.Contains(raw, s.StatusURL) {
				t.Errorf("the message does not link to %s", s.StatusURL)
			}
		})
	}
}

func TestNeverTwice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	n := b.notice(t, "inb_a", 1, false)

	// The relay fails once: the notice goes back to pending and the
	// retried job sends it, once.
	fails := 1
	b.mailer.FailFunc = func() error {
		if fails > 0 {
			fails--
			return errors.New("relay down")
		}
		return nil
	}
	if err := b.deliver(t, b.n, n.ID); err == nil {
		t.Fatal("Deliver with the relay down = nil; want an error")
	}
	if st, _ := b.status(t, n.ID); st != holdfast.NoticePending {
		t.Fatalf("after a failed send the notice is %s; want pending", st)
	}
	for range 3 { // the job retried, and run again by the sweep
		if err := b.deliver(t, b.n, n.ID); err != nil {
			t.Fatalf("Deliver = %v", err)
		}
	}
	// The process restarts: a new store and notifier on the same database.
	b.store = openStore(t, b.path)
	if err := b.deliver(t, newNotifier(t, b, true, nil), n.ID); err != nil {
		t.Fatalf("Deliver after a restart = %v", err)
	}
	if got := len(b.mailer.Sent()); got != 1 {
		t.Errorf("%d messages sent; want exactly 1", got)
	}
	// The engine deciding the same episode again stores nothing.
	if err := b.store.AppendNotice(t.Context(), &holdfast.Notice{InboxID: "inb_a", Episode: 1}); !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("AppendNotice of the same episode = %v; want ErrConflict", err)
	}
}

func TestCrashWhileSendingNeverResends(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	n := b.notice(t, "inb_a", 1, false)
	// A worker claimed it and died before recording the outcome.
	if _, err := b.store.ChangeNotice(t.Context(), n.ID, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeSending}); err != nil {
		t.Fatal(err)
	}
	if err := b.deliver(t, b.n, n.ID); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	if got := len(b.mailer.Sent()); got != 0 {
		t.Errorf("%d messages sent for a notice left sending; want 0", got)
	}
}

func TestFollowUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		resolved  bool
		reconnect bool
		paused    bool // a retroactive incident pauses it first
		want      int
	}{
		{"ResolvedByItself", true, false, false, 2},
		{"OwnerReconnected", true, true, false, 1},
		{"Off", false, false, false, 1},
		{"RetroactiveIncident", true, false, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			n := newNotifier(t, b, tt.resolved, nil)
			b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
			no := b.notice(t, "inb_a", 1, false)
			if err := b.deliver(t, n, no.ID); err != nil {
				t.Fatal(err)
			}
			b.clock.Add(time.Hour)
			if tt.reconnect {
				b.move(t, "inb_a", holdfast.StateConnecting, holdfast.CauseAPI)
			}
			if tt.paused {
				b.move(t, "inb_a", holdfast.StatePaused, holdfast.CauseHealth)
				if err := n.FollowUp(t.Context(), "inb_a"); !errors.Is(err, notify.ErrNotYet) {
					t.Fatalf("FollowUp while paused = %v, want ErrNotYet", err)
				}
			}
			b.move(t, "inb_a", holdfast.StateConnected, holdfast.CauseHealth)
			for range 2 {
				if err := n.FollowUp(t.Context(), "inb_a"); err != nil {
					t.Fatalf("FollowUp = %v", err)
				}
			}
			sent := b.mailer.Sent()
			if len(sent) != tt.want {
				t.Fatalf("%d messages sent; want %d", len(sent), tt.want)
			}
			if tt.want == 2 && !strings.Contains(sent[1].Raw, "Subject: Resolved: owner@example.test works again, nothing to do") {
				t.Errorf("follow-up:\n%s", sent[1].Raw)
			}
		})
	}
}

// TestFollowUpNewestNotice checks that the follow-up is about the inbox's
// newest notice, also past the most notices one page of the store holds.
func TestFollowUpNewestNotice(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	// 1000 older notices, never sent, then the one that went out.
	for episode := range int64(1000) {
		b.notice(t, "inb_a", episode+1, false)
	}
	last := b.notice(t, "inb_a", 1001, false)
	b.clock.Add(time.Minute)
	for _, c := range []holdfast.NoticeChange{
		{From: holdfast.NoticePending, To: holdfast.NoticeSending, At: b.clock.Now()},
		{From: holdfast.NoticeSending, To: holdfast.NoticeSent, At: b.clock.Now()},
	} {
		if _, err := b.store.ChangeNotice(t.Context(), last.ID, c); err != nil {
			t.Fatalf("ChangeNotice(%d, %s → %s) = %v", last.ID, c.From, c.To, err)
		}
	}
	b.clock.Add(time.Hour)
	b.move(t, "inb_a", holdfast.StateConnected, holdfast.CauseHealth)
	if err := b.n.FollowUp(t.Context(), "inb_a"); err != nil {
		t.Fatalf("FollowUp = %v", err)
	}
	sent := b.mailer.Sent()
	if len(sent) != 1 || !strings.Contains(sent[0].Raw, "Subject: Resolved: owner@example.test works again, nothing to do") {
		t.Fatalf("sent %d messages; want the follow-up:\n%v", len(sent), sent)
	}
	if st, reason := b.status(t, last.ID); st != holdfast.NoticeFollowedUp || reason != holdfast.NoticeReasonRecovered {
		t.Errorf("newest notice is %s (%s); want %s (%s)", st, reason, holdfast.NoticeFollowedUp, holdfast.NoticeReasonRecovered)
	}
}

func TestTemplateOverride(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	custom := `{{define "subject"}}Action needed at Acme{{end}}Acme says: reconnect at {{.StatusURL}}`
	if err := os.WriteFile(filepath.Join(dir, "reconnect.txt.tmpl"), []byte(custom), 0o600); err != nil {
		t.Fatal(err)
	}
	tmpl, err := notify.LoadTemplates(dir)
	if err != nil {
		t.Fatalf("LoadTemplates = %v", err)
	}
	b := setup(t)
	n := newNotifier(t, b, false, tmpl)
	b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	no := b.notice(t, "inb_a", 1, false)
	if err := b.deliver(t, n, no.ID); err != nil {
		t.Fatal(err)
	}
	sent := b.mailer.Sent()
	if len(sent) != 1 {
		t.Fatalf("%d messages sent; want 1", len(sent))
	}
	for _, want := range []string{"Subject: Action needed at Acme", "Acme says: reconnect at https://holdfast.example.test/status/", "text/html"} {
		if !strings.Contains(sent[0].Raw, want) {
			t.Errorf("message lacks %q:\n%s", want, sent[0].Raw)
		}
	}

	// A broken override is an error at start, naming the file.
	if err := os.WriteFile(filepath.Join(dir, "admin.html.tmpl"), []byte("{{.Nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := notify.LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), "admin.html.tmpl") {
		t.Errorf("LoadTemplates with a broken file = %v; want an error naming admin.html.tmpl", err)
	}
}

// TestNoticeSentEventCommitsWithTheNotice: the notice.sent event is
// written with a notice recorded sent (without a mailer it is the notice's
// only channel). When the first notice of the message can no longer
// be recorded sent (the sweep flagged it stranded meanwhile), the event
// goes with the next one; when none can, no event claims a notice sent
// that the store does not hold sent.
func TestNoticeSentEventCommitsWithTheNotice(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		stranded  int // how many of the two notices the sweep flags first
		wantEvent bool
	}{
		{"both recorded", 0, true},
		{"first stranded", 1, true},
		{"both stranded", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			tmpl, err := notify.LoadTemplates("")
			if err != nil {
				t.Fatal(err)
			}
			a := b.inbox(t, "inb_a", "owner@example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
			c := b.inbox(t, "inb_c", "owner@example.test", holdfast.ProviderGoogle, holdfast.StateNeedsReconnect)
			var items []*notify.Item
			for k, in := range []*holdfast.Inbox{a, c} {
				n := b.notice(t, in.ID, 1, false)
				rec, err := b.store.ChangeNotice(t.Context(), n.ID, holdfast.NoticeChange{From: holdfast.NoticePending, To: holdfast.NoticeSending})
				if err != nil {
					t.Fatal(err)
				}
				if k < tc.stranded {
					if _, err := b.store.ChangeNotice(t.Context(), n.ID, holdfast.NoticeChange{
						From: holdfast.NoticeSending, To: holdfast.NoticeCancelled, Reason: holdfast.NoticeReasonStranded,
					}); err != nil {
						t.Fatal(err)
					}
				}
				items = append(items, &notify.Item{Notice: rec, Inbox: in})
			}
			send := &notify.Send{
				Base: notify.Base{Logger: testLogger(t), Clock: b.clock}, Store: b.store, Mailer: b.mailer,
				Templates: tmpl, Links: b.links, From: "holdfast <no-reply@holdfast.test>",
				Announce: func(notify.Sent) ([]holdfast.OutboxEvent, error) {
					return []holdfast.OutboxEvent{{ID: "evt_notice", Type: "notice.sent", Payload: []byte("{}")}}, nil
				},
			}
			if _, err := send.Exec(t.Context(), items); err != nil {
				t.Fatalf("Exec = %v", err)
			}
			evs, err := b.store.OutboxEvents(t.Context(), 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(evs) == 1 && evs[0].ID == "evt_notice"; got != tc.wantEvent || len(evs) > 1 {
				t.Errorf("outbox = %v; want the event: %v", evs, tc.wantEvent)
			}
			for k, it := range items {
				want := holdfast.NoticeSent
				if k < tc.stranded {
					want = holdfast.NoticeCancelled
				}
				if st, _ := b.status(t, it.Notice.ID); st != want {
					t.Errorf("notice %d is %s; want %s", it.Notice.ID, st, want)
				}
			}
		})
	}
}

// TestDeliverWaitsForRecipientLock: while another worker (here, the test)
// holds the recipient's lock, Deliver sends nothing and asks to be run
// again after LockRetry; once it is free, the group goes out in one
// message.
func TestDeliverWaitsForRecipientLock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.inbox(t, "inb_l1", "Owner@Example.test", holdfast.ProviderMicrosoft, holdfast.StateNeedsReconnect)
	b.inbox(t, "inb_l2", "Owner@Example.test", holdfast.ProviderGoogle, holdfast.StateNeedsReconnect)
	n1, n2 := b.notice(t, "inb_l1", 1, false), b.notice(t, "inb_l2", 1, false)
	b.clock.Add(notify.DefaultGroupWait)
	release, ok, err := b.store.TryLock(t.Context(), notify.RecipientLock("owner@example.test"))
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	wait, err := b.n.Deliver(t.Context(), n1.ID)
	if err != nil || wait != notify.LockRetry {
		t.Fatalf("Deliver while the recipient is locked = %v, %v; want %v", wait, err, notify.LockRetry)
	}
	if got := len(b.mailer.Sent()); got != 0 {
		t.Fatalf("%d messages sent while the recipient is locked; want none", got)
	}
	release()
	if err := b.deliver(t, b.n, n2.ID); err != nil {
		t.Fatal(err)
	}
	if got := len(b.mailer.Sent()); got != 1 {
		t.Errorf("%d messages; want 1 for the group", got)
	}
	for _, no := range []*holdfast.Notice{n1, n2} {
		if st, _ := b.status(t, no.ID); st != holdfast.NoticeSent {
			t.Errorf("notice %d is %s; want sent", no.ID, st)
		}
	}
}

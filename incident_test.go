package holdfast_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// TestIncidentKindEffects pins the table of what each incident kind does:
// every consumer (the health engine, notify, the status page) decides by
// it, so a change here is a change of behaviour.
func TestIncidentKindEffects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		kind   holdfast.IncidentKind
		stored string
		want   holdfast.IncidentEffects
	}{
		{holdfast.IncidentProviderOutage, "provider_outage", holdfast.IncidentEffects{
			PausesInboxes: true, MutesOwnerNotices: true, MutesAdminNotices: true, NothingToDo: true}},
		{holdfast.IncidentTenantOutage, "tenant_outage", holdfast.IncidentEffects{
			PausesInboxes: true, MutesOwnerNotices: true, MutesAdminNotices: true, NothingToDo: true}},
		{holdfast.IncidentDeclared, "declared", holdfast.IncidentEffects{
			PausesInboxes: true, EndsByOperator: true, MutesOwnerNotices: true, MutesAdminNotices: true, NothingToDo: true}},
		{holdfast.IncidentTenantEvent, "tenant_event", holdfast.IncidentEffects{
			AwaitsVerification: true, MutesOwnerNotices: true}},
		{holdfast.IncidentNoticeStorm, "notice_storm", holdfast.IncidentEffects{HoldsNotices: true}},
		{"mystery", "mystery", holdfast.IncidentEffects{}},
	}
	for _, tt := range tests {
		t.Run(tt.stored, func(t *testing.T) {
			t.Parallel()
			if string(tt.kind) != tt.stored {
				t.Errorf("kind %q is stored as %q, want %q", tt.kind, string(tt.kind), tt.stored)
			}
			if diff := cmp.Diff(tt.want, tt.kind.Effects()); diff != "" {
				t.Errorf("%s.Effects() mismatch (-want +got):\n%s", tt.kind, diff)
			}
			if got, want := tt.kind.Valid(), tt.want != (holdfast.IncidentEffects{}); got != want {
				t.Errorf("%s.Valid() = %v, want %v", tt.kind, got, want)
			}
		})
	}
	if got, want := len(holdfast.IncidentKinds), len(tests)-1; got != want {
		t.Errorf("len(IncidentKinds) = %d, want %d: a kind without a row here", got, want)
	}
	for _, k := range holdfast.IncidentKinds {
		if !k.Valid() {
			t.Errorf("%s in IncidentKinds has no effects", k)
		}
	}
}

// TestIncidentCovers checks the one rule by which an incident covers an
// inbox: open, same provider, same tenant (exactly) unless provider-wide,
// and a kind that acts on the inbox's audience.
func TestIncidentCovers(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	inbox := &holdfast.Inbox{ID: "inb_1", Provider: holdfast.ProviderMicrosoft, Tenant: "contoso.com"}
	incident := func(kind holdfast.IncidentKind, p holdfast.Provider, tenant string, resolved bool) *holdfast.Incident {
		in := &holdfast.Incident{ID: 7, Kind: kind, Provider: p, Tenant: tenant, OpenedAt: t0}
		if resolved {
			in.ResolvedAt = t0.Add(time.Hour)
		}
		return in
	}
	ms := holdfast.ProviderMicrosoft
	tests := []struct {
		name               string
		in                 *holdfast.Incident
		inScope            bool
		owner, admin       bool // Covers(inbox, false), Covers(inbox, true)
		nothingToDo, holds bool
	}{
		{"provider outage", incident(holdfast.IncidentProviderOutage, ms, "", false), true, true, true, true, false},
		{"tenant outage", incident(holdfast.IncidentTenantOutage, ms, "contoso.com", false), true, true, true, true, false},
		{"declared over the provider", incident(holdfast.IncidentDeclared, ms, "", false), true, true, true, true, false},
		{"declared over the tenant", incident(holdfast.IncidentDeclared, ms, "contoso.com", false), true, true, true, true, false},
		{"tenant event spares admin notices", incident(holdfast.IncidentTenantEvent, ms, "contoso.com", false), true, true, false, false, false},
		{"notice storm holds both", incident(holdfast.IncidentNoticeStorm, ms, "", false), true, true, true, false, true},
		{"resolved covers nothing", incident(holdfast.IncidentProviderOutage, ms, "", true), true, false, false, true, false},
		{"other provider", incident(holdfast.IncidentProviderOutage, holdfast.ProviderGoogle, "", false), false, false, false, true, false},
		{"other tenant", incident(holdfast.IncidentTenantOutage, ms, "fabrikam.com", false), false, false, false, true, false},
		{"tenant compared exactly", incident(holdfast.IncidentTenantOutage, ms, "Contoso.com", false), false, false, false, true, false},
		{"unknown kind", incident("mystery", ms, "", false), true, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.in.InScope(inbox); got != tt.inScope {
				t.Errorf("InScope = %v, want %v", got, tt.inScope)
			}
			if got := tt.in.Covers(inbox, false); got != tt.owner {
				t.Errorf("Covers(owner) = %v, want %v", got, tt.owner)
			}
			if got := tt.in.Covers(inbox, true); got != tt.admin {
				t.Errorf("Covers(admin) = %v, want %v", got, tt.admin)
			}
			e := tt.in.Kind.Effects()
			if e.NothingToDo != tt.nothingToDo || e.HoldsNotices != tt.holds {
				t.Errorf("Effects() = %+v, want NothingToDo %v, HoldsNotices %v", e, tt.nothingToDo, tt.holds)
			}
		})
	}
}

// TestCovering returns the first covering incident, skipping those that
// do not cover the inbox's audience.
func TestCovering(t *testing.T) {
	t.Parallel()
	ib := &holdfast.Inbox{Provider: holdfast.ProviderGoogle, Tenant: "example.org"}
	event := &holdfast.Incident{ID: 1, Kind: holdfast.IncidentTenantEvent, Provider: holdfast.ProviderGoogle, Tenant: "example.org"}
	storm := &holdfast.Incident{ID: 2, Kind: holdfast.IncidentNoticeStorm, Provider: holdfast.ProviderGoogle}
	tests := []struct {
		name      string
		incidents []*holdfast.Incident
		admin     bool
		want      int64 // 0: none
	}{
		{"none", nil, false, 0},
		{"first wins", []*holdfast.Incident{event, storm}, false, 1},
		{"admin skips the tenant event", []*holdfast.Incident{event, storm}, true, 2},
		{"admin with only a tenant event", []*holdfast.Incident{event}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got int64
			if in := holdfast.Covering(tt.incidents, ib, tt.admin); in != nil {
				got = in.ID
			}
			if got != tt.want {
				t.Errorf("Covering(admin %v) = incident %d, want %d", tt.admin, got, tt.want)
			}
		})
	}
}

// TestStoredReasons pins the strings the reason vocabularies are stored
// and shown by the API as: a rename of a constant must not change them.
func TestStoredReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		got, want string
	}{
		{string(holdfast.NoticeReasonRecovered), "recovered"},
		{string(holdfast.NoticeReasonIncident), "incident"},
		{string(holdfast.NoticeReasonExpired), "expired"},
		{string(holdfast.NoticeReasonInboxDeleted), "inbox_deleted"},
		{string(holdfast.NoticeReasonRetry), "retry"},
		{string(holdfast.SendReasonCancelled), "cancelled"},
		{string(holdfast.SendReasonInboxDeleted), "inbox_deleted"},
		{string(holdfast.SendReasonProviderNotSupported), "provider_not_supported"},
		{string(holdfast.SendReasonOutcomeUnknown), "outcome_unknown"},
		{string(holdfast.SendReasonOutcomeUnknownUntilReconnect), "outcome_unknown_until_reconnect"},
		{string(holdfast.SendReasonInboxNeedsReconnect), "inbox_needs_reconnect"},
		{string(holdfast.SendReasonInboxNeedsAdmin), "inbox_needs_admin"},
		{string(holdfast.InboxSendReason(holdfast.StateNeedsReconnect)), "inbox_needs_reconnect"},
		{string(holdfast.InboxSendReason(holdfast.StateNeedsAdmin)), "inbox_needs_admin"},
		{string(holdfast.InboxSendReason(holdfast.StatePaused)), "inbox_paused"},
		{string(holdfast.SendReasonOf(holdfast.ReasonMessageTooLarge)), "message_too_large"},
		{string(holdfast.HeldForBudget), "budget"},
		{string(holdfast.HeldForIncident), "incident"},
		{string(holdfast.HeldTaken), "taken"},
		{string(holdfast.HeldReleased), "released by operator"},
		{string(holdfast.HeldCancelledLeftSuspect), "cancelled: inbox left suspect"},
		{string(holdfast.HeldCancelledEvidenceOverlaps), "cancelled: evidence overlaps an incident"},
		{string(holdfast.HeldCancelledRecovered), "cancelled: recovered"},
		{string(holdfast.HeldCancelledIncident), "cancelled: incident"},
		{string(holdfast.HeldCancelledTenantEvent), "cancelled: tenant event"},
		{string(holdfast.HeldCancelledRetroactive), "cancelled: retroactive incident"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("stored as %q, want %q", tt.got, tt.want)
		}
	}
}

package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/holdfast/holdfast"
)

// ownerTests are the conformance tests of inbox owners: the address an
// inbox's notices go to and whose status page lists it.
var ownerTests = []conformanceTest{
	{"SetOwnerEmail", testSetOwnerEmail},
	{"InboxesByOwner", testInboxesByOwner},
	{"NoticeRecipientIsOwner", testNoticeRecipientIsOwner},
}

func testSetOwnerEmail(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	tests := []struct {
		name  string
		owner string
	}{
		{"Set", "Owner@example.test"},
		{"Replace", "boss@example.test"},
		{"Clear", ""},
	}
	for _, tt := range tests {
		got, err := s.SetOwnerEmail(ctx, in.ID, tt.owner)
		if err != nil {
			t.Fatalf("%s: SetOwnerEmail(%q) = %v", tt.name, tt.owner, err)
		}
		if got.ID != in.ID || got.OwnerEmail != tt.owner {
			t.Errorf("%s: SetOwnerEmail(%q) returned inbox %s owned by %q", tt.name, tt.owner, got.ID, got.OwnerEmail)
		}
		read, err := s.Inbox(ctx, in.ID)
		if err != nil {
			t.Fatalf("%s: Inbox = %v", tt.name, err)
		}
		if diff := cmp.Diff(got, read); diff != "" {
			t.Errorf("%s: Inbox after SetOwnerEmail mismatch (-returned +read):\n%s", tt.name, diff)
		}
		wantOwner := tt.owner
		if wantOwner == "" {
			wantOwner = in.Email
		}
		if read.Owner() != wantOwner {
			t.Errorf("%s: Owner() = %q; want %q", tt.name, read.Owner(), wantOwner)
		}
	}
	if _, err := s.SetOwnerEmail(ctx, newID("inb"), "owner@example.test"); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SetOwnerEmail(unknown inbox) = %v; want ErrNotFound", err)
	}
}

func testInboxesByOwner(t *testing.T, s holdfast.Store) {
	owner := newID("owner") + "@example.test"
	other := newID("other") + "@example.test"
	// own: the owner's own inbox, without an owner address.
	own := newInbox()
	own.Email = owner
	// work: another address owned by the owner, written in other case.
	work := newInbox()
	work.Provider, work.IMAP, work.SMTP, work.Username = holdfast.ProviderMicrosoft, nil, nil, ""
	work.OwnerEmail = strings.ToUpper(owner)
	// given: the owner's address, given to someone else.
	given := newInbox()
	given.Email, given.Provider, given.IMAP, given.SMTP, given.Username = owner, holdfast.ProviderGoogle, nil, nil, ""
	given.OwnerEmail = other
	for _, in := range []*holdfast.Inbox{own, work, given, newInbox()} {
		mustCreate(t, s, in)
	}
	byID := func(a, b string) int { return strings.Compare(a, b) }
	tests := []struct {
		name  string
		email string
		want  []string
	}{
		{"OwnAndOwned", owner, slices.SortedFunc(slices.Values([]string{own.ID, work.ID}), byID)},
		{"OtherCase", strings.ToUpper(owner), slices.SortedFunc(slices.Values([]string{own.ID, work.ID}), byID)},
		{"OwnerOnly", other, []string{given.ID}},
		{"Nobody", "nobody@example.test", nil},
	}
	for _, tt := range tests {
		got, err := s.InboxesByOwner(t.Context(), tt.email)
		if err != nil {
			t.Fatalf("%s: InboxesByOwner(%s) = %v", tt.name, tt.email, err)
		}
		if diff := cmp.Diff(tt.want, ids(got), cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s: InboxesByOwner(%s) mismatch (-want +got):\n%s", tt.name, tt.email, diff)
		}
	}
	// Clearing the owner hands work back to its own address.
	if _, err := s.SetOwnerEmail(t.Context(), work.ID, ""); err != nil {
		t.Fatalf("SetOwnerEmail(clear) = %v", err)
	}
	if got, err := s.InboxesByOwner(t.Context(), owner); err != nil || !slices.Equal(ids(got), []string{own.ID}) {
		t.Errorf("InboxesByOwner(%s) after clearing work's owner = %v, %v; want [%s]", owner, ids(got), err, own.ID)
	}
	if got, err := s.InboxesByOwner(t.Context(), work.Email); err != nil || !slices.Equal(ids(got), []string{work.ID}) {
		t.Errorf("InboxesByOwner(%s) after clearing its owner = %v, %v; want [%s]", work.Email, ids(got), err, work.ID)
	}
}

// testNoticeRecipientIsOwner checks that a notice's recipient is its
// inbox's owner address when it has one, so that the notices of one owner
// select together, and the inbox's email otherwise.
func testNoticeRecipientIsOwner(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	owner := newID("owner") + "@example.test"
	owned, own := newInbox(), newInbox()
	owned.OwnerEmail = owner
	own.Email, own.Provider, own.IMAP, own.SMTP, own.Username = strings.ToUpper(owner), holdfast.ProviderGoogle, nil, nil, ""
	mustCreate(t, s, owned)
	mustCreate(t, s, own)
	var notices []*holdfast.Notice
	for _, in := range []*holdfast.Inbox{owned, own, owned} {
		n := &holdfast.Notice{InboxID: in.ID, Episode: int64(len(notices) + 1), Reason: "invalid_grant", At: t0}
		if err := s.AppendNotice(ctx, n); err != nil {
			t.Fatalf("AppendNotice(%s) = %v", in.ID, err)
		}
		notices = append(notices, n)
	}
	recipients := func(f holdfast.NoticeFilter) []string {
		t.Helper()
		got, err := s.NoticeRecords(ctx, f)
		if err != nil {
			t.Fatalf("NoticeRecords(%+v) = %v", f, err)
		}
		var out []string
		for _, r := range got {
			out = append(out, r.Recipient)
		}
		return out
	}
	tests := []struct {
		name string
		f    holdfast.NoticeFilter
		want []string
	}{
		{"ByID", holdfast.NoticeFilter{ID: notices[0].ID}, []string{owner}},
		{"ByInbox", holdfast.NoticeFilter{InboxID: owned.ID}, []string{owner, owner}},
		{"ByRecipient", holdfast.NoticeFilter{Recipient: owner}, []string{owner, own.Email, owner}},
		{"ByRecipientPending", holdfast.NoticeFilter{Recipient: strings.ToUpper(owner), Status: holdfast.NoticePending}, []string{owner, own.Email, owner}},
		{"ByOwnedEmail", holdfast.NoticeFilter{Recipient: owned.Email}, nil},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, recipients(tt.f)); diff != "" {
			t.Errorf("%s: recipients mismatch (-want +got):\n%s", tt.name, diff)
		}
	}
	if _, err := s.SetOwnerEmail(ctx, owned.ID, ""); err != nil {
		t.Fatalf("SetOwnerEmail(clear) = %v", err)
	}
	if diff := cmp.Diff([]string{owned.Email}, recipients(holdfast.NoticeFilter{ID: notices[0].ID})); diff != "" {
		t.Errorf("recipient once the owner is cleared (-want +got):\n%s", diff)
	}
}

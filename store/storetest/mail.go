package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/holdfast/holdfast"
)

// mailTests are the tests of synced messages and sends.
var mailTests = []conformanceTest{
	{"SaveSync", testSaveSync},
	{"SaveSyncUnknownInbox", testSaveSyncUnknownInbox},
	{"TouchSynced", testTouchSynced},
	{"MessagesPaging", testMessagesPaging},
	{"MessageNotFound", testMessageNotFound},
	{"DeleteInboxDeletesMail", testDeleteInboxDeletesMail},
	{"CreateSend", testCreateSend},
	{"CreateSendIdempotency", testCreateSendIdempotency},
	{"CreateSendConcurrentIdempotency", testCreateSendConcurrent},
	{"ChangeSend", testChangeSend},
	{"DueSends", testDueSends},
}

// newMessage returns a complete message with provider ID pid and
// Message-ID <mid@example.test> (none if mid is empty).
func newMessage(pid, mid string, received time.Time) holdfast.Message {
	m := holdfast.Message{
		ProviderID: pid,
		From:       "alice@example.test",
		To:         []string{"bob@example.test", "carol@example.test"},
		Cc:         []string{"dave@example.test"},
		Subject:    "Subject of " + pid,
		ReceivedAt: received,
		Snippet:    "Hello from " + pid,
		Flags:      []string{`\Seen`},
	}
	if mid != "" {
		m.InternetMessageID = "<" + mid + "@example.test>"
	}
	return m
}

// storedMessage returns m as the store returns it after a sync into inboxID.
func storedMessage(m holdfast.Message, inboxID string) *holdfast.Message {
	m.InboxID = inboxID
	m.Added = false // not stored
	m.ReceivedAt = stored(m.ReceivedAt)
	return &m
}

// mustSaveSync runs SaveSync and checks how many messages it added.
func mustSaveSync(t *testing.T, s holdfast.Store, inboxID string, msgs []holdfast.Message, cursor string, at time.Time, wantAdded int) {
	t.Helper()
	added, err := s.SaveSync(t.Context(), inboxID, msgs, cursor, at, nil)
	if err != nil {
		t.Fatalf("SaveSync(%s, %d messages, %q) = %v", inboxID, len(msgs), cursor, err)
	}
	if added != wantAdded {
		t.Errorf("SaveSync(%s, %d messages, %q) added %d; want %d", inboxID, len(msgs), cursor, added, wantAdded)
	}
	flagged := 0
	for i, m := range msgs {
		if !strings.HasPrefix(m.ID, "msg_") {
			t.Errorf("SaveSync set msgs[%d].ID = %q; want msg_...", i, m.ID)
		}
		if m.Added {
			flagged++
		}
	}
	if flagged != added {
		t.Errorf("SaveSync(%s, %d messages, %q) set Added on %d messages; want %d, as many as it added", inboxID, len(msgs), cursor, flagged, added)
	}
}

// allMessages returns every message of the inbox, newest first.
func allMessages(t *testing.T, s holdfast.Store, inboxID string) []*holdfast.Message {
	t.Helper()
	ms, err := s.Messages(t.Context(), inboxID, holdfast.MessageFilter{Limit: 1000})
	if err != nil {
		t.Fatalf("Messages(%s) = %v", inboxID, err)
	}
	return ms
}

// checkCursor checks the inbox's sync cursor and last sync time.
func checkCursor(t *testing.T, s holdfast.Store, inboxID, cursor string, at time.Time) {
	t.Helper()
	in, err := s.Inbox(t.Context(), inboxID)
	if err != nil {
		t.Fatalf("Inbox(%s) = %v", inboxID, err)
	}
	if in.SyncCursor != cursor || !in.LastSyncAt.Equal(stored(at)) || in.LastSyncAt.Location() != time.UTC {
		t.Errorf("Inbox(%s) cursor, last sync = %q, %v; want %q, %v", inboxID, in.SyncCursor, in.LastSyncAt, cursor, stored(at))
	}
}

func testSaveSync(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	if got, err := s.Inbox(ctx, in.ID); err != nil || got.SyncCursor != "" || !got.LastSyncAt.IsZero() {
		t.Fatalf("Inbox(%s) before any sync = cursor %q, last sync %v, %v; want empty", in.ID, got.SyncCursor, got.LastSyncAt, err)
	}

	first := []holdfast.Message{
		newMessage("INBOX/7/1", "one", t0),
		newMessage("INBOX/7/2", "two", t0.Add(time.Minute)),
		newMessage("INBOX/7/3", "", t0.Add(2*time.Minute)), // no Message-ID
	}
	first[1].To, first[1].Cc, first[1].Flags = nil, nil, nil
	mustSaveSync(t, s, in.ID, first, "c1", t0.Add(time.Hour), 3)
	checkCursor(t, s, in.ID, "c1", t0.Add(time.Hour))
	ids := []string{first[0].ID, first[1].ID, first[2].ID}
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 3 {
		t.Errorf("SaveSync set IDs %v; want three different", ids)
	}
	want := []*holdfast.Message{storedMessage(first[2], in.ID), storedMessage(first[1], in.ID), storedMessage(first[0], in.ID)}
	if diff := cmp.Diff(want, allMessages(t, s, in.ID)); diff != "" {
		t.Errorf("Messages after the first sync mismatch (-want +got):\n%s", diff)
	}
	got, err := s.Message(ctx, in.ID, first[0].ID)
	if err != nil {
		t.Fatalf("Message(%s) = %v", first[0].ID, err)
	}
	if diff := cmp.Diff(storedMessage(first[0], in.ID), got); diff != "" {
		t.Errorf("Message(%s) mismatch (-want +got):\n%s", first[0].ID, diff)
	}

	t.Run("ResyncSameProviderIDs", func(t *testing.T) {
		again := slices.Clone(first)
		for i := range again {
			again[i].ID = ""
		}
		again[0].Flags = []string{`\Seen`, `\Flagged`}
		again[0].Subject = "Changed"
		again[2].Snippet = "Changed too"
		mustSaveSync(t, s, in.ID, again, "c2", t0.Add(2*time.Hour), 0)
		checkCursor(t, s, in.ID, "c2", t0.Add(2*time.Hour))
		for i := range again {
			if again[i].ID != first[i].ID {
				t.Errorf("resync set msgs[%d].ID = %s; want the stored %s", i, again[i].ID, first[i].ID)
			}
		}
		want := []*holdfast.Message{storedMessage(again[2], in.ID), storedMessage(again[1], in.ID), storedMessage(again[0], in.ID)}
		if diff := cmp.Diff(want, allMessages(t, s, in.ID)); diff != "" {
			t.Errorf("Messages after a resync mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("CursorResetRekeys", func(t *testing.T) { checkCursorResetRekeys(t, s, in.ID, first) })

	t.Run("SameMessageInOtherInbox", func(t *testing.T) {
		other := mustCreate(t, s, newInbox())
		msgs := []holdfast.Message{newMessage("INBOX/7/1", "one", t0)}
		mustSaveSync(t, s, other.ID, msgs, "x", t0, 1)
		if msgs[0].ID == first[0].ID {
			t.Errorf("a message of another inbox got the stored ID %s", first[0].ID)
		}
	})

	t.Run("EmptySyncStoresCursor", func(t *testing.T) {
		other := mustCreate(t, s, newInbox())
		mustSaveSync(t, s, other.ID, nil, "empty", t0.Add(5*time.Hour), 0)
		checkCursor(t, s, other.ID, "empty", t0.Add(5*time.Hour))
		ins, err := s.Inboxes(ctx, holdfast.InboxFilter{Limit: 1000})
		if err != nil {
			t.Fatalf("Inboxes = %v", err)
		}
		i := slices.IndexFunc(ins, func(x *holdfast.Inbox) bool { return x.ID == other.ID })
		if i < 0 || ins[i].SyncCursor != "empty" || !ins[i].LastSyncAt.Equal(stored(t0.Add(5*time.Hour))) {
			t.Errorf("Inboxes does not list inbox %s with its cursor and last sync", other.ID)
		}
	})
}

// checkCursorResetRekeys is testSaveSync's check that a sync after a
// cursor reset re-keys the stored messages of inbox inboxID, which hold
// first, by their Message-IDs.
func checkCursorResetRekeys(t *testing.T, s holdfast.Store, inboxID string, first []holdfast.Message) {
	ctx := t.Context()
	// UIDVALIDITY changed: new provider IDs, same Message-IDs. The
	// message without a Message-ID cannot be recognised and is added.
	reset := []holdfast.Message{
		newMessage("INBOX/8/1", "one", t0),
		newMessage("INBOX/8/2", "two", t0.Add(time.Minute)),
		newMessage("INBOX/8/3", "", t0.Add(2*time.Minute)),
		newMessage("INBOX/8/4", "four", t0.Add(3*time.Minute)),
	}
	mustSaveSync(t, s, inboxID, reset, "c3", t0.Add(3*time.Hour), 2)
	checkCursor(t, s, inboxID, "c3", t0.Add(3*time.Hour))
	if reset[0].ID != first[0].ID || reset[1].ID != first[1].ID {
		t.Errorf("after a reset, IDs = %s, %s; want the stored %s, %s", reset[0].ID, reset[1].ID, first[0].ID, first[1].ID)
	}
	if reset[2].ID == first[2].ID {
		t.Errorf("a message without Message-ID and a new provider ID matched stored %s", first[2].ID)
	}
	ms := allMessages(t, s, inboxID)
	if len(ms) != 5 {
		t.Fatalf("after a reset, %d messages; want 5", len(ms))
	}
	for _, m := range reset[:2] {
		got, err := s.Message(ctx, inboxID, m.ID)
		if err != nil {
			t.Fatalf("Message(%s) = %v", m.ID, err)
		}
		if diff := cmp.Diff(storedMessage(m, inboxID), got); diff != "" {
			t.Errorf("re-keyed Message(%s) mismatch (-want +got):\n%s", m.ID, diff)
		}
	}

	// The re-keyed messages are now known by their new provider IDs.
	again := slices.Clone(reset)
	mustSaveSync(t, s, inboxID, again, "c4", t0.Add(4*time.Hour), 0)
	if n := len(allMessages(t, s, inboxID)); n != 5 {
		t.Errorf("after syncing the reset messages again, %d messages; want 5", n)
	}
}

func testSaveSyncUnknownInbox(t *testing.T, s holdfast.Store) {
	id := newID("inb")
	msgs := []holdfast.Message{newMessage("INBOX/1/1", "one", t0)}
	added, err := s.SaveSync(t.Context(), id, msgs, "c", t0, nil)
	if !errors.Is(err, holdfast.ErrNotFound) || added != 0 {
		t.Errorf("SaveSync(unknown inbox) = %d, %v; want 0, ErrNotFound", added, err)
	}
	if ms, err := s.Messages(t.Context(), id, holdfast.MessageFilter{}); err != nil || len(ms) != 0 {
		t.Errorf("Messages(unknown inbox) after a failed sync = %d messages, %v; want none", len(ms), err)
	}
	// An inbox created later with that ID starts empty.
	in := newInbox()
	in.ID = id
	mustCreate(t, s, in)
	if ms := allMessages(t, s, id); len(ms) != 0 {
		t.Errorf("a failed sync stored %d messages", len(ms))
	}
	checkCursor(t, s, id, "", time.Time{})
}

func testMessagesPaging(t *testing.T, s holdfast.Store) {
	in := mustCreate(t, s, newInbox())
	// Eleven messages in two syncs, several received at the same moment,
	// so that pages split ties, which the ID breaks.
	var msgs []holdfast.Message
	for i := range 11 {
		msgs = append(msgs, newMessage(fmt.Sprintf("p/%d", i), fmt.Sprintf("m%d", i), t0.Add(time.Duration(i/3)*time.Second)))
	}
	mustSaveSync(t, s, in.ID, msgs[:6], "a", t0, 6)
	mustSaveSync(t, s, in.ID, msgs[6:], "b", t0, 5)
	// The other inbox's messages never show.
	other := mustCreate(t, s, newInbox())
	mustSaveSync(t, s, other.ID, []holdfast.Message{newMessage("p/0", "m0", t0.Add(time.Second))}, "", t0, 1)

	var want []string
	ordered := slices.Clone(msgs)
	slices.SortFunc(ordered, func(a, b holdfast.Message) int {
		if c := b.ReceivedAt.Compare(a.ReceivedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	for _, m := range ordered {
		want = append(want, m.ID)
	}
	msgIDs := func(ms []*holdfast.Message) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.ID)
		}
		return out
	}
	if diff := cmp.Diff(want, msgIDs(allMessages(t, s, in.ID))); diff != "" {
		t.Errorf("Messages order mismatch (-want +got):\n%s", diff)
	}
	for _, size := range []int{1, 2, 3, 4, 11, 12} {
		t.Run(fmt.Sprintf("Size%d", size), func(t *testing.T) {
			var got []string
			f := holdfast.MessageFilter{Limit: size}
			for range 20 {
				page, err := s.Messages(t.Context(), in.ID, f)
				if err != nil {
					t.Fatalf("Messages(%+v) = %v", f, err)
				}
				if len(page) > size {
					t.Fatalf("Messages(%+v) returned %d; want at most %d", f, len(page), size)
				}
				got = append(got, msgIDs(page)...)
				if len(page) < size {
					break
				}
				last := page[len(page)-1]
				f.BeforeTime, f.BeforeID = last.ReceivedAt, last.ID
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pages of %d mismatch (-want +got):\n%s", size, diff)
			}
		})
	}
}

func testMessageNotFound(t *testing.T, s holdfast.Store) {
	in := mustCreate(t, s, newInbox())
	other := mustCreate(t, s, newInbox())
	msgs := []holdfast.Message{newMessage("INBOX/1/1", "one", t0)}
	mustSaveSync(t, s, other.ID, msgs, "", t0, 1)
	for _, tt := range []struct{ name, inbox, id string }{
		{"UnknownID", in.ID, newID("msg")},
		{"OtherInboxMessage", in.ID, msgs[0].ID},
		{"UnknownInbox", newID("inb"), msgs[0].ID},
	} {
		if _, err := s.Message(t.Context(), tt.inbox, tt.id); !errors.Is(err, holdfast.ErrNotFound) {
			t.Errorf("%s: Message(%s, %s) = %v; want ErrNotFound", tt.name, tt.inbox, tt.id, err)
		}
	}
}

func testDeleteInboxDeletesMail(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	kept := mustCreate(t, s, newInbox())
	var msgIDs, sendIDs []string
	for _, id := range []string{in.ID, kept.ID} {
		msgs := []holdfast.Message{newMessage("INBOX/1/1", "one", t0)}
		mustSaveSync(t, s, id, msgs, "c", t0, 1)
		sd, _, err := s.CreateSend(ctx, newSend(id, "key"))
		if err != nil {
			t.Fatalf("CreateSend = %v", err)
		}
		msgIDs, sendIDs = append(msgIDs, msgs[0].ID), append(sendIDs, sd.ID)
	}
	if err := s.DeleteInbox(ctx, in.ID, holdfast.Event{Cause: holdfast.CauseAPI}); err != nil {
		t.Fatalf("DeleteInbox = %v", err)
	}
	if _, err := s.Message(ctx, in.ID, msgIDs[0]); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("Message of a deleted inbox = %v; want ErrNotFound", err)
	}
	if ms := allMessages(t, s, in.ID); len(ms) != 0 {
		t.Errorf("Messages of a deleted inbox = %d; want none", len(ms))
	}
	if _, err := s.SendByID(ctx, sendIDs[0]); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("SendByID of a deleted inbox's send = %v; want ErrNotFound", err)
	}
	if _, err := s.Message(ctx, kept.ID, msgIDs[1]); err != nil {
		t.Errorf("Message of another inbox after a delete = %v", err)
	}
	if _, err := s.SendByID(ctx, sendIDs[1]); err != nil {
		t.Errorf("SendByID of another inbox's send after a delete = %v", err)
	}

	// The inbox's ID and key are free again.
	again := newInbox()
	again.ID = in.ID
	mustCreate(t, s, again)
	if _, existing, err := s.CreateSend(ctx, newSend(in.ID, "key")); err != nil || existing {
		t.Errorf("CreateSend with a deleted send's key = existing %v, %v; want a new send", existing, err)
	}
}

// newSend returns a complete scheduled send for inboxID with the given
// idempotency key.
func newSend(inboxID, key string) *holdfast.Send {
	return &holdfast.Send{
		ID:             newID("snd"),
		InboxID:        inboxID,
		IdempotencyKey: key,
		MessageID:      "<" + newID("m") + "@holdfast.example>",
		To:             []string{"bob@example.test"},
		Cc:             []string{"carol@example.test"},
		Bcc:            []string{"dave@example.test", "erin@example.test"},
		Subject:        "Hello",
		Text:           "Hello, Bob.",
		HTML:           "<p>Hello, Bob.</p>",
		SendAt:         t0.Add(time.Hour),
		State:          holdfast.SendScheduled,
		CreatedAt:      t0,
		UpdatedAt:      t0,
	}
}

// storedSend returns sd as the store keeps it.
func storedSend(sd *holdfast.Send) *holdfast.Send {
	c := *sd
	c.SendAt, c.CreatedAt, c.UpdatedAt = stored(c.SendAt), stored(c.CreatedAt), stored(c.UpdatedAt)
	if !c.SentAt.IsZero() {
		c.SentAt = stored(c.SentAt)
	}
	return &c
}

// mustCreateSend stores sd, which must be new.
func mustCreateSend(t *testing.T, s holdfast.Store, sd *holdfast.Send) *holdfast.Send {
	t.Helper()
	got, existing, err := s.CreateSend(t.Context(), sd)
	if err != nil || existing {
		t.Fatalf("CreateSend(%s) = existing %v, %v; want a new send", sd.ID, existing, err)
	}
	return got
}

func testCreateSend(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())

	t.Run("RoundTrip", func(t *testing.T) {
		sd := newSend(in.ID, "")
		orig := *sd
		got := mustCreateSend(t, s, sd)
		if diff := cmp.Diff(orig, *sd); diff != "" {
			t.Errorf("CreateSend modified its argument (-before +after):\n%s", diff)
		}
		if diff := cmp.Diff(storedSend(sd), got); diff != "" {
			t.Errorf("CreateSend returned (-want +got):\n%s", diff)
		}
		read, err := s.SendByID(ctx, sd.ID)
		if err != nil {
			t.Fatalf("SendByID(%s) = %v", sd.ID, err)
		}
		if diff := cmp.Diff(got, read); diff != "" {
			t.Errorf("SendByID(%s) mismatch (-created +read):\n%s", sd.ID, diff)
		}
		checkUTC(t, "send", read.SendAt, read.CreatedAt, read.UpdatedAt)
	})

	t.Run("Defaults", func(t *testing.T) {
		sd := &holdfast.Send{InboxID: in.ID, To: []string{"bob@example.test"}, Text: "Hi."}
		got := mustCreateSend(t, s, sd)
		if !strings.HasPrefix(got.ID, "snd_") || got.State != holdfast.SendScheduled ||
			got.CreatedAt.IsZero() || !got.UpdatedAt.Equal(got.CreatedAt) || !got.SendAt.Equal(got.CreatedAt) {
			t.Errorf("CreateSend defaults = ID %q, state %q, created %v, updated %v, send at %v; want snd_..., scheduled, now, now, now",
				got.ID, got.State, got.CreatedAt, got.UpdatedAt, got.SendAt)
		}
		read, err := s.SendByID(ctx, got.ID)
		if err != nil {
			t.Fatalf("SendByID(%s) = %v", got.ID, err)
		}
		if diff := cmp.Diff(got, read); diff != "" {
			t.Errorf("SendByID(%s) mismatch (-created +read):\n%s", got.ID, diff)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		if _, _, err := s.CreateSend(ctx, newSend(newID("inb"), "")); !errors.Is(err, holdfast.ErrNotFound) {
			t.Errorf("CreateSend(unknown inbox) = %v; want ErrNotFound", err)
		}
		if _, _, err := s.CreateSend(ctx, newSend(newID("inb"), "k")); !errors.Is(err, holdfast.ErrNotFound) {
			t.Errorf("CreateSend(unknown inbox, with a key) = %v; want ErrNotFound", err)
		}
		dup := mustCreateSend(t, s, newSend(in.ID, ""))
		again := newSend(in.ID, "")
		again.ID = dup.ID
		if _, _, err := s.CreateSend(ctx, again); !errors.Is(err, holdfast.ErrConflict) {
			t.Errorf("CreateSend(taken ID) = %v; want ErrConflict", err)
		}
		if _, err := s.SendByID(ctx, newID("snd")); !errors.Is(err, holdfast.ErrNotFound) {
			t.Errorf("SendByID(unknown) = %v; want ErrNotFound", err)
		}
	})
}

func testCreateSendIdempotency(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	other := mustCreate(t, s, newInbox())
	first := mustCreateSend(t, s, newSend(in.ID, "order-42"))

	again := newSend(in.ID, "order-42")
	again.Subject = "Different"
	got, existing, err := s.CreateSend(ctx, again)
	if err != nil || !existing {
		t.Fatalf("CreateSend(same key) = existing %v, %v; want existing", existing, err)
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("CreateSend(same key) returned (-first +got):\n%s", diff)
	}
	if _, err := s.SendByID(ctx, again.ID); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("CreateSend(same key) stored the second send: SendByID = %v", err)
	}

	// Keys are per inbox, and an empty key is none.
	mustCreateSend(t, s, newSend(other.ID, "order-42"))
	mustCreateSend(t, s, newSend(in.ID, "order-43"))
	mustCreateSend(t, s, newSend(in.ID, ""))
	mustCreateSend(t, s, newSend(in.ID, ""))
}

func testCreateSendConcurrent(t *testing.T, s holdfast.Store) {
	const n = 8
	in := mustCreate(t, s, newInbox())
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		ids   = map[string]bool{}
		fresh int
	)
	for range n {
		wg.Go(func() {
			got, existing, err := s.CreateSend(t.Context(), newSend(in.ID, "same"))
			if err != nil {
				t.Errorf("CreateSend = %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ids[got.ID] = true
			if !existing {
				fresh++
			}
		})
	}
	wg.Wait()
	if fresh != 1 || len(ids) != 1 {
		t.Errorf("%d concurrent creates with one key: %d new, %d different sends returned; want 1 and 1", n, fresh, len(ids))
	}
	due, err := s.DueSends(t.Context(), []holdfast.SendState{holdfast.SendScheduled}, t0.Add(24*time.Hour), 100)
	if err != nil {
		t.Fatalf("DueSends = %v", err)
	}
	if len(due) != 1 {
		t.Errorf("%d concurrent creates with one key stored %d sends; want 1", n, len(due))
	}
}

func testChangeSend(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	sd := mustCreateSend(t, s, newSend(in.ID, ""))
	at := t0.Add(2 * time.Hour)

	held, err := s.ChangeSend(ctx, sd.ID, holdfast.SendChange{
		From: holdfast.SendScheduled, To: holdfast.SendHeld, Reason: "provider_unavailable", At: at})
	if err != nil {
		t.Fatalf("ChangeSend(scheduled→held) = %v", err)
	}
	want := *sd
	want.State, want.Reason, want.UpdatedAt = holdfast.SendHeld, "provider_unavailable", stored(at)
	if diff := cmp.Diff(&want, held); diff != "" {
		t.Errorf("ChangeSend(scheduled→held) returned (-want +got):\n%s", diff)
	}

	if _, err := s.ChangeSend(ctx, sd.ID, holdfast.SendChange{From: holdfast.SendScheduled, To: holdfast.SendSending, At: at}); !errors.Is(err, holdfast.ErrConflict) {
		t.Errorf("ChangeSend(from scheduled, now held) = %v; want ErrConflict", err)
	}
	if _, err := s.ChangeSend(ctx, newID("snd"), holdfast.SendChange{To: holdfast.SendSending}); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("ChangeSend(unknown) = %v; want ErrNotFound", err)
	}
	if _, err := s.ChangeSend(ctx, newID("snd"), holdfast.SendChange{From: holdfast.SendHeld, To: holdfast.SendSending}); !errors.Is(err, holdfast.ErrNotFound) {
		t.Errorf("ChangeSend(unknown, with From) = %v; want ErrNotFound", err)
	}

	// Two attempts, the first failing back to held; the reason clears.
	for i := range 2 {
		got, err := s.ChangeSend(ctx, sd.ID, holdfast.SendChange{From: holdfast.SendHeld, To: holdfast.SendSending, Attempt: true, At: at})
		if err != nil {
			t.Fatalf("ChangeSend(held→sending) #%d = %v", i+1, err)
		}
		if got.Attempts != i+1 || got.Reason != "" || !got.SentAt.IsZero() {
			t.Errorf("after attempt %d: attempts %d, reason %q, sent at %v; want %d, empty, zero", i+1, got.Attempts, got.Reason, got.SentAt, i+1)
		}
		if i == 0 {
			if _, err := s.ChangeSend(ctx, sd.ID, holdfast.SendChange{From: holdfast.SendSending, To: holdfast.SendHeld, Reason: "timeout", At: at}); err != nil {
				t.Fatalf("ChangeSend(sending→held) = %v", err)
			}
		}
	}
	sentAt := t0.Add(3 * time.Hour)
	sent, err := s.ChangeSend(ctx, sd.ID, holdfast.SendChange{From: holdfast.SendSending, To: holdfast.SendSent, At: sentAt})
	if err != nil {
		t.Fatalf("ChangeSend(sending→sent) = %v", err)
	}
	if sent.State != holdfast.SendSent || sent.Attempts != 2 || !sent.SentAt.Equal(stored(sentAt)) || !sent.UpdatedAt.Equal(stored(sentAt)) {
		t.Errorf("sent send = state %s, attempts %d, sent at %v, updated %v; want sent, 2, %v, %v",
			sent.State, sent.Attempts, sent.SentAt, sent.UpdatedAt, stored(sentAt), stored(sentAt))
	}
	read, err := s.SendByID(ctx, sd.ID)
	if err != nil {
		t.Fatalf("SendByID = %v", err)
	}
	if diff := cmp.Diff(sent, read); diff != "" {
		t.Errorf("SendByID after ChangeSend (-returned +read):\n%s", diff)
	}
	checkUTC(t, "sent send", read.SentAt)

	// Without From the change is unconditional.
	if got, err := s.ChangeSend(ctx, sd.ID, holdfast.SendChange{To: holdfast.SendFailed, Reason: "bounced"}); err != nil || got.State != holdfast.SendFailed || !got.SentAt.Equal(stored(sentAt)) {
		t.Errorf("ChangeSend(no From, →failed) = %v; want failed, keeping SentAt", err)
	}

	t.Run("ConcurrentCompareAndSet", func(t *testing.T) {
		const n = 8
		sd := mustCreateSend(t, s, newSend(in.ID, ""))
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			won, got int
		)
		for range n {
			wg.Go(func() {
				_, err := s.ChangeSend(t.Context(), sd.ID, holdfast.SendChange{From: holdfast.SendScheduled, To: holdfast.SendSending, Attempt: true})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, holdfast.ErrConflict):
					got++
				default:
					t.Errorf("ChangeSend = %v; want nil or ErrConflict", err)
				}
			})
		}
		wg.Wait()
		if won != 1 || got != n-1 {
			t.Errorf("%d concurrent compare-and-sets: %d won, %d conflicted; want 1 and %d", n, won, got, n-1)
		}
		if read, err := s.SendByID(t.Context(), sd.ID); err != nil || read.Attempts != 1 {
			t.Errorf("after concurrent compare-and-sets: %v, attempts %d; want 1", err, read.Attempts)
		}
	})
}

func testDueSends(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	in := mustCreate(t, s, newInbox())
	other := mustCreate(t, s, newInbox())
	mk := func(inboxID string, state holdfast.SendState, sendAt time.Time) *holdfast.Send {
		sd := newSend(inboxID, "")
		sd.State, sd.SendAt = state, sendAt
		return mustCreateSend(t, s, sd)
	}
	due := t0.Add(time.Hour)
	var (
		a = mk(in.ID, holdfast.SendScheduled, t0.Add(30*time.Minute))
		b = mk(other.ID, holdfast.SendHeld, t0.Add(10*time.Minute))
		c = mk(in.ID, holdfast.SendScheduled, due) // at dueBy: due
		d = mk(in.ID, holdfast.SendScheduled, t0.Add(10*time.Minute))
		_ = mk(in.ID, holdfast.SendScheduled, due.Add(time.Microsecond)) // not yet
		_ = mk(in.ID, holdfast.SendSent, t0)
		_ = mk(in.ID, holdfast.SendCancelled, t0)
	)
	// b and d share a SendAt; the ID orders them.
	tie := []*holdfast.Send{b, d}
	slices.SortFunc(tie, func(x, y *holdfast.Send) int { return strings.Compare(x.ID, y.ID) })
	sendIDs := func(ss []*holdfast.Send) []string {
		var out []string
		for _, sd := range ss {
			out = append(out, sd.ID)
		}
		return out
	}
	tests := []struct {
		name   string
		states []holdfast.SendState
		limit  int
		want   []*holdfast.Send
	}{
		{"Scheduled", []holdfast.SendState{holdfast.SendScheduled}, 0, []*holdfast.Send{d, a, c}},
		{"ScheduledAndHeld", []holdfast.SendState{holdfast.SendScheduled, holdfast.SendHeld}, 0, []*holdfast.Send{tie[0], tie[1], a, c}},
		{"Limit", []holdfast.SendState{holdfast.SendHeld, holdfast.SendScheduled}, 2, []*holdfast.Send{tie[0], tie[1]}},
		{"Sending", []holdfast.SendState{holdfast.SendSending}, 0, nil},
		{"NoStates", nil, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.DueSends(ctx, tt.states, due, tt.limit)
			if err != nil {
				t.Fatalf("DueSends(%v) = %v", tt.states, err)
			}
			if diff := cmp.Diff(sendIDs(tt.want), sendIDs(got)); diff != "" {
				t.Errorf("DueSends(%v, %d) mismatch (-want +got):\n%s", tt.states, tt.limit, diff)
			}
			for i := range got {
				if i < len(tt.want) {
					if diff := cmp.Diff(tt.want[i], got[i]); diff != "" {
						t.Errorf("DueSends(%v)[%d] mismatch (-want +got):\n%s", tt.states, i, diff)
					}
				}
			}
		})
	}
}

// testTouchSynced: a sync that found nothing moves the last sync time
// forward, never back, keeps the cursor, and skips unknown inboxes.
func testTouchSynced(t *testing.T, s holdfast.Store) {
	ctx := t.Context()
	a, b := mustCreate(t, s, newInbox()), mustCreate(t, s, newInbox())
	mustSaveSync(t, s, a.ID, nil, "ca", t0.Add(time.Hour), 0)
	if err := s.TouchSynced(ctx, map[string]time.Time{
		a.ID: t0.Add(2 * time.Hour), b.ID: t0.Add(3 * time.Hour), "inb_unknown": t0,
	}); err != nil {
		t.Fatal(err)
	}
	checkCursor(t, s, a.ID, "ca", t0.Add(2*time.Hour))
	checkCursor(t, s, b.ID, "", t0.Add(3*time.Hour))
	// An older time changes nothing.
	if err := s.TouchSynced(ctx, map[string]time.Time{a.ID: t0}); err != nil {
		t.Fatal(err)
	}
	checkCursor(t, s, a.ID, "ca", t0.Add(2*time.Hour))
	if err := s.TouchSynced(ctx, nil); err != nil {
		t.Errorf("TouchSynced(nil) = %v", err)
	}
}

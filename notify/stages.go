package notify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
)

// Recheck drops the notices that no longer ask anyone to act: their inbox
// was deleted, is no longer needs_reconnect or needs_admin, or the notice
// is older than TTL. It sets each passing item's Inbox.
type Recheck struct {
	Base
	Store Store
	// TTL is how long a notice may wait for delivery.
	TTL time.Duration
}

// Exec implements Stage.
func (s *Recheck) Exec(ctx context.Context, items []*Item) ([]*Item, error) {
	now := s.Clock.Now()
	var out []*Item
	for _, it := range items {
		in, err := s.Store.Inbox(ctx, it.Notice.InboxID)
		var reason holdfast.NoticeStatusReason
		switch {
		case errors.Is(err, holdfast.ErrNotFound):
			reason = holdfast.NoticeReasonInboxDeleted
		case err != nil:
			return nil, fmt.Errorf("re-check inbox %s: %w", it.Notice.InboxID, err)
		case now.Sub(it.Notice.At) > s.TTL:
			reason = holdfast.NoticeReasonExpired
		case in.ActionRequired() == holdfast.RequireNone:
			reason = holdfast.NoticeReasonRecovered
		}
		if reason != "" {
			if err := cancel(ctx, s.Base, s.Store, it, reason); err != nil {
				return nil, fmt.Errorf("cancel notice %d: %w", it.Notice.ID, err)
			}
			continue
		}
		it.Inbox = in
		out = append(out, it)
	}
	return out, nil
}

// Inhibit drops the notices whose inbox an open incident covers
// (holdfast.Incident.Covers): one of its provider with no tenant, or of its
// provider and tenant [Alertmanager inhibition, equal: provider, tenant]. A
// tenant_event incident does not mute admin notices. Under an incident
// that holds notices (a notice_storm) a notice is held: it stays pending,
// and Deliver tries it again after HoldRetry; under any other it is
// cancelled.
type Inhibit struct {
	Base
	Store Store
}

// Exec implements Stage.
func (s *Inhibit) Exec(ctx context.Context, items []*Item) ([]*Item, error) {
	open, err := s.Store.Incidents(ctx, true, 1000)
	if err != nil {
		return nil, fmt.Errorf("open incidents: %w", err)
	}
	var out []*Item
	for _, it := range items {
		if inc := holdfast.Covering(open, it.Inbox, it.Notice.Admin); inc != nil {
			if inc.Kind.Effects().HoldsNotices {
				s.Logger.InfoContext(ctx, "notice held by a notice storm", "notice_id", it.Notice.ID,
					"inbox_id", it.Notice.InboxID, "incident_id", inc.ID)
				it.Held = true
				continue
			}
			if err := cancel(ctx, s.Base, s.Store, it, holdfast.NoticeReasonIncident); err != nil {
				return nil, fmt.Errorf("cancel notice %d: %w", it.Notice.ID, err)
			}
			continue
		}
		out = append(out, it)
	}
	return out, nil
}

// Dedup claims each notice (pending → sending) by compare-and-set: one
// that another worker claimed, or that was decided already, is dropped, so
// no notice goes out twice.
type Dedup struct {
	Base
	Store Store
}

// Exec implements Stage.
func (s *Dedup) Exec(ctx context.Context, items []*Item) ([]*Item, error) {
	var out []*Item
	for _, it := range items {
		rec, err := s.Store.ChangeNotice(ctx, it.Notice.ID, holdfast.NoticeChange{
			From: holdfast.NoticePending, To: holdfast.NoticeSending, At: s.Clock.Now(),
		})
		if errors.Is(err, holdfast.ErrConflict) || errors.Is(err, holdfast.ErrNotFound) {
			continue
		}
		if err != nil {
			// Give back what this call claimed so far.
			release(ctx, s.Base, s.Store, out)
			return nil, fmt.Errorf("claim notice %d: %w", it.Notice.ID, err)
		}
		it.Notice = rec
		out = append(out, it)
	}
	return out, nil
}

// release gives claimed notices back (sending → pending) after a failure,
// so that a retry sends them.
func release(ctx context.Context, b Base, st Store, items []*Item) {
	for _, it := range items {
		if _, err := st.ChangeNotice(context.WithoutCancel(ctx), it.Notice.ID, holdfast.NoticeChange{
			From: holdfast.NoticeSending, To: holdfast.NoticePending, Reason: holdfast.NoticeReasonRetry, At: b.Clock.Now(),
		}); err != nil {
			b.Logger.WarnContext(ctx, "release notice; it will not be retried", "notice_id", it.Notice.ID, "err", err)
		}
	}
}

// Send mails one message for all the items (one recipient) and records
// them sent; on failure it gives them back to pending and returns the
// error.
type Send struct {
	Base
	Store     Store
	Mailer    Mailer
	Templates *Templates
	Links     *Links
	From      string
	// Announce, if set, returns the outbox events of each message that
	// goes out (notice.sent); they are appended in the transaction that
	// records the first of its notices sent.
	Announce func(Sent) ([]holdfast.OutboxEvent, error)
	// OnSent, if set, is told of each message that went out, after its
	// notices are recorded sent.
	OnSent func(context.Context, Sent)
}

// Exec implements Stage.
func (s *Send) Exec(ctx context.Context, items []*Item) ([]*Item, error) {
	now := s.Clock.Now()
	to := items[0].Notice.Recipient
	data := MessageData{Recipient: to}
	data.StatusURL, data.Expires = s.Links.StatusURL(to, now)
	for _, it := range items {
		v := InboxData{
			ID: it.Inbox.ID, Email: it.Inbox.Email, Provider: string(it.Inbox.Provider),
			Reason: it.Notice.Reason, Message: ownerMessage(it.Inbox),
		}
		data.Inboxes = append(data.Inboxes, v)
		if it.Notice.Admin {
			data.Admin = append(data.Admin, v)
		} else {
			data.Reconnect = append(data.Reconnect, v)
		}
	}
	name := "reconnect"
	if len(data.Reconnect) == 0 {
		name = "admin"
	}
	sent := Sent{Recipient: to, Template: name, StatusURL: data.StatusURL, Expires: data.Expires, SentAt: now}
	for k, it := range items {
		sent.Inboxes = append(sent.Inboxes, SentInbox{InboxData: data.Inboxes[k], NoticeID: it.Notice.ID, Admin: it.Notice.Admin})
	}
	var events []holdfast.OutboxEvent
	raw, err := s.Templates.Render(name, s.From, to, now, data)
	if err == nil && s.Announce != nil {
		events, err = s.Announce(sent)
	}
	if err == nil {
		err = s.Mailer.Send(ctx, s.From, []string{to}, raw)
	}
	if err != nil {
		release(ctx, s.Base, s.Store, items)
		return nil, fmt.Errorf("send %s notice to the owner of %d inboxes: %w", name, len(items), err)
	}
	s.recordSent(ctx, items, events, now)
	s.Logger.InfoContext(ctx, "notice sent", "template", name, "inboxes", len(items), "notice_id", items[0].Notice.ID)
	if s.OnSent != nil {
		s.OnSent(context.WithoutCancel(ctx), sent)
	}
	return items, nil
}

// recordSent records items sent. events (notice.sent) are appended in the
// transaction of the first notice recorded, so that they commit with it:
// without a Mailer they are the notice's only channel. A notice that
// cannot be recorded stays sending, never to go out again, and the notify
// sweep flags it stranded; if none can, the events are not written.
func (s *Send) recordSent(ctx context.Context, items []*Item, events []holdfast.OutboxEvent, now time.Time) {
	for _, it := range items {
		if _, err := s.Store.ChangeNotice(context.WithoutCancel(ctx), it.Notice.ID, holdfast.NoticeChange{
			From: holdfast.NoticeSending, To: holdfast.NoticeSent, At: now, Events: events,
		}); err != nil {
			// Mailed, so never again: it stays sending.
			s.Logger.WarnContext(ctx, "record notice sent", "notice_id", it.Notice.ID, "err", err)
			continue
		}
		events = nil
	}
	if events != nil {
		s.Logger.ErrorContext(ctx, "notice.sent event not written: no notice of the message could be recorded sent",
			"notice_id", items[0].Notice.ID)
	}
}

// ownerMessage is the sentence the owner reads for an inbox.
func ownerMessage(in *holdfast.Inbox) string {
	if in.Message != "" {
		return in.Message
	}
	return holdfast.DefaultMessage(in.State)
}

// FollowUp sends the "resolved, nothing to do" message for inbox id if its
// owner was told of trouble (its last notice was sent), it is connected
// again, and no reconnect (a move to connecting by the API or the owner)
// happened since the notice went out. It claims the notice (sent →
// followed_up) first, so the follow-up too goes out at most once. While
// the inbox is neither connected nor in need of its owner again (paused by
// a retroactive incident that undid its notice, degraded, suspect) it
// returns ErrNotYet.
func (n *Notifier) FollowUp(ctx context.Context, inboxID string) error {
	if !n.cfg.Resolved {
		return nil
	}
	st := n.cfg.Store
	recs, err := st.NoticeRecords(ctx, holdfast.NoticeFilter{InboxID: inboxID, Newest: true, Limit: 1})
	if err != nil {
		return fmt.Errorf("follow up inbox %s: %w", inboxID, err)
	}
	if len(recs) == 0 {
		return nil
	}
	last := recs[0]
	if last.Status != holdfast.NoticeSent || last.Recipient == "" {
		return nil
	}
	in, err := st.Inbox(ctx, inboxID)
	if errors.Is(err, holdfast.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("follow up inbox %s: %w", inboxID, err)
	}
	if in.State != holdfast.StateConnected {
		if in.State.ActionRequired() != holdfast.RequireNone {
			return nil // in trouble again: its owner has the notice
		}
		return ErrNotYet
	}
	evs, err := st.Events(ctx, inboxID, holdfast.EventFilter{Limit: 100})
	if err != nil {
		return fmt.Errorf("follow up inbox %s: %w", inboxID, err)
	}
	for _, ev := range evs { // newest first
		if ev.At.Before(last.SentAt) {
			break
		}
		if ev.NewState == holdfast.StateConnecting || ev.Cause == holdfast.CauseAPI {
			return nil // the owner reconnected: nothing to follow up
		}
	}
	now := n.base.Clock.Now()
	if _, err := st.ChangeNotice(ctx, last.ID, holdfast.NoticeChange{
		From: holdfast.NoticeSent, To: holdfast.NoticeFollowedUp, Reason: holdfast.NoticeReasonRecovered, At: now,
	}); errors.Is(err, holdfast.ErrConflict) {
		return nil
	} else if err != nil {
		return fmt.Errorf("follow up inbox %s: %w", inboxID, err)
	}
	data := MessageData{Recipient: last.Recipient, Inboxes: []InboxData{{
		ID: in.ID, Email: in.Email, Provider: string(in.Provider), Reason: in.Reason, Message: ownerMessage(in),
	}}}
	data.StatusURL, data.Expires = n.cfg.Links.StatusURL(last.Recipient, now)
	raw, err := n.cfg.Templates.Render("resolved", n.cfg.From, last.Recipient, now, data)
	if err == nil {
		err = n.cfg.Mailer.Send(ctx, n.cfg.From, []string{last.Recipient}, raw)
	}
	if err != nil {
		if _, rerr := st.ChangeNotice(context.WithoutCancel(ctx), last.ID, holdfast.NoticeChange{
			From: holdfast.NoticeFollowedUp, To: holdfast.NoticeSent, At: now,
		}); rerr != nil {
			n.base.Logger.WarnContext(ctx, "release follow-up; it will not be retried", "notice_id", last.ID, "err", rerr)
		}
		return fmt.Errorf("follow up inbox %s: %w", inboxID, err)
	}
	n.base.Logger.InfoContext(ctx, "resolved follow-up sent", "inbox_id", inboxID, "notice_id", last.ID)
	return nil
}

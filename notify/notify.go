// Package notify delivers the health engine's notices to the people who
// must act: the notification outbox. The engine decides that a notice is
// due (it already waited its grace period) and the monitor records it with
// holdfast.Store.AppendNotice; a notify job per notice (package jobs) then
// runs it through a pipeline of stages, in the manner of Alertmanager's
// notify package:
//
//		group wait → re-check → outage inhibit → dedup (claim) → send
//
//	  - Group wait: a notice waits GroupWait (30 s) after it was decided, and
//	    then goes out together with every other pending notice of the same
//	    recipient (the inbox's email), so that an owner with several inboxes
//	    gets one message.
//	  - Re-check: right before delivery, each notice is checked against the
//	    inbox's current state in the store. An inbox that is no longer
//	    needs_reconnect or needs_admin, or was deleted, or a notice older than
//	    TTL, is cancelled with the reason recorded.
//	  - Outage inhibit: a notice whose inbox is covered by an open incident
//	    (its provider, or its provider and tenant) is cancelled: nobody is
//	    told to act during an outage. A tenant_event incident does not mute
//	    admin notices, which are what it asks for. A notice_storm incident
//	    holds notices instead: they stay pending and are tried again every
//	    HoldRetry until it is resolved (then re-checked) or they expire.
//	  - Dedup: each notice is claimed (pending → sending) by compare-and-set
//	    in the store, so that no notice goes out twice, whatever retries or
//	    restarts happen; a notice left sending by a crash is never mailed
//	    again (at most once). The group's claim, send and record run under
//	    the recipient's lock (holdfast.LockStore), which every node sees:
//	    two workers, on one node or two, never split one recipient's group
//	    into two messages.
//	  - Send: one multipart text and HTML message per recipient, from
//	    templates the operator can replace, linking to the owner's status
//	    page with a signed, expiring token (Links).
//
// With Resolved set, an owner who was told of trouble that then went away
// by itself (the inbox returned to connected without a reconnect) gets one
// short "resolved, nothing to do" follow-up.
//
// The package never calls time.Now: the clock is injected.
//
// The Go API is not stable.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// Defaults for Config's zero fields.
const (
	// DefaultGroupWait is how long a notice waits for others of the same
	// recipient [Alertmanager group_wait].
	DefaultGroupWait = 30 * time.Second
	// DefaultTTL drops notices older than this (docs/health-engine.md,
	// NoticeTTL).
	DefaultTTL = 24 * time.Hour
	// DefaultHoldRetry is how often a notice held by a notice storm is
	// tried again.
	DefaultHoldRetry = time.Minute
	// LockRetry is how long a notice whose recipient's group another
	// worker is delivering waits before it is tried again (it has usually
	// gone out with that group by then).
	LockRetry = 2 * time.Second
)

// Store is the aggregates the pipeline uses: notices, the inboxes they
// are for, the open incidents, and the locks that keep one recipient's
// group to one worker across the nodes.
type Store interface {
	holdfast.NoticeStore
	holdfast.InboxStore
	holdfast.HealthStore
	holdfast.LockStore
}

var _ Store = holdfast.Store(nil)

// Base is the logger and clock every stage shares.
type Base struct {
	Logger *slog.Logger
	Clock  holdfast.Clock
}

// Item is one notice on its way through the pipeline, with its inbox as
// the re-check found it.
type Item struct {
	Notice *holdfast.NoticeRecord
	Inbox  *holdfast.Inbox
	// Held is set by a stage that drops the item without deciding it: the
	// notice stays pending, to be tried again (a notice storm).
	Held bool
}

// A Stage processes the items of one group and returns those that go on.
// A stage that drops an item records why in the store.
type Stage interface {
	Exec(ctx context.Context, items []*Item) ([]*Item, error)
}

// StageFunc adapts a function to a Stage.
type StageFunc func(ctx context.Context, items []*Item) ([]*Item, error)

// Exec implements Stage.
func (f StageFunc) Exec(ctx context.Context, items []*Item) ([]*Item, error) { return f(ctx, items) }

// Multi runs stages in order, each on what the one before passed on, and
// stops early once nothing is left.
type Multi []Stage

// Exec implements Stage.
func (m Multi) Exec(ctx context.Context, items []*Item) ([]*Item, error) {
	var err error
	for _, s := range m {
		if len(items) == 0 {
			return nil, nil
		}
		if items, err = s.Exec(ctx, items); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// Config configures a Notifier. Store and Links are required, and Mailer
// and From, or Announce: without a Mailer the notices go through the whole
// pipeline and are delivered as the events of Announce alone (the host
// application's webhook, notice.sent), for it to tell its users; those
// events commit with the notice's sent.
type Config struct {
	Store Store
	// Mailer mails the notices; nil hands them to Announce only.
	Mailer Mailer
	// Templates renders the messages; nil means the embedded ones.
	Templates *Templates
	Links     *Links
	// From is the messages' From address.
	From      string
	GroupWait time.Duration
	TTL       time.Duration
	// HoldRetry is how long a notice held by a notice storm waits before
	// it is tried again; zero means DefaultHoldRetry.
	HoldRetry time.Duration
	// Resolved sends the "resolved, nothing to do" follow-up (by email:
	// it needs a Mailer).
	Resolved bool
	// Announce, if set, returns the outbox events of a message that goes
	// out (the service's notice.sent webhook event, webhook.NoticeEvents);
	// they are appended in the transaction that records its first notice
	// sent.
	Announce func(Sent) ([]holdfast.OutboxEvent, error)
	// OnSent, if set, is called after a message went out and its notices
	// were recorded sent. It must not block (webhook.Relay.Wake).
	OnSent func(context.Context, Sent)
	Logger *slog.Logger
	Clock  holdfast.Clock
}

// Notifier runs the pipeline. It is safe for concurrent use.
type Notifier struct {
	cfg      Config
	base     Base
	pipeline Stage
}

// New returns a Notifier, with cfg's zero fields set to their defaults.
func New(cfg Config) (*Notifier, error) {
	switch {
	case cfg.Store == nil || cfg.Links == nil:
		return nil, errors.New("notify: Store and Links are required")
	case cfg.Mailer != nil && cfg.From == "":
		return nil, errors.New("notify: From is required with a Mailer")
	case cfg.Mailer == nil && cfg.Announce == nil:
		return nil, errors.New("notify: a Mailer or Announce is required")
	case cfg.Mailer == nil && cfg.Resolved:
		return nil, errors.New("notify: the resolved follow-up is mailed: it needs a Mailer")
	}
	channel := ChannelEmail
	if cfg.Mailer == nil {
		// The message is still rendered, so that a broken template fails
		// the same way, and handed to Announce alone.
		channel, cfg.Mailer = ChannelWebhook, discard{}
	}
	if announce := cfg.Announce; announce != nil {
		cfg.Announce = func(s Sent) ([]holdfast.OutboxEvent, error) {
			s.Channel = channel
			return announce(s)
		}
	}
	if onSent := cfg.OnSent; onSent != nil {
		cfg.OnSent = func(ctx context.Context, s Sent) {
			s.Channel = channel
			onSent(ctx, s)
		}
	}
	if cfg.Templates == nil {
		t, err := LoadTemplates("")
		if err != nil {
			return nil, err
		}
		cfg.Templates = t
	}
	if cfg.GroupWait <= 0 {
		cfg.GroupWait = DefaultGroupWait
	}
	if cfg.HoldRetry <= 0 {
		cfg.HoldRetry = DefaultHoldRetry
	}
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = holdfast.SystemClock{}
	}
	b := Base{Logger: cfg.Logger, Clock: cfg.Clock}
	n := &Notifier{cfg: cfg, base: b}
	n.pipeline = Multi{
		&Recheck{Base: b, Store: cfg.Store, TTL: cfg.TTL},
		&Inhibit{Base: b, Store: cfg.Store},
		&Dedup{Base: b, Store: cfg.Store},
		&Send{Base: b, Store: cfg.Store, Mailer: cfg.Mailer, Templates: cfg.Templates, Links: cfg.Links, From: cfg.From, Announce: cfg.Announce, OnSent: cfg.OnSent},
	}
	return n, nil
}

// Sent describes one message that went out to an inbox owner.
type Sent struct {
	// Recipient is the owner's email address.
	Recipient string
	// Template is "reconnect" or "admin".
	Template string
	// Channel is ChannelEmail when the message was mailed, ChannelWebhook
	// when there is no mailer and the host application is to tell the
	// owner.
	Channel string
	// StatusURL is the owner's status page, valid until Expires.
	StatusURL string
	Expires   time.Time
	// Inboxes are the inboxes the message is about.
	Inboxes []SentInbox
	SentAt  time.Time
}

// The channels a notice goes out through.
const (
	ChannelEmail   = "email"
	ChannelWebhook = "webhook"
)

// discard is the Mailer of a Notifier without one: notices go to
// Announce only.
type discard struct{}

func (discard) Send(context.Context, string, []string, []byte) error { return nil }

// SentInbox is one inbox of a Sent message, with its notice.
type SentInbox struct {
	InboxData
	NoticeID int64
	// Admin is set when the inbox needs the owner's administrator.
	Admin bool
}

// Resolved reports whether the "resolved, nothing to do" follow-up is on.
func (n *Notifier) Resolved() bool { return n.cfg.Resolved }

// Deliver runs the pipeline for the group (the recipient) of notice id.
// It returns a positive wait when the group wait has not passed yet, when
// another worker (on this node or another) is delivering the recipient's
// group (LockRetry), or when the notice was held by a notice storm: the
// caller runs it again then. A notice no longer pending is done. An error
// (the store, or the mailer) leaves the group's notices pending, to be
// tried again.
//
// The recipient's group is read, claimed, sent and recorded under the
// recipient's lock (holdfast.LockStore's TryLock), so that every pending
// notice of one recipient goes out in one message whichever node's
// worker takes it.
func (n *Notifier) Deliver(ctx context.Context, id int64) (wait time.Duration, err error) {
	rec, err := n.pending(ctx, id)
	if err != nil || rec == nil {
		return 0, err
	}
	if w := rec.At.Add(n.cfg.GroupWait).Sub(n.base.Clock.Now()); w > 0 {
		return w, nil
	}
	group := []*holdfast.NoticeRecord{rec}
	if rec.Recipient != "" {
		release, ok, err := n.cfg.Store.TryLock(ctx, RecipientLock(rec.Recipient))
		if err != nil {
			return 0, fmt.Errorf("deliver notice %d: lock its recipient: %w", id, err)
		}
		if !ok {
			return LockRetry, nil
		}
		defer release()
		// The lock's previous holder may have sent it with its group.
		if rec, err = n.pending(ctx, id); err != nil || rec == nil {
			return 0, err
		}
		if group, err = n.cfg.Store.NoticeRecords(ctx, holdfast.NoticeFilter{
			Recipient: rec.Recipient, Status: holdfast.NoticePending, Limit: 1000,
		}); err != nil {
			return 0, fmt.Errorf("deliver notice %d: group of its recipient: %w", id, err)
		}
	}
	items := make([]*Item, 0, len(group))
	for _, r := range group {
		items = append(items, &Item{Notice: r})
	}
	if _, err := n.pipeline.Exec(ctx, items); err != nil {
		return 0, fmt.Errorf("deliver notice %d: %w", id, err)
	}
	if slices.ContainsFunc(items, func(it *Item) bool { return it.Held && it.Notice.ID == id }) {
		return n.cfg.HoldRetry, nil // a notice storm: try again later
	}
	return 0, nil
}

// pending returns notice id if it is pending, or nil when it is unknown
// or decided already.
func (n *Notifier) pending(ctx context.Context, id int64) (*holdfast.NoticeRecord, error) {
	recs, err := n.cfg.Store.NoticeRecords(ctx, holdfast.NoticeFilter{ID: id, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("deliver notice %d: %w", id, err)
	}
	if len(recs) == 0 || recs[0].Status != holdfast.NoticePending {
		return nil, nil
	}
	return recs[0], nil
}

// RecipientLock names the store lock (holdfast.LockStore) of a
// recipient's group: one per address, whatever the case of its letters.
func RecipientLock(recipient string) string {
	return "notify recipient " + strings.ToLower(recipient)
}

// cancel records that a pending notice will not go out, and why. A notice
// no longer pending (another worker took it) is left alone.
func cancel(ctx context.Context, b Base, st Store, it *Item, reason holdfast.NoticeStatusReason) error {
	_, err := st.ChangeNotice(ctx, it.Notice.ID, holdfast.NoticeChange{
		From: holdfast.NoticePending, To: holdfast.NoticeCancelled, Reason: reason, At: b.Clock.Now(),
	})
	if errors.Is(err, holdfast.ErrConflict) || errors.Is(err, holdfast.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	b.Logger.InfoContext(ctx, "notice cancelled", "notice_id", it.Notice.ID, "inbox_id", it.Notice.InboxID,
		"episode", it.Notice.Episode, "reason", reason)
	return nil
}

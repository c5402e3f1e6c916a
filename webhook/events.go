package webhook

import (
	"context"
	"time"

	"github.com/holdfast/holdfast"
)

// InboxData is the data of the inbox.* events.
type InboxData struct {
	InboxID        string                  `json:"inbox_id"`
	Email          string                  `json:"email"`
	Provider       holdfast.Provider       `json:"provider"`
	Tenant         string                  `json:"tenant"`
	From           holdfast.State          `json:"from"`
	To             holdfast.State          `json:"to"`
	ActionRequired holdfast.ActionRequired `json:"action_required"`
	Reason         string                  `json:"reason"`
	Message        string                  `json:"message"`
	At             time.Time               `json:"at"`
}

// troubled are the states from which a return to connected is a recovery.
var troubled = map[holdfast.State]bool{
	holdfast.StatePaused: true, holdfast.StateSuspect: true, holdfast.StateDegraded: true,
	holdfast.StateNeedsReconnect: true, holdfast.StateNeedsAdmin: true,
}

// InboxStateChanged publishes the events of an inbox's move from state
// from to its current state (in, as stored after the move):
// inbox.state_changed always, inbox.needs_reconnect when it now needs
// reconnecting, inbox.recovered when it is connected again after trouble.
func (p *Publisher) InboxStateChanged(ctx context.Context, in *holdfast.Inbox, from holdfast.State) {
	if from == in.State {
		return
	}
	d := InboxData{
		InboxID: in.ID, Email: in.Email, Provider: in.Provider, Tenant: in.Tenant,
		From: from, To: in.State, ActionRequired: in.ActionRequired(),
		Reason: in.Reason, Message: in.Message, At: in.Since,
	}
	now := p.cfg.Clock.Now()
	p.Publish(ctx, NewEvent(InboxStateChanged, d, now))
	switch {
	case in.State == holdfast.StateNeedsReconnect:
		p.Publish(ctx, NewEvent(InboxNeedsReconnect, d, now))
	case in.State == holdfast.StateConnected && troubled[from]:
		p.Publish(ctx, NewEvent(InboxRecovered, d, now))
	}
}

// MessageData is the data of message.received: the message's metadata,
// not its body (GET /v1/inboxes/{inbox_id}/messages/{id} has the rest).
type MessageData struct {
	ID                string    `json:"id"`
	InboxID           string    `json:"inbox_id"`
	InternetMessageID string    `json:"internet_message_id"`
	From              string    `json:"from"`
	To                []string  `json:"to"`
	Cc                []string  `json:"cc"`
	Subject           string    `json:"subject"`
	ReceivedAt        time.Time `json:"received_at"`
	Snippet           string    `json:"snippet"`
}

// MessagesReceived publishes one message.received per message of msgs
// that a sync added (Added set by Store.SaveSync).
func (p *Publisher) MessagesReceived(ctx context.Context, inboxID string, msgs []holdfast.Message) {
	now := p.cfg.Clock.Now()
	for i := range msgs {
		m := &msgs[i]
		if !m.Added {
			continue
		}
		p.Publish(ctx, NewEvent(MessageReceived, MessageData{
			ID: m.ID, InboxID: inboxID, InternetMessageID: m.InternetMessageID, From: m.From,
			To: orEmpty(m.To), Cc: orEmpty(m.Cc), Subject: m.Subject, ReceivedAt: m.ReceivedAt, Snippet: m.Snippet,
		}, now))
	}
}

// SendData is the data of the send.* events.
type SendData struct {
	ID        string             `json:"id"`
	InboxID   string             `json:"inbox_id"`
	State     holdfast.SendState `json:"state"`
	Reason    string             `json:"reason"`
	MessageID string             `json:"message_id"`
	To        []string           `json:"to"`
	Cc        []string           `json:"cc"`
	Bcc       []string           `json:"bcc"`
	Subject   string             `json:"subject"`
	Attempts  int                `json:"attempts"`
	SentAt    *time.Time         `json:"sent_at"`
}

// SendChanged publishes send.sent or send.failed for a send that reached
// one of those states, and nothing for other states.
func (p *Publisher) SendChanged(ctx context.Context, s *holdfast.Send) {
	var typ string
	switch s.State {
	case holdfast.SendSent:
		typ = SendSent
	case holdfast.SendFailed:
		typ = SendFailed
	default:
		return
	}
	d := SendData{
		ID: s.ID, InboxID: s.InboxID, State: s.State, Reason: string(s.Reason), MessageID: s.MessageID,
		To: orEmpty(s.To), Cc: orEmpty(s.Cc), Bcc: orEmpty(s.Bcc), Subject: s.Subject, Attempts: s.Attempts,
	}
	if !s.SentAt.IsZero() {
		t := s.SentAt
		d.SentAt = &t
	}
	p.Publish(ctx, NewEvent(typ, d, p.cfg.Clock.Now()))
}

// IncidentData is the data of the incident.* events.
type IncidentData struct {
	ID         int64             `json:"id"`
	Kind       string            `json:"kind"`
	Provider   holdfast.Provider `json:"provider"`
	Tenant     string            `json:"tenant"`
	OpenedAt   time.Time         `json:"opened_at"`
	ResolvedAt *time.Time        `json:"resolved_at"`
	Evidence   string            `json:"evidence"`
	Affected   int               `json:"affected"`
	Recovered  int               `json:"recovered"`
}

// IncidentChanged publishes incident.opened when opened is set, and
// incident.resolved when the incident is resolved.
func (p *Publisher) IncidentChanged(ctx context.Context, in *holdfast.Incident, opened bool) {
	d := IncidentData{
		ID: in.ID, Kind: string(in.Kind), Provider: in.Provider, Tenant: in.Tenant, OpenedAt: in.OpenedAt,
		Evidence: in.Evidence, Affected: in.Affected, Recovered: in.Recovered,
	}
	if !in.Open() {
		t := in.ResolvedAt
		d.ResolvedAt = &t
	}
	now := p.cfg.Clock.Now()
	if opened {
		p.Publish(ctx, NewEvent(IncidentOpened, d, now))
	}
	if !in.Open() {
		p.Publish(ctx, NewEvent(IncidentResolved, d, now))
	}
}

// NoticeData is the data of notice.sent: one email to an inbox owner,
// about one or more of their inboxes.
type NoticeData struct {
	Recipient string            `json:"recipient"`
	Template  string            `json:"template"`
	Channel   string            `json:"channel"`
	StatusURL string            `json:"status_url"`
	ExpiresAt time.Time         `json:"expires_at"`
	Inboxes   []NoticeInboxData `json:"inboxes"`
	SentAt    time.Time         `json:"sent_at"`
}

// NoticeInboxData is one inbox of a notice.sent event.
type NoticeInboxData struct {
	NoticeID       int64                   `json:"notice_id"`
	InboxID        string                  `json:"inbox_id"`
	Email          string                  `json:"email"`
	Provider       holdfast.Provider       `json:"provider"`
	ActionRequired holdfast.ActionRequired `json:"action_required"`
	Reason         string                  `json:"reason"`
	Message        string                  `json:"message"`
}

// NoticeSent publishes notice.sent.
func (p *Publisher) NoticeSent(ctx context.Context, d NoticeData) {
	if d.Inboxes == nil {
		d.Inboxes = []NoticeInboxData{}
	}
	p.Publish(ctx, NewEvent(NoticeSent, d, p.cfg.Clock.Now()))
}

// orEmpty returns l, or an empty list for nil, so that it encodes as [].
func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

package webhook

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/holdfast/holdfast"
)

// Outbox returns evs as outbox events, each with its payload: the JSON
// body POSTed to the webhooks.
func Outbox(evs ...Event) ([]holdfast.OutboxEvent, error) {
	out := make([]holdfast.OutboxEvent, 0, len(evs))
	for _, ev := range evs {
		payload, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode %s event %s: %w", ev.Type, ev.ID, err)
		}
		out = append(out, holdfast.OutboxEvent{ID: ev.ID, Type: ev.Type, Payload: payload, CreatedAt: ev.CreatedAt})
	}
	return out, nil
}

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

// InboxEvents returns the events of an inbox's move from state from to
// its current state (in, as stored after the move), created at now:
// inbox.state_changed always, inbox.needs_reconnect when it now needs
// reconnecting, inbox.recovered when it is connected again after trouble;
// none when it did not move.
func InboxEvents(in *holdfast.Inbox, from holdfast.State, now time.Time) ([]holdfast.OutboxEvent, error) {
	if from == in.State {
		return nil, nil
	}
	d := InboxData{
		InboxID: in.ID, Email: in.Email, Provider: in.Provider, Tenant: in.Tenant,
		From: from, To: in.State, ActionRequired: in.ActionRequired(),
		Reason: in.Reason, Message: in.Message, At: in.Since,
	}
	evs := []Event{NewEvent(InboxStateChanged, d, now)}
	switch {
	case in.State == holdfast.StateNeedsReconnect:
		evs = append(evs, NewEvent(InboxNeedsReconnect, d, now))
	case in.State == holdfast.StateConnected && troubled[from]:
		evs = append(evs, NewEvent(InboxRecovered, d, now))
	}
	return Outbox(evs...)
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

// MessageEvents returns one message.received, created at now, per
// message of msgs that a sync added (Added set by Store.SaveSync).
func MessageEvents(inboxID string, msgs []holdfast.Message, now time.Time) ([]holdfast.OutboxEvent, error) {
	var evs []Event
	for i := range msgs {
		m := &msgs[i]
		if !m.Added {
			continue
		}
		evs = append(evs, NewEvent(MessageReceived, MessageData{
			ID: m.ID, InboxID: inboxID, InternetMessageID: m.InternetMessageID, From: m.From,
			To: orEmpty(m.To), Cc: orEmpty(m.Cc), Subject: m.Subject, ReceivedAt: m.ReceivedAt, Snippet: m.Snippet,
		}, now))
	}
	return Outbox(evs...)
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

// SendEvents returns send.sent or send.failed, created at now, for a send
// (as stored) that reached one of those states, and none for other states.
func SendEvents(s *holdfast.Send, now time.Time) ([]holdfast.OutboxEvent, error) {
	var typ string
	switch s.State {
	case holdfast.SendSent:
		typ = SendSent
	case holdfast.SendFailed:
		typ = SendFailed
	default:
		return nil, nil
	}
	d := SendData{
		ID: s.ID, InboxID: s.InboxID, State: s.State, Reason: string(s.Reason), MessageID: s.MessageID,
		To: orEmpty(s.To), Cc: orEmpty(s.Cc), Bcc: orEmpty(s.Bcc), Subject: s.Subject, Attempts: s.Attempts,
	}
	if !s.SentAt.IsZero() {
		t := s.SentAt
		d.SentAt = &t
	}
	return Outbox(NewEvent(typ, d, now))
}

// IncidentData is the data of the incident.* events.
type IncidentData struct {
	ID         int64             `json:"id"`
	Kind       string            `json:"kind"`
	Provider   holdfast.Provider `json:"provider"`
	Tenant     string            `json:"tenant"`
	OpenedAt   time.Time         `json:"opened_at"`
	ResolvedAt *time.Time        `json:"resolved_at"`
	// EscalatedAt is set once the incident was escalated.
	EscalatedAt *time.Time `json:"escalated_at"`
	Evidence    string     `json:"evidence"`
	Affected    int        `json:"affected"`
	Recovered   int        `json:"recovered"`
}

// incidentData returns the data of an incident.* event about in.
func incidentData(in *holdfast.Incident) IncidentData {
	d := IncidentData{
		ID: in.ID, Kind: string(in.Kind), Provider: in.Provider, Tenant: in.Tenant, OpenedAt: in.OpenedAt,
		Evidence: in.Evidence, Affected: in.Affected, Recovered: in.Recovered,
	}
	if !in.Open() {
		t := in.ResolvedAt
		d.ResolvedAt = &t
	}
	if in.Escalated() {
		t := in.EscalatedAt
		d.EscalatedAt = &t
	}
	return d
}

// EscalationEvents returns incident.escalated, created at now. The caller
// calls it once per incident: when a save first stores its EscalatedAt.
func EscalationEvents(in *holdfast.Incident, now time.Time) ([]holdfast.OutboxEvent, error) {
	return Outbox(NewEvent(IncidentEscalated, incidentData(in), now))
}

// IncidentEvents returns, created at now, incident.opened when opened is
// set, and incident.resolved when the incident is resolved.
func IncidentEvents(in *holdfast.Incident, opened bool, now time.Time) ([]holdfast.OutboxEvent, error) {
	d := incidentData(in)
	var evs []Event
	if opened {
		evs = append(evs, NewEvent(IncidentOpened, d, now))
	}
	if !in.Open() {
		evs = append(evs, NewEvent(IncidentResolved, d, now))
	}
	return Outbox(evs...)
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

// NoticeEvents returns notice.sent, created at now.
func NoticeEvents(d NoticeData, now time.Time) ([]holdfast.OutboxEvent, error) {
	if d.Inboxes == nil {
		d.Inboxes = []NoticeInboxData{}
	}
	return Outbox(NewEvent(NoticeSent, d, now))
}

// orEmpty returns l, or an empty list for nil, so that it encodes as [].
func orEmpty(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// SendQueue makes a stored send go out at its SendAt: jobs.Runner enqueues
// a durable send job. If Enqueue fails, the periodic sweep enqueues the
// send later.
type SendQueue interface {
	Enqueue(ctx context.Context, s *holdfast.Send) error
}

// The limits of a send request.
const (
	maxRecipients     = 100
	maxSubjectLen     = 998
	maxBodyText       = 512 << 10
	maxIdempotencyKey = 200
	// maxSendAhead is how far ahead send_at may be.
	maxSendAhead = 366 * 24 * time.Hour
)

// sendRequest asks to send one email from an inbox.
type sendRequest struct {
	To             []string `json:"to"`
	Cc             []string `json:"cc"`
	Bcc            []string `json:"bcc"`
	Subject        string   `json:"subject"`
	Text           string   `json:"text"`
	HTML           string   `json:"html"`
	SendAt         string   `json:"send_at"`
	IdempotencyKey string   `json:"idempotency_key"`
}

// maxLen implements longText: a send's text and HTML bodies may be long.
func (req *sendRequest) maxLen(path string) int {
	if path == "text" || path == "html" {
		return maxBodyText
	}
	return holdfast.MaxText
}

// valid checks the request and returns the send it describes, without
// IDs, inbox or Message-ID.
func (req *sendRequest) valid(now time.Time) (*holdfast.Send, error) {
	snd := &holdfast.Send{Subject: req.Subject, Text: req.Text, HTML: req.HTML, SendAt: now}
	total := 0
	for _, l := range []struct {
		field string
		in    []string
		out   *[]string
	}{{"to", req.To, &snd.To}, {"cc", req.Cc, &snd.Cc}, {"bcc", req.Bcc, &snd.Bcc}} {
		for i, a := range l.in {
			a = strings.TrimSpace(a)
			field := fmt.Sprintf("%s[%d]", l.field, i)
			if a == "" {
				return nil, holdfast.Invalidf(field, "is empty")
			}
			if len(a) > 320 {
				return nil, holdfast.Invalidf(field, "is longer than 320 characters")
			}
			if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "\r\n") {
				return nil, holdfast.Invalidf(field, "%q is not an email address", a)
			}
			*l.out = append(*l.out, a)
		}
		total += len(l.in)
	}
	switch {
	case total == 0:
		return nil, holdfast.Invalidf("to", "at least one recipient is required in to, cc or bcc")
	case total > maxRecipients:
		return nil, holdfast.Invalidf("to", "at most %d recipients in to, cc and bcc together", maxRecipients)
	case strings.ContainsAny(req.Subject, "\r\n"):
		return nil, holdfast.Invalidf("subject", "must be one line")
	case len(req.Subject) > maxSubjectLen:
		return nil, holdfast.Invalidf("subject", "is longer than %d bytes", maxSubjectLen)
	case req.Text == "" && req.HTML == "":
		return nil, holdfast.Invalidf("text", "text or html is required")
	case len(req.Text) > maxBodyText:
		return nil, holdfast.Invalidf("text", "is longer than %d bytes", maxBodyText)
	case len(req.HTML) > maxBodyText:
		return nil, holdfast.Invalidf("html", "is longer than %d bytes", maxBodyText)
	case len(req.IdempotencyKey) > maxIdempotencyKey:
		return nil, holdfast.Invalidf("idempotency_key", "is longer than %d characters", maxIdempotencyKey)
	}
	snd.IdempotencyKey = req.IdempotencyKey
	if req.SendAt != "" {
		at, err := time.Parse(time.RFC3339Nano, req.SendAt)
		if err != nil {
			return nil, holdfast.Invalidf("send_at", "%q is not an RFC 3339 time such as 2026-12-01T09:00:00Z", req.SendAt)
		}
		if at.After(now.Add(maxSendAhead)) {
			return nil, holdfast.Invalidf("send_at", "is more than a year ahead")
		}
		if at.After(now) {
			snd.SendAt = at.UTC().Truncate(holdfast.StoreTimePrecision)
		}
	}
	return snd, nil
}

// sendJSON is a send as the API shows it. The body is not shown again.
type sendJSON struct {
	ID             string             `json:"id"`
	InboxID        string             `json:"inbox_id"`
	State          holdfast.SendState `json:"state"`
	Reason         string             `json:"reason"`
	MessageID      string             `json:"message_id"`
	To             []string           `json:"to"`
	Cc             []string           `json:"cc"`
	Bcc            []string           `json:"bcc"`
	Subject        string             `json:"subject"`
	SendAt         time.Time          `json:"send_at"`
	IdempotencyKey string             `json:"idempotency_key"`
	Attempts       int                `json:"attempts"`
	CreatedAt      time.Time          `json:"created_at"`
	UpdatedAt      time.Time          `json:"updated_at"`
	SentAt         *time.Time         `json:"sent_at"`
}

func toSendJSON(s *holdfast.Send) sendJSON {
	out := sendJSON{
		ID: s.ID, InboxID: s.InboxID, State: s.State, Reason: string(s.Reason), MessageID: s.MessageID,
		To: orEmpty(s.To), Cc: orEmpty(s.Cc), Bcc: orEmpty(s.Bcc), Subject: s.Subject,
		SendAt: s.SendAt, IdempotencyKey: s.IdempotencyKey, Attempts: s.Attempts,
		CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	if !s.SentAt.IsZero() {
		t := s.SentAt
		out.SentAt = &t
	}
	return out
}

// handleCreateSend accepts an email to send from an inbox, now or at
// send_at: POST /v1/inboxes/{id}/send. It answers 202 with the send; a
// request with an idempotency key the inbox has seen answers the send made
// then.
func (s *server) handleCreateSend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := inboxID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		req, err := decode[sendRequest](r, w, s.cfg.MaxBodyBytes)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		now := s.cfg.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
		snd, err := req.valid(now)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		in, err := s.cfg.Store.Inbox(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		snd.ID = holdfast.NewID("snd", now)
		snd.InboxID = id
		snd.MessageID = "<" + snd.ID + "@" + in.Email[strings.LastIndexByte(in.Email, '@')+1:] + ">"
		snd.State = holdfast.SendScheduled
		snd.CreatedAt, snd.UpdatedAt = now, now
		stored, existing, err := s.cfg.Store.CreateSend(r.Context(), snd)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if s.cfg.Sends != nil && (stored.State == holdfast.SendScheduled || stored.State == holdfast.SendHeld) {
			// Enqueuing twice is harmless: the job is unique per send.
			if err := s.cfg.Sends.Enqueue(r.Context(), stored); err != nil {
				// Stored all the same: the sweep enqueues it when due.
				s.log.ErrorContext(r.Context(), "enqueue send", "send_id", stored.ID, "err", err)
			}
		}
		if !existing {
			s.log.InfoContext(r.Context(), "send accepted", "inbox_id", id, "send_id", stored.ID, "send_at", stored.SendAt)
		}
		w.Header().Set("Location", "/v1/sends/"+stored.ID)
		encode(w, http.StatusAccepted, toSendJSON(stored))
	})
}

// sendID reads and checks the {id} path value of a send route.
func sendID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !holdfast.ValidID("snd", id) {
		return "", holdfast.ErrNotFound
	}
	return id, nil
}

// handleGetSend answers one send: GET /v1/sends/{id}.
func (s *server) handleGetSend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := sendID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		snd, err := s.cfg.Store.SendByID(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		encode(w, http.StatusOK, toSendJSON(snd))
	})
}

// handleCancelSend cancels a send that is not sending yet: DELETE
// /v1/sends/{id}. It answers 200 with the cancelled send, and 409 once the
// send is sending, sent or failed.
func (s *server) handleCancelSend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := sendID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		for range 3 { // a concurrent move between scheduled and held is retried
			snd, err := s.cfg.Store.SendByID(r.Context(), id)
			if err != nil {
				s.respondErr(w, r, err)
				return
			}
			switch snd.State {
			case holdfast.SendCancelled:
				encode(w, http.StatusOK, toSendJSON(snd))
				return
			case holdfast.SendScheduled, holdfast.SendHeld:
			default:
				s.respondErr(w, r, &conflictError{msg: fmt.Sprintf("the send is %s and can no longer be cancelled", snd.State)})
				return
			}
			now := s.cfg.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
			out, err := s.cfg.Store.ChangeSend(r.Context(), id, holdfast.SendChange{
				From: snd.State, To: holdfast.SendCancelled, Reason: holdfast.SendReasonCancelled, At: now,
			})
			if errors.Is(err, holdfast.ErrConflict) {
				continue
			}
			if err != nil {
				s.respondErr(w, r, err)
				return
			}
			s.log.InfoContext(r.Context(), "send cancelled", "send_id", id)
			encode(w, http.StatusOK, toSendJSON(out))
			return
		}
		s.respondErr(w, r, &conflictError{msg: "the send changed state while being cancelled; try again"})
	})
}

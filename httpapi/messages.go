package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// Syncer is the sync scheduler as the API drives it: it learns of created
// and deleted inboxes, and runs a sync at once when asked.
// syncer.Syncer implements it.
type Syncer interface {
	Add(in *holdfast.Inbox)
	Remove(id string)
	// Now asks for a sync of the inbox at once; it returns an error
	// (syncer.ErrNotScheduled) for an inbox it does not sync.
	Now(id string) error
}

// messageJSON is a synced message as the API shows it.
type messageJSON struct {
	ID                string    `json:"id"`
	InternetMessageID string    `json:"internet_message_id"`
	From              string    `json:"from"`
	To                []string  `json:"to"`
	Cc                []string  `json:"cc"`
	Subject           string    `json:"subject"`
	ReceivedAt        time.Time `json:"received_at"`
	Snippet           string    `json:"snippet"`
	Flags             []string  `json:"flags"`
}

func toMessageJSON(m *holdfast.Message) messageJSON {
	return messageJSON{
		ID: m.ID, InternetMessageID: m.InternetMessageID, From: m.From,
		To: orEmpty(m.To), Cc: orEmpty(m.Cc), Subject: m.Subject,
		ReceivedAt: m.ReceivedAt, Snippet: m.Snippet, Flags: orEmpty(m.Flags),
	}
}

// orEmpty returns s, or an empty slice for nil, so that JSON shows [].
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// messageCursor encodes the position after message m: its received time
// and ID, opaque to clients.
func messageCursor(m *holdfast.Message) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d.%s", m.ReceivedAt.UnixMicro(), m.ID))
}

// parseMessageCursor reads a cursor made by messageCursor.
func parseMessageCursor(c string) (time.Time, string, error) {
	bad := holdfast.Invalidf("cursor", "is not a cursor this API gave out")
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return time.Time{}, "", bad
	}
	us, id, ok := strings.Cut(string(raw), ".")
	n, err := strconv.ParseInt(us, 10, 64)
	if !ok || err != nil || !holdfast.ValidID("msg", id) {
		return time.Time{}, "", bad
	}
	return time.UnixMicro(n).UTC(), id, nil
}

// handleListMessages answers a page of an inbox's synced messages, newest
// first: GET /v1/inboxes/{id}/messages?cursor=&limit=.
func (s *server) handleListMessages() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := inboxID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		var f holdfast.MessageFilter
		if v := r.URL.Query().Get("cursor"); v != "" {
			if f.BeforeTime, f.BeforeID, err = parseMessageCursor(v); err != nil {
				s.respondErr(w, r, err)
				return
			}
		}
		limit, err := pageLimit(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if _, err := s.cfg.Store.Inbox(r.Context(), id); err != nil {
			s.respondErr(w, r, err)
			return
		}
		f.Limit = limit + 1
		msgs, err := s.cfg.Store.Messages(r.Context(), id, f)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		out := listJSON[messageJSON]{Data: make([]messageJSON, 0, min(len(msgs), limit))}
		for i, m := range msgs {
			if i == limit {
				out.NextCursor = messageCursor(msgs[limit-1])
				break
			}
			out.Data = append(out.Data, toMessageJSON(m))
		}
		encode(w, http.StatusOK, out)
	})
}

// handleGetMessage answers one synced message:
// GET /v1/inboxes/{id}/messages/{mid}.
func (s *server) handleGetMessage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := inboxID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		mid := r.PathValue("mid")
		if !holdfast.ValidID("msg", mid) {
			s.respondErr(w, r, holdfast.ErrNotFound)
			return
		}
		m, err := s.cfg.Store.Message(r.Context(), id, mid)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		encode(w, http.StatusOK, toMessageJSON(m))
	})
}

// handleSyncNow asks for an inbox's sync at once: POST
// /v1/inboxes/{id}/sync. It answers 202 with the inbox; the health engine
// may still hold the sync back (a paused inbox syncs when its incident
// ends).
func (s *server) handleSyncNow() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := inboxID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		in, err := s.cfg.Store.Inbox(r.Context(), id)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if s.cfg.Syncer == nil {
			s.respondErr(w, r, &conflictError{msg: "this server does not sync inboxes"})
			return
		}
		if err := s.cfg.Syncer.Now(id); err != nil {
			s.log.InfoContext(r.Context(), "sync now refused", "inbox_id", id, "err", err)
			s.respondErr(w, r, &conflictError{msg: fmt.Sprintf("inboxes of provider %s are not synced by this version of holdfast", in.Provider)})
			return
		}
		encode(w, http.StatusAccepted, toInboxJSON(in))
	})
}

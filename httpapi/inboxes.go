package httpapi

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
)

// inboxJSON is an inbox as the API shows it. It never carries credentials.
type inboxJSON struct {
	ID             string                  `json:"id"`
	Email          string                  `json:"email"`
	OwnerEmail     string                  `json:"owner_email"`
	Provider       holdfast.Provider       `json:"provider"`
	Tenant         string                  `json:"tenant"`
	State          holdfast.State          `json:"state"`
	ActionRequired holdfast.ActionRequired `json:"action_required"`
	Reason         string                  `json:"reason"`
	Message        string                  `json:"message"`
	Since          time.Time               `json:"since"`
	Username       string                  `json:"username,omitempty"`
	IMAP           *holdfast.ServerConfig  `json:"imap,omitempty"`
	SMTP           *holdfast.ServerConfig  `json:"smtp,omitempty"`
	CreatedAt      time.Time               `json:"created_at"`
	UpdatedAt      time.Time               `json:"updated_at"`
}

func toInboxJSON(in *holdfast.Inbox) inboxJSON {
	return inboxJSON{
		ID: in.ID, Email: in.Email, OwnerEmail: in.OwnerEmail, Provider: in.Provider, Tenant: in.Tenant,
		State: in.State, ActionRequired: in.ActionRequired(), Reason: in.Reason, Message: in.Message,
		Since: in.Since, Username: in.Username, IMAP: in.IMAP, SMTP: in.SMTP,
		CreatedAt: in.CreatedAt, UpdatedAt: in.UpdatedAt,
	}
}

// listJSON is one page of a list.
type listJSON[T any] struct {
	Data       []T    `json:"data"`
	NextCursor string `json:"next_cursor"`
}

// createInboxRequest connects an IMAP/SMTP inbox with a password, or a
// Microsoft or Google inbox by importing an existing grant.
type createInboxRequest struct {
	Provider     string                 `json:"provider"`
	Email        string                 `json:"email"`
	OwnerEmail   string                 `json:"owner_email"`
	Tenant       string                 `json:"tenant"`
	IMAP         *holdfast.ServerConfig `json:"imap"`
	SMTP         *holdfast.ServerConfig `json:"smtp"`
	Username     string                 `json:"username"`
	Password     string                 `json:"password"`
	RefreshToken string                 `json:"refresh_token"`
}

// maxLen implements longText: a refresh token may be long.
func (req *createInboxRequest) maxLen(path string) int {
	if path == "refresh_token" {
		return maxRefreshToken
	}
	return holdfast.MaxText
}

// maxRefreshToken is the longest refresh token an inbox is created with.
const maxRefreshToken = 8192

// valid checks the request and returns the inbox it describes, without ID
// or credentials.
func (req *createInboxRequest) valid() (*holdfast.Inbox, error) {
	p, err := holdfast.ParseProvider(req.Provider)
	if req.Provider == "" {
		return nil, holdfast.Invalidf("provider", "is required (microsoft, google or imap)")
	}
	if err != nil {
		return nil, holdfast.Invalidf("provider", "%v", err)
	}
	email, err := validEmail(req.Email)
	if err != nil {
		return nil, err
	}
	owner, err := validOwnerEmail(req.OwnerEmail)
	if err != nil {
		return nil, err
	}
	if len(req.Tenant) > 200 {
		return nil, holdfast.Invalidf("tenant", "is longer than 200 characters")
	}
	in := &holdfast.Inbox{Email: email, OwnerEmail: owner, Provider: p, Tenant: strings.TrimSpace(req.Tenant)}
	switch p {
	case holdfast.ProviderIMAP:
		if err := validServer("imap", req.IMAP); err != nil {
			return nil, err
		}
		if err := validServer("smtp", req.SMTP); err != nil {
			return nil, err
		}
		if req.Password == "" {
			return nil, holdfast.Invalidf("password", "is required for provider imap")
		}
		if len(req.Password) > 1024 {
			return nil, holdfast.Invalidf("password", "is longer than 1024 bytes")
		}
		if req.RefreshToken != "" {
			return nil, holdfast.Invalidf("refresh_token", "is not used with provider imap; give a password")
		}
		in.Username = strings.TrimSpace(req.Username)
		if in.Username == "" {
			in.Username = email
		}
		if len(in.Username) > 320 {
			return nil, holdfast.Invalidf("username", "is longer than 320 characters")
		}
		imapCfg, smtpCfg := *req.IMAP, *req.SMTP
		imapCfg.Host, smtpCfg.Host = strings.ToLower(imapCfg.Host), strings.ToLower(smtpCfg.Host)
		in.IMAP, in.SMTP = &imapCfg, &smtpCfg
		if in.Tenant == "" {
			in.Tenant = imapCfg.Host // one mail server shares fate
		}
	default:
		switch {
		case req.RefreshToken == "":
			return nil, holdfast.Invalidf("refresh_token", "is required for provider %s", p)
		case len(req.RefreshToken) > maxRefreshToken:
			return nil, holdfast.Invalidf("refresh_token", "is longer than %d bytes", maxRefreshToken)
		case req.Password != "":
			return nil, holdfast.Invalidf("password", "is not used with provider %s; give a refresh_token", p)
		case req.IMAP != nil:
			return nil, holdfast.Invalidf("imap", "is not used with provider %s", p)
		case req.SMTP != nil:
			return nil, holdfast.Invalidf("smtp", "is not used with provider %s", p)
		case req.Username != "":
			return nil, holdfast.Invalidf("username", "is not used with provider %s", p)
		}
		if in.Tenant == "" {
			in.Tenant = email[strings.LastIndexByte(email, '@')+1:]
		}
	}
	return in, nil
}

// validEmail checks a bare address such as a@example.org and returns it
// trimmed, with its domain in lower case.
func validEmail(s string) (string, error) {
	return validAddress("email", s)
}

// validOwnerEmail checks an optional owner address as validEmail does
// an inbox's; empty (or blank) means none and returns "".
func validOwnerEmail(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	return validAddress("owner_email", s)
}

// validAddress checks the bare address s of field and returns it trimmed,
// with its domain in lower case.
func validAddress(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", holdfast.Invalidf(field, "is required")
	}
	if len(s) > 254 {
		return "", holdfast.Invalidf(field, "is longer than 254 characters")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "", holdfast.Invalidf(field, "%q is not a plain address like name@example.org", s)
	}
	at := strings.LastIndexByte(s, '@')
	return s[:at] + "@" + strings.ToLower(s[at+1:]), nil
}

// validServer checks the server settings in field.
func validServer(field string, c *holdfast.ServerConfig) error {
	if c == nil {
		return holdfast.Invalidf(field, "is required for provider imap")
	}
	host := strings.TrimSpace(c.Host)
	switch {
	case host == "":
		return holdfast.Invalidf(field+".host", "is required")
	case len(host) > 253 || strings.ContainsAny(host, "/ \t@") ||
		(strings.Contains(host, ":") && net.ParseIP(host) == nil):
		return holdfast.Invalidf(field+".host", "%q is not a host name or IP address", c.Host)
	case c.Port < 1 || c.Port > 65535:
		return holdfast.Invalidf(field+".port", "must be between 1 and 65535")
	case c.Security == "":
		return holdfast.Invalidf(field+".security", "is required (tls, starttls or none)")
	case !c.Security.Valid():
		return holdfast.Invalidf(field+".security", "%q is not tls, starttls or none", c.Security)
	}
	c.Host = host
	return nil
}

// checkMailHosts refuses an inbox whose IMAP or SMTP host is, or resolves
// to, an internal address (Config.MailHosts), naming the field. The
// message never says what a name resolves to.
func (s *server) checkMailHosts(ctx context.Context, in *holdfast.Inbox) error {
	for _, f := range []struct {
		field  string
		server *holdfast.ServerConfig
	}{{"imap.host", in.IMAP}, {"smtp.host", in.SMTP}} {
		if f.server == nil {
			continue
		}
		if err := s.cfg.MailHosts.CheckHost(ctx, f.server.Host); err != nil {
			return holdfast.Invalidf(f.field, "%s is refused: holdfast does not connect to internal addresses "+
				"unless its operator allows them (--allow-private-mail-hosts)", f.server.Host)
		}
	}
	return nil
}

// handleCreateInbox connects an inbox: POST /v1/inboxes.
func (s *server) handleCreateInbox() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := decode[createInboxRequest](r, w, s.cfg.MaxBodyBytes)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		in, err := req.valid()
		if err == nil {
			err = s.checkMailHosts(r.Context(), in)
		}
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		now := s.cfg.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
		in.ID = holdfast.NewID("inb", now)
		in.Credentials, err = s.cfg.SealCredentials(in.ID, Credentials{Password: req.Password, RefreshToken: req.RefreshToken})
		if err != nil {
			s.respondErr(w, r, fmt.Errorf("seal credentials for inbox %s: %w", in.ID, err))
			return
		}
		in.State, in.Reason, in.Message = holdfast.StateConnecting, "created", holdfast.DefaultMessage(holdfast.StateConnecting)
		in.Since, in.CreatedAt, in.UpdatedAt = now, now, now
		ev := holdfast.Event{
			InboxID: in.ID, At: now, NewState: in.State,
			Reason: in.Reason, Message: "Inbox connected through the API.", Cause: holdfast.CauseAPI,
		}
		if err := s.cfg.Store.CreateInbox(r.Context(), in, ev); err != nil {
			if isConflict(err) {
				err = &conflictError{msg: fmt.Sprintf("an inbox for %s on %s is already connected", in.Email, in.Provider)}
			}
			s.respondErr(w, r, err)
			return
		}
		if err := s.cfg.Health.AddInbox(in); err != nil {
			// Stored all the same: the engine picks it up at its next start.
			s.log.ErrorContext(r.Context(), "register inbox with the health engine", "inbox_id", in.ID, "err", err)
		}
		if s.cfg.Syncer != nil {
			s.cfg.Syncer.Add(in)
		}
		s.log.InfoContext(r.Context(), "inbox connected", "inbox_id", in.ID, "provider", in.Provider, "tenant", in.Tenant)
		w.Header().Set("Location", "/v1/inboxes/"+in.ID)
		encode(w, http.StatusCreated, toInboxJSON(in))
	})
}

// inboxID reads and checks the {id} path value. An ID of the wrong shape
// cannot exist, so it is answered as not found.
func inboxID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if !holdfast.ValidID("inb", id) {
		return "", holdfast.ErrNotFound
	}
	return id, nil
}

// handleGetInbox answers one inbox: GET /v1/inboxes/{id}.
func (s *server) handleGetInbox() http.Handler {
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
		encode(w, http.StatusOK, toInboxJSON(in))
	})
}

// updateInboxRequest changes an inbox: PATCH /v1/inboxes/{id}. Only
// owner_email can change; it is required, and "" clears it.
type updateInboxRequest struct {
	OwnerEmail *string `json:"owner_email"`
}

// handleUpdateInbox changes an inbox's owner address: PATCH
// /v1/inboxes/{id} {"owner_email": "..."}; an empty string clears it, so
// that the inbox's own email is its owner again.
func (s *server) handleUpdateInbox() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := inboxID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		req, err := decode[updateInboxRequest](r, w, s.cfg.MaxBodyBytes)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if req.OwnerEmail == nil {
			s.respondErr(w, r, holdfast.Invalidf("owner_email", "is required (\"\" clears it)"))
			return
		}
		owner, err := validOwnerEmail(*req.OwnerEmail)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		in, err := s.cfg.Store.SetOwnerEmail(r.Context(), id, owner)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		s.log.InfoContext(r.Context(), "inbox owner changed", "inbox_id", id, "has_owner", owner != "")
		encode(w, http.StatusOK, toInboxJSON(in))
	})
}

// handleDeleteInbox disconnects an inbox and forgets its credentials:
// DELETE /v1/inboxes/{id}. Its event log is kept.
func (s *server) handleDeleteInbox() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := inboxID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		ev := holdfast.Event{
			InboxID: id, At: s.cfg.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision),
			Reason: "deleted", Message: "Inbox deleted through the API.", Cause: holdfast.CauseAPI,
		}
		if err := s.cfg.Store.DeleteInbox(r.Context(), id, ev); err != nil {
			s.respondErr(w, r, err)
			return
		}
		s.cfg.Health.RemoveInbox(id)
		if s.cfg.Syncer != nil {
			s.cfg.Syncer.Remove(id)
		}
		s.log.InfoContext(r.Context(), "inbox deleted", "inbox_id", id)
		w.WriteHeader(http.StatusNoContent)
	})
}

// pageLimit reads the limit query parameter: 1 to 1000, default 50.
func pageLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 1000 {
		return 0, holdfast.Invalidf("limit", "must be a whole number from 1 to 1000")
	}
	return n, nil
}

// handleListInboxes answers a page of inboxes in a stable order:
// GET /v1/inboxes?state=&provider=&cursor=&limit=.
func (s *server) handleListInboxes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var f holdfast.InboxFilter
		if v := q.Get("state"); v != "" {
			st, err := holdfast.ParseState(v)
			if err != nil {
				s.respondErr(w, r, holdfast.Invalidf("state", "%v", err))
				return
			}
			f.State = st
		}
		if v := q.Get("provider"); v != "" {
			p, err := holdfast.ParseProvider(v)
			if err != nil {
				s.respondErr(w, r, holdfast.Invalidf("provider", "%v", err))
				return
			}
			f.Provider = p
		}
		if v := q.Get("cursor"); v != "" {
			if !holdfast.ValidID("inb", v) {
				s.respondErr(w, r, holdfast.Invalidf("cursor", "is not a cursor this API gave out"))
				return
			}
			f.After = v
		}
		limit, err := pageLimit(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		f.Limit = limit + 1 // one more tells whether a next page exists
		ins, err := s.cfg.Store.Inboxes(r.Context(), f)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		out := listJSON[inboxJSON]{Data: make([]inboxJSON, 0, min(len(ins), limit))}
		for i, in := range ins {
			if i == limit {
				out.NextCursor = ins[limit-1].ID
				break
			}
			out.Data = append(out.Data, toInboxJSON(in))
		}
		encode(w, http.StatusOK, out)
	})
}

// eventJSON is one entry of an inbox's event log.
type eventJSON struct {
	ID       int64          `json:"id"`
	At       time.Time      `json:"at"`
	OldState holdfast.State `json:"old_state"`
	NewState holdfast.State `json:"new_state"`
	Reason   string         `json:"reason"`
	Message  string         `json:"message"`
	Cause    holdfast.Cause `json:"cause"`
}

// handleListEvents answers a page of an inbox's state history, newest
// first: GET /v1/inboxes/{id}/events?cursor=&limit=.
func (s *server) handleListEvents() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := inboxID(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		if _, err := s.cfg.Store.Inbox(r.Context(), id); err != nil {
			s.respondErr(w, r, err)
			return
		}
		var f holdfast.EventFilter
		if v := r.URL.Query().Get("cursor"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				s.respondErr(w, r, holdfast.Invalidf("cursor", "is not a cursor this API gave out"))
				return
			}
			f.Before = n
		}
		limit, err := pageLimit(r)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		f.Limit = limit + 1
		evs, err := s.cfg.Store.Events(r.Context(), id, f)
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		out := listJSON[eventJSON]{Data: make([]eventJSON, 0, min(len(evs), limit))}
		for i, e := range evs {
			if i == limit {
				out.NextCursor = strconv.FormatInt(evs[limit-1].ID, 10)
				break
			}
			out.Data = append(out.Data, eventJSON{
				ID: e.ID, At: e.At, OldState: e.OldState, NewState: e.NewState,
				Reason: e.Reason, Message: e.Message, Cause: e.Cause,
			})
		}
		encode(w, http.StatusOK, out)
	})
}

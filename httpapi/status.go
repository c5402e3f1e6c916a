package httpapi

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/notify"
)

//go:embed templates/status.html.tmpl
var statusFS embed.FS

var statusTemplate = template.Must(template.ParseFS(statusFS, "templates/status.html.tmpl"))

// StatusConfig serves the owners' status page, GET /status/{token}: no
// API key, the signed token in the path is the authentication.
type StatusConfig struct {
	// Links verifies the tokens and makes the per-form tokens. Required.
	Links *notify.Links
	// ReconnectURL, if set, is where the reconnect button of a Microsoft
	// or Google inbox sends the owner when the consent flow is not served
	// here (Config.Connect without that provider): the host application's
	// page that starts it. "{provider}", "{email}" and "{inbox_id}"
	// in it are replaced, query-escaped. Without it the page tells the
	// owner to reconnect from the application they connected the inbox
	// with.
	ReconnectURL string
	// Reconnected, if set, is told that an owner entered a new IMAP
	// password (*monitor.Monitor's Reconnected, which moves the inbox
	// back through the health engine). Without it the store moves the
	// inbox to connecting.
	Reconnected func(ctx context.Context, inboxID string) error
	// Verify, if set, checks a password an owner entered against the
	// inbox's mail servers (the IMAP connector's Verify) before it is
	// stored: a password that does not work is shown as such on the page
	// and changes nothing. Without it the password is stored unchecked.
	Verify func(ctx context.Context, in *holdfast.Inbox, password string) error
}

// statusVerifyTimeout bounds the check of a password entered on the status
// page, so the owner's browser gets an answer.
const statusVerifyTimeout = 45 * time.Second

// statusInbox is one inbox as the status page shows it.
type statusInbox struct {
	ID       string
	Email    string
	Provider string
	// Kind is "ok", "checking", "paused", "reconnect" or "admin".
	Kind    string
	Message string
	// Incident describes the provider incident covering the inbox.
	Incident string
	// OAuth inboxes get a reconnect button, IMAP ones a password form.
	OAuth        bool
	CanReconnect bool
	FormToken    string
}

// statusPage is what templates/status.html.tmpl sees.
type statusPage struct {
	Expired bool
	Token   string
	Email   string
	Inboxes []statusInbox
	Notice  string
	Error   string
}

// providerName is a provider as owners know it.
func providerName(p holdfast.Provider) string {
	switch p {
	case holdfast.ProviderMicrosoft:
		return "Microsoft"
	case holdfast.ProviderGoogle:
		return "Google"
	}
	return "your mail server"
}

// owner verifies the request's token and returns the owner's email, or
// writes the expired page.
func (s *server) owner(w http.ResponseWriter, r *http.Request) (token, email string, ok bool) {
	token = r.PathValue("token")
	email, err := s.cfg.Status.Links.Verify(token, s.cfg.Clock.Now())
	if err != nil {
		renderStatus(w, http.StatusNotFound, statusPage{Expired: true})
		return "", "", false
	}
	return token, email, true
}

// ownerInboxes returns the live state of every inbox of the owner email:
// those whose owner address it is, and those without one whose own email
// it is (see Store.InboxesByOwner), by provider.
func (s *server) ownerInboxes(ctx context.Context, token, email string) ([]statusInbox, error) {
	open, err := s.cfg.Store.Incidents(ctx, true, 1000)
	if err != nil {
		return nil, err
	}
	// Only an outage lets the page say "nothing is needed, it resumes by
	// itself": not a tenant event under verification, nor a notice storm.
	open = slices.DeleteFunc(open, func(in *holdfast.Incident) bool { return !in.Kind.Effects().NothingToDo })
	ins, err := s.cfg.Store.InboxesByOwner(ctx, email)
	if err != nil {
		return nil, err
	}
	// The owner knows their inboxes by provider first.
	slices.SortStableFunc(ins, func(a, b *holdfast.Inbox) int {
		return slices.Index(holdfast.Providers, a.Provider) - slices.Index(holdfast.Providers, b.Provider)
	})
	var out []statusInbox
	for _, in := range ins {
		v := statusInbox{ID: in.ID, Email: in.Email, Provider: providerName(in.Provider), Message: in.Message,
			OAuth: in.Provider != holdfast.ProviderIMAP}
		if v.Message == "" {
			v.Message = holdfast.DefaultMessage(in.State)
		}
		inc := holdfast.Covering(open, in, in.State == holdfast.StateNeedsAdmin)
		switch {
		case in.State == holdfast.StatePaused || (inc != nil && in.ActionRequired() != holdfast.RequireNone):
			v.Kind, v.Message = "paused", holdfast.DefaultMessage(holdfast.StatePaused)
		case in.State == holdfast.StateNeedsReconnect:
			v.Kind = "reconnect"
			action := "imap"
			if v.OAuth {
				action = "reconnect"
			}
			v.CanReconnect = !v.OAuth || s.cfg.Status.ReconnectURL != "" || s.consentProvider(in.Provider) != nil
			v.FormToken = s.cfg.Status.Links.FormToken(token, in.ID, action)
		case in.State == holdfast.StateNeedsAdmin:
			v.Kind = "admin"
		case in.State == holdfast.StateConnected:
			v.Kind = "ok"
		default:
			v.Kind = "checking"
		}
		if inc != nil {
			v.Incident = "It started on " + inc.OpenedAt.UTC().Format("2 January 2006 at 15:04") + " UTC."
		}
		out = append(out, v)
	}
	return out, nil
}

// handleStatus serves GET /status/{token}.
func (s *server) handleStatus() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, email, ok := s.owner(w, r)
		if !ok {
			return
		}
		page := statusPage{Token: token, Email: email}
		switch r.URL.Query().Get("done") {
		case "imap":
			page.Notice = "Thank you: holdfast is checking the new password now."
		case "verified":
			page.Notice = "Thank you: the new password works, and holdfast is resuming the inbox now."
		case "bad":
			page.Error = "That form has expired; please try again."
		}
		s.renderOwner(w, r, http.StatusOK, page)
	})
}

func (s *server) renderOwner(w http.ResponseWriter, r *http.Request, status int, page statusPage) {
	inboxes, err := s.ownerInboxes(r.Context(), page.Token, page.Email)
	if err != nil {
		s.log.ErrorContext(r.Context(), "status page", "err", err)
		http.Error(w, "Something went wrong; please try again in a minute.", http.StatusInternalServerError)
		return
	}
	page.Inboxes = inboxes
	renderStatus(w, status, page)
}

// ownerForm checks a status page form: the token, that its fields are
// text, that the inbox is the owner's, and the per-form token. It returns
// the page for the token and the inbox, or writes the answer itself.
func (s *server) ownerForm(w http.ResponseWriter, r *http.Request, action string) (statusPage, *holdfast.Inbox, bool) {
	token, email, ok := s.owner(w, r)
	if !ok {
		return statusPage{}, nil, false
	}
	page := statusPage{Token: token, Email: email}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err == nil {
		if err := holdfast.CheckValues(r.Form, holdfast.MaxText); err != nil {
			page.Error = "That form could not be used: " + err.Error()
			s.renderOwner(w, r, http.StatusBadRequest, page)
			return statusPage{}, nil, false
		}
	}
	id := r.PathValue("inbox_id")
	in, err := s.cfg.Store.Inbox(r.Context(), id)
	if err != nil || !strings.EqualFold(in.Owner(), email) || r.ParseForm() != nil ||
		!s.cfg.Status.Links.CheckFormToken(r.PostForm.Get("form_token"), token, id, action) {
		http.Redirect(w, r, "/status/"+token+"?done=bad", http.StatusSeeOther)
		return statusPage{}, nil, false
	}
	return page, in, true
}

// handleStatusReconnect serves POST /status/{token}/reconnect/{inbox_id}:
// it sends the owner of a Microsoft or Google inbox on to ReconnectURL.
func (s *server) handleStatusReconnect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, in, ok := s.ownerForm(w, r, "reconnect")
		if !ok {
			return
		}
		token := page.Token
		if op := s.consentProvider(in.Provider); op != nil {
			u, err := s.startConsent(r.Context(), in, op, s.cfg.Status.Links.PublicURL+"/status/"+token)
			if err != nil {
				s.log.ErrorContext(r.Context(), "status page: start consent flow", "inbox_id", in.ID, "err", err)
				http.Error(w, "Something went wrong; please try again in a minute.", http.StatusInternalServerError)
				return
			}
			http.Redirect(w, r, u, http.StatusSeeOther)
			return
		}
		if in.Provider == holdfast.ProviderIMAP || s.cfg.Status.ReconnectURL == "" {
			http.Redirect(w, r, "/status/"+token+"?done=bad", http.StatusSeeOther)
			return
		}
		u := strings.NewReplacer(
			"{provider}", url.QueryEscape(string(in.Provider)),
			"{email}", url.QueryEscape(in.Email),
			"{inbox_id}", url.QueryEscape(in.ID),
		).Replace(s.cfg.Status.ReconnectURL)
		http.Redirect(w, r, u, http.StatusSeeOther)
	})
}

// consentProvider returns the consent flow's side of provider p, or nil
// when the flow is not served for it.
func (s *server) consentProvider(p holdfast.Provider) OAuthProvider {
	if s.cfg.Connect == nil {
		return nil
	}
	return s.cfg.Connect.Providers[p]
}

// startConsent starts the consent flow (as GET /v1/connect/{provider}
// does) for the owner of inbox in, coming back to redirect, and returns
// the provider's authorization URL.
func (s *server) startConsent(ctx context.Context, in *holdfast.Inbox, op OAuthProvider, redirect string) (string, error) {
	state, verifier := randomToken(), oauth2.GenerateVerifier()
	now := s.cfg.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
	life := s.cfg.Connect.StateLifetime
	if life <= 0 {
		life = DefaultStateLifetime
	}
	st := &holdfast.OAuthState{
		Hash: stateHash(state), Provider: in.Provider, Email: in.Email, Verifier: verifier,
		RedirectURI: redirect, CreatedAt: now, ExpiresAt: now.Add(life),
	}
	if err := s.cfg.Store.SaveOAuthState(ctx, st); err != nil {
		return "", fmt.Errorf("start %s consent flow: %w", in.Provider, err)
	}
	return withQuery(op.AuthCodeURL(state, verifier), url.Values{"login_hint": {in.Email}})
}

// handleStatusIMAP serves POST /status/{token}/imap/{inbox_id}: a new
// password for an IMAP inbox, sealed and stored; the inbox goes back
// through the health engine and is synced at once.
func (s *server) handleStatusIMAP() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, in, ok := s.ownerForm(w, r, "imap")
		if !ok {
			return
		}
		token := page.Token
		pw := r.PostForm.Get("password")
		if in.Provider != holdfast.ProviderIMAP || pw == "" || len(pw) > 1024 {
			http.Redirect(w, r, "/status/"+token+"?done=bad", http.StatusSeeOther)
			return
		}
		done := "imap"
		if s.cfg.Status.Verify != nil {
			if page.Error = s.statusVerify(r.Context(), in, pw); page.Error != "" {
				s.renderOwner(w, r, http.StatusBadRequest, page)
				return
			}
			done = "verified"
		}
		if err := s.statusSetPassword(r.Context(), in, pw); err != nil {
			s.log.ErrorContext(r.Context(), "status page: new IMAP password", "inbox_id", in.ID, "err", err)
			http.Error(w, "Something went wrong; please try again in a minute.", http.StatusInternalServerError)
			return
		}
		s.log.InfoContext(r.Context(), "owner entered a new IMAP password", "inbox_id", in.ID)
		http.Redirect(w, r, "/status/"+token+"?done="+done, http.StatusSeeOther)
	})
}

// statusVerify checks a password an owner entered (StatusConfig.Verify)
// and returns what to tell them when it does not work, or "". The error
// itself, which may name servers and addresses, goes to the log only.
func (s *server) statusVerify(ctx context.Context, in *holdfast.Inbox, pw string) string {
	ctx, cancel := context.WithTimeout(ctx, statusVerifyTimeout)
	defer cancel()
	err := s.cfg.Status.Verify(ctx, in, pw)
	if err == nil {
		return ""
	}
	s.log.InfoContext(ctx, "status page: new IMAP password does not work", "inbox_id", in.ID, "err", err)
	pe, _ := errors.AsType[*holdfast.ProviderError](err)
	var msg string
	switch {
	case holdfast.ClassOf(err) != holdfast.ClassPermanent:
		msg = "holdfast could not reach your mail server to check it; please try again in a few minutes."
	case pe.Action == holdfast.ActionReconnect:
		msg = "your mail server did not accept it."
	default:
		msg = "holdfast cannot use your mail server as it is set up."
	}
	if pe != nil && pe.UserMessage != "" {
		msg += " " + pe.UserMessage
	}
	return "That password was not saved: " + msg + " Nothing has changed."
}

func (s *server) statusSetPassword(ctx context.Context, in *holdfast.Inbox, pw string) error {
	sealed, err := s.cfg.SealCredentials(in.ID, Credentials{Password: pw})
	if err != nil {
		return fmt.Errorf("seal credentials for inbox %s: %w", in.ID, err)
	}
	if err := s.cfg.Store.SetCredentials(ctx, in.ID, sealed); err != nil {
		return err
	}
	if f := s.cfg.Status.Reconnected; f != nil {
		if err := f(ctx, in.ID); err != nil {
			return err
		}
	} else if _, err := s.cfg.Store.ChangeState(ctx, in.ID, holdfast.StateChange{
		From: in.State, To: holdfast.StateConnecting, Reason: "credentials_updated",
		Message: holdfast.DefaultMessage(holdfast.StateConnecting), Cause: holdfast.CauseAPI, At: s.cfg.Clock.Now(),
	}); err != nil && !errors.Is(err, holdfast.ErrConflict) {
		return err
	}
	if s.cfg.Syncer != nil {
		_ = s.cfg.Syncer.Now(in.ID) // an inbox without a connector is not synced
	}
	return nil
}

// renderStatus writes the page with headers that keep the token private:
// no referrer, no caching, no framing.
func renderStatus(w http.ResponseWriter, status int, page statusPage) {
	var buf bytes.Buffer
	if err := statusTemplate.Execute(&buf, page); err != nil {
		http.Error(w, "Something went wrong; please try again in a minute.", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'; base-uri 'none'")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

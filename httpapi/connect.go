package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/monitor"
	"github.com/holdfast/holdfast/provider/oauth"
)

// OAuthProvider is one provider's side of the consent flow.
// *oauth.Source implements it.
type OAuthProvider interface {
	// AuthCodeURL returns the provider's consent page URL for state, with
	// the PKCE S256 challenge of verifier.
	AuthCodeURL(state, verifier string) string
	// Exchange redeems an authorization code with its PKCE verifier and
	// returns the refresh token; inboxID names the inbox in errors.
	Exchange(ctx context.Context, inboxID, code, verifier string) (string, error)
}

var _ OAuthProvider = (*oauth.Source)(nil)

// AccountReader tells which mailbox a grant signs in to.
// *graph.Connector and *gmail.Connector implement it.
type AccountReader interface {
	// Account returns the address of the mailbox the session's refresh
	// token signs in to. A rotated refresh token is set in
	// s.RefreshToken. Errors are *holdfast.ProviderError values.
	Account(ctx context.Context, s *holdfast.Session) (email string, err error)
}

// Reconnector is told when an existing inbox is connected again with new
// credentials. *monitor.Monitor implements it.
type Reconnector interface {
	// Reconnected moves the inbox back to connected, recording why, and
	// returns once that is stored.
	Reconnected(ctx context.Context, inboxID string) error
}

var _ Reconnector = (*monitor.Monitor)(nil)

// ConnectConfig serves the OAuth consent flow: GET /v1/connect/{provider}
// and GET /oauth/callback.
type ConnectConfig struct {
	// Providers serve the flow, by provider (microsoft, google). A
	// provider without one is answered as not configured.
	Providers map[holdfast.Provider]OAuthProvider
	// Accounts check, by provider, that the account the user signed in
	// with is the address asked for; a provider without one is not
	// checked.
	Accounts map[holdfast.Provider]AccountReader
	// Health moves reconnected inboxes back to connected. Required.
	Health Reconnector
	// StateLifetime is how long a user has to consent, from the
	// authorization URL to the callback. Zero means DefaultStateLifetime.
	StateLifetime time.Duration
}

// DefaultStateLifetime is how long a consent flow waits for its callback by
// default, as long as the providers' authorization codes live.
const DefaultStateLifetime = 10 * time.Minute

// Limits of the consent flow's inputs.
const (
	maxRedirectURI = 2048
	maxOAuthParam  = 4096
)

// connectJSON answers GET /v1/connect/{provider}.
type connectJSON struct {
	AuthorizationURL string    `json:"authorization_url"`
	ExpiresAt        time.Time `json:"expires_at"`
}

// handleConnect starts the consent flow for an inbox:
// GET /v1/connect/{provider}?email=&redirect_uri=&owner_email=. It answers
// the URL of the provider's consent page, to send the user's browser to.
// owner_email, optional, becomes the inbox's owner address at the
// callback; without it a reconnected inbox keeps its owner.
func (s *server) handleConnect() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, op, err := s.oauthProvider(r.PathValue("provider"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		q := r.URL.Query()
		email, err := validEmail(q.Get("email"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		redirect, err := validRedirectURI(q.Get("redirect_uri"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		owner, err := validOwnerEmail(q.Get("owner_email"))
		if err != nil {
			s.respondErr(w, r, err)
			return
		}
		state, verifier := randomToken(), oauth2.GenerateVerifier()
		now := s.cfg.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
		life := s.cfg.Connect.StateLifetime
		if life <= 0 {
			life = DefaultStateLifetime
		}
		st := &holdfast.OAuthState{
			Hash: stateHash(state), Provider: p, Email: email, OwnerEmail: owner, Verifier: verifier,
			RedirectURI: redirect, CreatedAt: now, ExpiresAt: now.Add(life),
		}
		if err := s.cfg.Store.SaveOAuthState(r.Context(), st); err != nil {
			s.respondErr(w, r, fmt.Errorf("start %s consent flow: %w", p, err))
			return
		}
		u, err := withQuery(op.AuthCodeURL(state, verifier), url.Values{"login_hint": {email}})
		if err != nil {
			s.respondErr(w, r, fmt.Errorf("%s authorization URL: %w", p, err))
			return
		}
		s.log.InfoContext(r.Context(), "consent flow started", "provider", p)
		encode(w, http.StatusOK, connectJSON{AuthorizationURL: u, ExpiresAt: st.ExpiresAt})
	})
}

// oauthProvider reads the {provider} path value and returns the provider
// and its side of the consent flow, or an error naming the field.
func (s *server) oauthProvider(name string) (holdfast.Provider, OAuthProvider, error) {
	p, err := holdfast.ParseProvider(name)
	if err != nil {
		return "", nil, holdfast.Invalidf("provider", "%v", err)
	}
	if p == holdfast.ProviderIMAP {
		return "", nil, holdfast.Invalidf("provider", "imap inboxes are connected with a password: POST /v1/inboxes")
	}
	op := s.cfg.Connect.Providers[p]
	if op == nil {
		return "", nil, holdfast.Invalidf("provider", "%s is not configured on this server (its client ID is not set)", p)
	}
	return p, op, nil
}

// validRedirectURI checks the host application's page the browser is sent
// back to: an absolute http or https URL without user information or
// fragment.
func validRedirectURI(s string) (string, error) {
	if s == "" {
		return "", holdfast.Invalidf("redirect_uri", "is required")
	}
	if len(s) > maxRedirectURI {
		return "", holdfast.Invalidf("redirect_uri", "is longer than %d characters", maxRedirectURI)
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "", holdfast.Invalidf("redirect_uri", "must be an absolute http or https URL without user information or fragment")
	}
	return u.String(), nil
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// stateHash is what the store keeps of a state parameter.
func stateHash(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}

// withQuery returns rawURL with the values of add set in its query.
func withQuery(rawURL string, add url.Values) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, vs := range add {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// handleCallback ends the consent flow: GET /oauth/callback?code=&state=,
// where the provider sends the user's browser. It takes the flow (once),
// redeems the code, connects or reconnects the inbox, and sends the browser
// on to the flow's redirect_uri with inbox_id and status=connected, or
// status=error and error. Without a valid state there is nowhere safe to
// send the browser, and it answers 400.
func (s *server) handleCallback() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		state := q.Get("state")
		if state == "" || len(state) > maxOAuthParam {
			callbackPage(w, http.StatusBadRequest, "This sign-in link is not valid. Start connecting the inbox again.")
			return
		}
		now := s.cfg.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
		st, err := s.cfg.Store.TakeOAuthState(r.Context(), stateHash(state), now)
		if errors.Is(err, holdfast.ErrNotFound) {
			s.log.InfoContext(r.Context(), "oauth callback with an unknown, used or expired state")
			callbackPage(w, http.StatusBadRequest, "This sign-in link has expired or was already used. Start connecting the inbox again.")
			return
		}
		if err != nil {
			s.log.ErrorContext(r.Context(), "oauth callback: take state", "err", err)
			callbackPage(w, http.StatusInternalServerError, "Something went wrong on our side. Try connecting the inbox again in a moment.")
			return
		}
		id, code := s.finishConnect(r.Context(), st, q)
		v := url.Values{"status": {"connected"}, "inbox_id": {id}}
		if code != "" {
			v = url.Values{"status": {"error"}, "error": {code}}
		}
		target, err := withQuery(st.RedirectURI, v)
		if err != nil { // validated when the flow started
			s.log.ErrorContext(r.Context(), "oauth callback: stored redirect_uri", "err", err)
			callbackPage(w, http.StatusInternalServerError, "Something went wrong on our side. Try connecting the inbox again in a moment.")
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		http.Redirect(w, r, target, http.StatusFound)
	})
}

// The error codes the callback sends the browser on with, besides the
// provider's own ("access_denied", ...).
const (
	errProviderNotConfigured = "provider_not_configured"
	errMissingCode           = "missing_code"
	errExchangeFailed        = "exchange_failed"
	errAccountMismatch       = "account_mismatch"
	errAccountUnverified     = "account_unverified"
	errInternal              = "internal_error"
)

// finishConnect redeems the callback's code for st and connects the inbox.
// It returns the inbox's ID, or an error code safe to show (no token, no
// detail); the details go to the log.
func (s *server) finishConnect(ctx context.Context, st *holdfast.OAuthState, q url.Values) (inboxID, errCode string) {
	log := s.log.With("provider", st.Provider)
	if e := q.Get("error"); e != "" {
		code := safeErrorCode(e)
		log.InfoContext(ctx, "consent flow refused by the provider", "error", code,
			"error_description", truncate(q.Get("error_description"), 300))
		return "", code
	}
	op := s.cfg.Connect.Providers[st.Provider]
	if op == nil {
		log.ErrorContext(ctx, "oauth callback for a provider no longer configured")
		return "", errProviderNotConfigured
	}
	code := q.Get("code")
	if code == "" || len(code) > maxOAuthParam {
		return "", errMissingCode
	}
	existing, err := s.cfg.Store.InboxByEmail(ctx, st.Provider, st.Email)
	if err != nil && !errors.Is(err, holdfast.ErrNotFound) {
		log.ErrorContext(ctx, "oauth callback: look up inbox", "err", err)
		return "", errInternal
	}
	now := s.cfg.Clock.Now().UTC().Truncate(holdfast.StoreTimePrecision)
	id := holdfast.NewID("inb", now)
	if existing != nil {
		id = existing.ID
	}
	refresh, err := op.Exchange(ctx, id, code, st.Verifier)
	if err != nil {
		log.WarnContext(ctx, "oauth code exchange failed", "inbox_id", id, "err", err)
		return "", errExchangeFailed
	}
	if refresh, errCode = s.checkAccount(ctx, id, st, refresh); errCode != "" {
		return "", errCode
	}
	if existing == nil {
		in, err := s.createOAuthInbox(ctx, id, st, refresh, now)
		if err == nil {
			log.InfoContext(ctx, "inbox connected through the consent flow", "inbox_id", in.ID, "tenant", in.Tenant)
			return in.ID, ""
		}
		if !errors.Is(err, holdfast.ErrConflict) {
			log.ErrorContext(ctx, "oauth callback: create inbox", "inbox_id", id, "err", err)
			return "", errInternal
		}
		// Connected meanwhile by another flow: reconnect that one.
		if existing, err = s.cfg.Store.InboxByEmail(ctx, st.Provider, st.Email); err != nil {
			log.ErrorContext(ctx, "oauth callback: look up inbox", "err", err)
			return "", errInternal
		}
	}
	if st.OwnerEmail != "" && st.OwnerEmail != existing.OwnerEmail {
		if _, err := s.cfg.Store.SetOwnerEmail(ctx, existing.ID, st.OwnerEmail); err != nil {
			log.ErrorContext(ctx, "oauth callback: set inbox owner", "inbox_id", existing.ID, "err", err)
			return "", errInternal
		}
	}
	if err := s.reconnect(ctx, existing.ID, refresh); err != nil {
		log.ErrorContext(ctx, "oauth callback: reconnect inbox", "inbox_id", existing.ID, "err", err)
		return "", errInternal
	}
	log.InfoContext(ctx, "inbox reconnected through the consent flow", "inbox_id", existing.ID)
	return existing.ID, ""
}

// checkAccount verifies that the grant signs in to the address the flow was
// started for, so that signing in with another account (one already
// connected, or a colleague's) never stores a grant under the wrong inbox.
// It returns the refresh token to store (Microsoft rotates it on the way),
// or an error code.
func (s *server) checkAccount(ctx context.Context, id string, st *holdfast.OAuthState, refresh string) (string, string) {
	ar := s.cfg.Connect.Accounts[st.Provider]
	if ar == nil {
		return refresh, ""
	}
	sess := &holdfast.Session{Inbox: &holdfast.Inbox{ID: id, Email: st.Email, Provider: st.Provider}, RefreshToken: refresh}
	got, err := ar.Account(ctx, sess)
	if err != nil {
		s.log.WarnContext(ctx, "consent flow: could not read the signed-in account", "provider", st.Provider, "inbox_id", id, "err", err)
		return "", errAccountUnverified
	}
	if !strings.EqualFold(strings.TrimSpace(got), st.Email) {
		// The addresses are the user's own; the log keeps only the fact.
		s.log.WarnContext(ctx, "consent flow: signed in with another account than the one asked for; nothing stored",
			"provider", st.Provider, "inbox_id", id)
		return "", errAccountMismatch
	}
	return sess.RefreshToken, ""
}

// createOAuthInbox stores a new inbox with the refresh token, as POST
// /v1/inboxes does for an imported grant, and registers it with the health
// engine and the syncer. ErrConflict if the provider and email are taken.
func (s *server) createOAuthInbox(ctx context.Context, id string, st *holdfast.OAuthState, refresh string, now time.Time) (*holdfast.Inbox, error) {
	sealed, err := s.cfg.SealCredentials(id, Credentials{RefreshToken: refresh})
	if err != nil {
		return nil, fmt.Errorf("seal credentials for inbox %s: %w", id, err)
	}
	in := &holdfast.Inbox{
		ID: id, Email: st.Email, OwnerEmail: st.OwnerEmail, Provider: st.Provider,
		Tenant:      st.Email[strings.LastIndexByte(st.Email, '@')+1:],
		Credentials: sealed, State: holdfast.StateConnecting, Reason: "created",
		Message: holdfast.DefaultMessage(holdfast.StateConnecting), Since: now, CreatedAt: now, UpdatedAt: now,
	}
	ev := holdfast.Event{
		InboxID: id, At: now, NewState: in.State, Reason: in.Reason,
		Message: "Inbox connected through the consent flow.", Cause: holdfast.CauseAPI,
	}
	if err := s.cfg.Store.CreateInbox(ctx, in, ev); err != nil {
		return nil, err
	}
	if err := s.cfg.Health.AddInbox(in); err != nil {
		// Stored all the same: the engine picks it up at its next start.
		s.log.ErrorContext(ctx, "register inbox with the health engine", "inbox_id", in.ID, "err", err)
	}
	if s.cfg.Syncer != nil {
		s.cfg.Syncer.Add(in)
	}
	return in, nil
}

// reconnect replaces an existing inbox's credentials with the refresh
// token, keeping its history and sync cursor, moves it back to connected
// through the health engine, and asks for a sync.
func (s *server) reconnect(ctx context.Context, id, refresh string) error {
	sealed, err := s.cfg.SealCredentials(id, Credentials{RefreshToken: refresh})
	if err != nil {
		return fmt.Errorf("seal credentials for inbox %s: %w", id, err)
	}
	if err := s.cfg.Store.SetCredentials(ctx, id, sealed); err != nil {
		return err
	}
	if err := s.cfg.Connect.Health.Reconnected(ctx, id); err != nil {
		return err
	}
	if s.cfg.Syncer != nil {
		_ = s.cfg.Syncer.Now(id) // an inbox without a connector is not synced
	}
	return nil
}

// safeErrorCode returns a provider's OAuth error code if it looks like one
// (lower-case letters and underscores), else "provider_error".
func safeErrorCode(e string) string {
	if len(e) == 0 || len(e) > 64 {
		return "provider_error"
	}
	for _, c := range e {
		if (c < 'a' || c > 'z') && c != '_' {
			return "provider_error"
		}
	}
	return e
}

// truncate returns s cut to at most n bytes, as valid UTF-8.
func truncate(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}

// callbackPage answers the browser with a short, safe text.
func callbackPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg)
}

// Package oauth gets OAuth 2 access tokens for holdfast's Microsoft and
// Google inboxes from their refresh tokens, with golang.org/x/oauth2.
//
// A Source serves one provider's token endpoint (the Microsoft identity
// platform v2.0, or Google's). It caches each inbox's access token in memory
// until shortly before it expires, refreshes at most once at a time per
// inbox, and hands a rotated refresh token (Microsoft issues a new one on
// every refresh) to Session.OnTokenRotated at once, so that the caller
// persists it encrypted. Client credentials always go in the request body
// (oauth2.AuthStyleInParams): x/oauth2's auto-detection would send a refused
// refresh a second time in the other style.
//
// Every failure is a *holdfast.ProviderError classified by package classify
// on surface token (Microsoft) or google_token (Google) from the endpoint's
// status, headers and body, or from the transport error. Refresh tokens,
// access tokens and the client secret never appear in errors or logs.
//
// The Go API of this package is not stable.
package oauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
)

// Source gets access tokens for the inboxes of one provider. It is safe for
// concurrent use.
type Source struct {
	cfg     Config
	oc      *oauth2.Config
	surface classify.Surface

	mu      sync.Mutex
	entries map[string]*entry // by inbox ID
}

// entry is one inbox's cached access token.
type entry struct {
	mu     sync.Mutex // held while refreshing, so one refresh runs at a time
	access string
	expiry time.Time
	// grants are the SHA-256 of the refresh token redeemed for the access
	// token and of the one it was rotated to, if any: a session with
	// either (one opened before the rotation was saved) gets the cached
	// access token; one with another refresh token (the inbox was
	// reconnected) does not.
	grants [2][sha256.Size]byte
}

// holds reports whether the access token was got with refreshToken, or
// with the token it replaced.
func (e *entry) holds(refreshToken string) bool {
	fp := fingerprint(refreshToken)
	return e.grants[0] == fp || e.grants[1] == fp
}

// New returns a Source for cfg's provider, or an error naming a bad field.
func New(cfg Config) (*Source, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Source{
		cfg: cfg,
		oc: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
			Endpoint: oauth2.Endpoint{
				AuthURL:   cfg.authURL(),
				TokenURL:  cfg.tokenURL(),
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
		surface: classify.SurfaceToken,
		entries: map[string]*entry{},
	}
	if cfg.Provider == holdfast.ProviderGoogle {
		s.surface = classify.SurfaceGoogleToken
	}
	return s, nil
}

// Provider returns the provider the Source serves.
func (s *Source) Provider() holdfast.Provider { return s.cfg.Provider }

// AccessToken returns an access token for the session's inbox: the cached
// one while it is valid for more than Config.ExpiryMargin, else a new one
// from the session's refresh token. A rotated refresh token is handed to
// sess.OnTokenRotated before AccessToken returns, and sess.RefreshToken is
// set to it, so that later refreshes with the same session use it.
//
// Errors are *holdfast.ProviderError values (surface token or
// google_token).
func (s *Source) AccessToken(ctx context.Context, sess *holdfast.Session) (string, error) {
	if sess == nil || sess.Inbox == nil {
		return "", errors.New("oauth: access token for a session without an inbox")
	}
	if sess.RefreshToken == "" {
		return "", s.classify(sess.Inbox.ID, fmt.Errorf("oauth: inbox %s has no refresh token", sess.Inbox.ID))
	}
	e := s.entry(sess.Inbox.ID)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.access != "" && e.holds(sess.RefreshToken) &&
		s.cfg.Now().Add(s.cfg.ExpiryMargin).Before(e.expiry) {
		return e.access, nil
	}
	return s.refresh(ctx, sess, e)
}

// Invalidate drops the inbox's cached access token if it is token, as after
// a provider answered 401 to it, so that the next AccessToken refreshes.
// When several requests got a 401 for the same token, only the first
// caller's AccessToken refreshes; the others get its new token.
func (s *Source) Invalidate(inboxID, token string) {
	e := s.entry(inboxID)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.access == token {
		e.access, e.expiry = "", time.Time{}
	}
}

// Forget drops everything cached for the inbox, as when it is deleted.
func (s *Source) Forget(inboxID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, inboxID)
}

// entry returns the inbox's cache entry, creating it.
func (s *Source) entry(inboxID string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[inboxID]
	if e == nil {
		e = &entry{}
		s.entries[inboxID] = e
	}
	return e
}

// refresh redeems the session's refresh token, caches the access token in
// e (whose lock the caller holds) and hands a rotated refresh token on.
func (s *Source) refresh(ctx context.Context, sess *holdfast.Session, e *entry) (string, error) {
	id := sess.Inbox.ID
	old := sess.RefreshToken
	e.access, e.expiry = "", time.Time{}
	rctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient), s.cfg.Timeout)
	defer cancel()
	start := s.cfg.Now()
	tok, err := s.oc.TokenSource(rctx, &oauth2.Token{RefreshToken: old}).Token()
	if err != nil {
		pe := s.classify(id, err, old)
		s.cfg.Logger.DebugContext(ctx, "oauth refresh failed", "inbox_id", id, "provider", s.cfg.Provider, "err", pe)
		return "", pe
	}
	e.access = tok.AccessToken
	switch {
	case tok.ExpiresIn > 0:
		e.expiry = start.Add(time.Duration(tok.ExpiresIn) * time.Second)
	case !tok.Expiry.IsZero():
		e.expiry = start.Add(time.Until(tok.Expiry))
	default:
		e.expiry = start.Add(unknownLifetime)
	}
	e.grants = [2][sha256.Size]byte{fingerprint(old), fingerprint(old)}
	if tok.RefreshToken != "" && tok.RefreshToken != old {
		// Microsoft rotates on every refresh; the old token stays valid,
		// so a failed save is not fatal: the next session comes with the
		// old token, which is redeemed (and rotated) again.
		sess.RefreshToken = tok.RefreshToken
		e.grants[1] = fingerprint(tok.RefreshToken)
		if sess.OnTokenRotated != nil {
			if err := sess.OnTokenRotated(ctx, tok.RefreshToken); err != nil {
				s.cfg.Logger.WarnContext(ctx, "oauth: could not save the rotated refresh token; the old one is used next time",
					"inbox_id", id, "provider", s.cfg.Provider, "err", Redact(err.Error(), old, tok.RefreshToken, tok.AccessToken))
			}
		}
	}
	s.cfg.Logger.DebugContext(ctx, "oauth access token refreshed", "inbox_id", id, "provider", s.cfg.Provider,
		"expires_at", e.expiry, "rotated", tok.RefreshToken != old)
	return e.access, nil
}

// AuthCodeURL returns the URL of the provider's consent page for a new
// inbox, with PKCE (S256) from verifier (oauth2.GenerateVerifier) and,
// for Google, offline access with forced consent so that a refresh token is
// issued.
func (s *Source) AuthCodeURL(state, verifier string) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if s.cfg.Provider == holdfast.ProviderGoogle {
		opts = append(opts, oauth2.AccessTypeOffline, oauth2.SetAuthURLParam("prompt", "consent"))
	}
	return s.oc.AuthCodeURL(state, opts...)
}

// Exchange redeems an authorization code from the OAuth callback and
// returns the refresh token. inboxID only names the inbox in errors. An
// answer without a refresh token (offline_access or access_type=offline
// missing) is an error. Errors are classified like AccessToken's.
func (s *Source) Exchange(ctx context.Context, inboxID, code, verifier string) (string, error) {
	rctx, cancel := context.WithTimeout(context.WithValue(ctx, oauth2.HTTPClient, s.cfg.HTTPClient), s.cfg.Timeout)
	defer cancel()
	tok, err := s.oc.Exchange(rctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return "", s.classify(inboxID, err, code, verifier)
	}
	if tok.RefreshToken == "" {
		return "", fmt.Errorf("oauth code exchange for inbox %s: the %s token endpoint issued no refresh token", inboxID, s.cfg.Provider)
	}
	return tok.RefreshToken, nil
}

// fingerprint identifies a refresh token without keeping it.
func fingerprint(refreshToken string) [sha256.Size]byte {
	return sha256.Sum256([]byte(refreshToken))
}

// Redact returns text with every non-empty secret replaced by
// "[redacted]". Connectors pass error texts that quote a response through
// it, in case a server echoes a credential.
func Redact(text string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			text = strings.ReplaceAll(text, s, "[redacted]")
		}
	}
	return text
}

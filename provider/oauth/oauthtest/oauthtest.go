// Package oauthtest runs a fake OAuth 2 token endpoint for tests of
// holdfast's Microsoft and Google connectors: the Microsoft identity
// platform's /{tenant}/oauth2/v2.0/token (rotating refresh tokens, AADSTS
// error bodies) or Google's /token (no rotation, Google error bodies), with
// revocation, a wrong client secret and queued faults.
//
// It is a fake at the wire level (provider-apis.md §1), not a mock. The
// emulator package covers the whole providers; this one keeps the connector
// tests small.
//
// The Go API of this package is not stable.
package oauthtest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

// Options configures a Server.
type Options struct {
	// Provider is holdfast.ProviderMicrosoft (the default) or
	// holdfast.ProviderGoogle; it decides the paths, rotation and error
	// bodies.
	Provider holdfast.Provider
	// ClientID and ClientSecret are the app registration the server
	// accepts. Empty means "client-id" and "client-secret".
	ClientID, ClientSecret string
	// Lifetime is the access tokens' expires_in. Zero means an hour.
	Lifetime time.Duration
}

// Server is one running fake token endpoint.
type Server struct {
	// URL is the base URL: the Microsoft login host or the Google OAuth
	// host.
	URL string
	// Tenant is the Microsoft tenant in the token path ("common").
	Tenant string

	opts Options
	srv  *httptest.Server

	mu       sync.Mutex
	refresh  map[string]string // refresh token -> user
	revoked  map[string]bool   // refresh tokens revoked
	access   map[string]access // access token -> grant
	faults   []Fault
	requests int
	basic    int
}

type access struct {
	user   string
	expiry time.Time
}

// Fault is a response the server sends instead of handling a request.
type Fault struct {
	Status int
	Header http.Header
	Body   string
}

// Start runs a Server until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Provider == "" {
		o.Provider = holdfast.ProviderMicrosoft
	}
	if o.ClientID == "" {
		o.ClientID = "client-id"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "client-secret"
	}
	if o.Lifetime == 0 {
		o.Lifetime = time.Hour
	}
	s := &Server{
		Tenant:  "common",
		opts:    o,
		refresh: map[string]string{},
		revoked: map[string]bool{},
		access:  map[string]access{},
	}
	mux := http.NewServeMux()
	if o.Provider == holdfast.ProviderGoogle {
		mux.HandleFunc("POST /token", s.token)
	} else {
		mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	}
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// ClientID returns the client ID the server accepts.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the client secret the server accepts.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// Grant issues a refresh token for user, as a consent would.
func (s *Server) Grant(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt := "rt-" + random()
	s.refresh[rt] = user
	return rt
}

// Revoke makes every refresh token of user invalid, as a revoke-sessions
// or a password reset does, and their access tokens too.
func (s *Server) Revoke(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for rt, u := range s.refresh {
		if u == user {
			s.revoked[rt] = true
		}
	}
	for at, a := range s.access {
		if a.user == user {
			delete(s.access, at)
		}
	}
}

// ExpireAccessTokens makes every access token issued so far invalid, as
// their expiry would.
func (s *Server) ExpireAccessTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
}

// Fail queues faults: the next len(f) token requests get them, in order.
func (s *Server) Fail(f ...Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, f...)
}

// User returns the user an access token was issued for, if it is valid.
func (s *Server) User(accessToken string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.access[accessToken]
	if !ok || time.Now().After(a.expiry) {
		return "", false
	}
	return a.user, true
}

// Requests returns how many token requests the server received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// BasicAuthRequests returns how many token requests carried the client
// credentials in an Authorization header instead of the body.
func (s *Server) BasicAuthRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.basic
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults = s.faults[1:]
		for k, v := range f.Header {
			w.Header()[k] = v
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
		}
		w.WriteHeader(f.Status)
		_, _ = w.Write([]byte(f.Body))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		s.basic++
		id, secret = u, p
	}
	if id != s.opts.ClientID || secret != s.opts.ClientSecret {
		if s.opts.Provider == holdfast.ProviderGoogle {
			s.googleFail(w, 401, "invalid_client", "Unauthorized")
		} else {
			s.fail(w, 401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+s.opts.ClientID+"'.")
		}
		return
	}
	if r.PostForm.Get("grant_type") != "refresh_token" {
		s.fail(w, 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	}
	rt := r.PostForm.Get("refresh_token")
	user, ok := s.refresh[rt]
	switch {
	case !ok:
		if s.opts.Provider == holdfast.ProviderGoogle {
			s.googleFail(w, 400, "invalid_grant", "Bad Request")
		} else {
			s.fail(w, 400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
		}
		return
	case s.revoked[rt]:
		if s.opts.Provider == holdfast.ProviderGoogle {
			s.googleFail(w, 400, "invalid_grant", "Token has been expired or revoked.")
		} else {
			s.failSub(w, 400, "invalid_grant", 50173, "bad_token", "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.")
		}
		return
	}
	at := "at-" + random()
	s.access[at] = access{user: user, expiry: time.Now().Add(s.opts.Lifetime)}
	resp := map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   int(s.opts.Lifetime / time.Second),
	}
	if s.opts.Provider == holdfast.ProviderGoogle {
		resp["scope"] = "https://www.googleapis.com/auth/gmail.readonly https://www.googleapis.com/auth/gmail.send"
	} else {
		// Microsoft replaces the refresh token on every use; the old one
		// stays valid (provider-apis.md §1.1).
		nrt := "rt-" + random()
		s.refresh[nrt] = user
		resp["refresh_token"] = nrt
		resp["scope"] = "Mail.ReadWrite Mail.Send"
		resp["ext_expires_in"] = int(s.opts.Lifetime / time.Second)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(resp)
}

// fail writes a Microsoft identity platform error body.
func (s *Server) fail(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	s.failSub(w, status, code, aadsts, "", desc)
}

func (s *Server) failSub(w http.ResponseWriter, status int, code string, aadsts int, suberror, desc string) {
	body := map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nCorrelation ID: aaaa0000-bb11-2222-33cc-444444dddddd\r\nTimestamp: 2026-11-28 12:00:00Z", aadsts, desc),
		"error_codes":       []int{aadsts},
		"timestamp":         "2026-11-28 12:00:00Z",
		"trace_id":          "0000aaaa-11bb-cccc-dd22-eeeeee333333",
		"correlation_id":    "aaaa0000-bb11-2222-33cc-444444dddddd",
		"error_uri":         fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", aadsts),
	}
	if suberror != "" {
		body["suberror"] = suberror
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// googleFail writes a Google OAuth error body.
func (s *Server) googleFail(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// random returns a random token body.
func random() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return strings.TrimRight(base64.RawURLEncoding.EncodeToString(b[:]), "=")
}

// Package xoauth2 implements the XOAUTH2 SASL mechanism that Google and
// Microsoft accept on IMAP and SMTP: a client for holdfast's connectors and a
// small server for tests and emulators.
//
// github.com/emersion/go-sasl dropped XOAUTH2 in 2020, so it lives here. The
// exchange is one initial response,
//
//	base64("user=" user "\x01auth=Bearer " token "\x01\x01")
//
// answered by OK (IMAP) or 235 (SMTP). On failure the server first sends a
// challenge holding a JSON error ({"status":"401","schemes":"bearer",...});
// the client must answer it with an empty response, after which the server
// sends the final NO or 535 that holdfast classifies.
//
// The Go API of this package is not stable.
package xoauth2

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"
)

// Mechanism is the SASL mechanism name.
const Mechanism = "XOAUTH2"

// Error is the JSON error a server sends in its failure challenge.
type Error struct {
	Status  string `json:"status"`
	Schemes string `json:"schemes"`
	Scope   string `json:"scope"`
}

// Error implements error. It never holds the token.
func (e *Error) Error() string {
	return fmt.Sprintf("xoauth2: server refused the token (status %q, schemes %q, scope %q)", e.Status, e.Schemes, e.Scope)
}

// Client is an XOAUTH2 sasl.Client for one user and access token.
type Client struct {
	user, token string
	// failure is the error challenge the server sent, if any.
	failure *Error
}

var _ sasl.Client = (*Client)(nil)

// NewClient returns a client that signs in as user with the OAuth 2 access
// token.
func NewClient(user, token string) *Client {
	return &Client{user: user, token: token}
}

// Start implements sasl.Client: it returns the mechanism and the initial
// response.
func (c *Client) Start() (string, []byte, error) {
	ir := "user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"
	return Mechanism, []byte(ir), nil
}

// Next implements sasl.Client. The only challenge XOAUTH2 knows is the
// server's failure report: Next records it (see Failure) and returns an
// empty, non-nil response, so the client library sends the empty line the
// server waits for and then returns the server's final NO or 535.
func (c *Client) Next(challenge []byte) ([]byte, error) {
	var e Error
	if err := json.Unmarshal(challenge, &e); err != nil {
		e = Error{Status: "unparsable challenge"}
	}
	c.failure = &e
	return []byte{}, nil
}

// Failure returns the error challenge the server sent, or nil.
func (c *Client) Failure() *Error { return c.failure }

// Encode returns the initial response for user and token, unencoded; a
// convenience for tests and emulators.
func Encode(user, token string) []byte {
	_, ir, _ := NewClient(user, token).Start()
	return ir
}

// Decode parses an initial response into user and token.
func Decode(ir []byte) (user, token string, err error) {
	fields := bytes.Split(ir, []byte{1})
	if len(fields) < 2 {
		return "", "", errors.New("xoauth2: malformed initial response")
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(string(f), "=")
		if !ok {
			continue
		}
		switch k {
		case "user":
			user = v
		case "auth":
			scheme, t, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return "", "", errors.New("xoauth2: auth is not a bearer token")
			}
			token = t
		}
	}
	if user == "" || token == "" {
		return "", "", errors.New("xoauth2: initial response lacks user or token")
	}
	return user, token, nil
}

// Authenticator checks a user's access token on the server side. It returns
// nil to accept, or the error to report to the client.
type Authenticator func(user, token string) error

// server is the state of one server-side exchange.
type server struct {
	auth   Authenticator
	failed error // set once the error challenge was sent
	done   bool
}

// NewServer returns a sasl.Server for XOAUTH2 that behaves like Gmail's: a
// refused token gets the JSON error challenge, and the exchange fails with
// the authenticator's error once the client sends its empty response.
func NewServer(auth Authenticator) sasl.Server {
	return &server{auth: auth}
}

// Next implements sasl.Server.
func (s *server) Next(response []byte) ([]byte, bool, error) {
	switch {
	case s.done:
		return nil, true, sasl.ErrUnexpectedClientResponse
	case s.failed != nil:
		// The client's answer to the error challenge; anything goes.
		s.done = true
		return nil, true, s.failed
	case response == nil:
		// No initial response: ask for it with an empty challenge.
		return []byte{}, false, nil
	}
	user, token, err := Decode(response)
	if err != nil {
		s.done = true
		return nil, true, err
	}
	if err := s.auth(user, token); err != nil {
		s.failed = err
		challenge, _ := json.Marshal(Error{Status: "401", Schemes: "bearer", Scope: "https://mail.google.com/"})
		return challenge, false, nil
	}
	s.done = true
	return nil, true, nil
}

// ProviderForHost names the provider that classify.Input expects for an
// XOAUTH2 sign-in to host: "google" for Gmail's servers, "microsoft" for
// Office 365 and Outlook.com, and "generic" for every other server.
func ProviderForHost(host string) string {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	switch {
	case h == "gmail.com", strings.HasSuffix(h, ".gmail.com"), strings.HasSuffix(h, ".googlemail.com"):
		return "google"
	case strings.HasSuffix(h, ".office365.com"), strings.HasSuffix(h, ".outlook.com"), h == "outlook.com":
		return "microsoft"
	}
	return "generic"
}

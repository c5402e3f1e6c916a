// Package bearer makes authenticated HTTP calls to an OAuth-protected
// provider API (Microsoft Graph, the Gmail API) and classifies their
// errors. It is the mechanism the graph and gmail connectors share; what
// differs between the APIs (their names, operations, error bodies and
// classify surfaces) comes in through Config.
//
// Each call carries an access token from package provider/oauth as a
// bearer token; a 401 invalidates the token and retries the call once with
// a fresh one. Every call has a timeout and a bound on the body read. Every
// error for a provider outcome is a *holdfast.ProviderError classified by
// package classify from the status, the Retry-After header and the body; a
// call that got no answer is classified as a transport error. Tokens never
// appear in errors or logs.
//
// The Go API of this package is not stable.
package bearer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/provider/oauth"
)

// DefaultTimeout is Config.Timeout's default.
const DefaultTimeout = time.Minute

// maxBody bounds the response bodies read.
const maxBody = 16 << 20

// maxMessage bounds the API error message an APIError keeps.
const maxMessage = 300

// Config configures a Client.
type Config struct {
	// Name is the API's name at the start of errors and log messages:
	// "graph", "gmail".
	Name string
	// Provider is the provider Tokens must serve and classify is told.
	Provider holdfast.Provider
	// Surface is the classify surface of the API's answers.
	Surface classify.Surface
	// Tokens gets the inboxes' access tokens. Required.
	Tokens *oauth.Source
	// HTTPClient sends the requests. Nil means a client with a Timeout of
	// Config.Timeout.
	HTTPClient *http.Client
	// Timeout bounds each request, body included. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Logger receives debug records; never a secret. Nil discards them.
	Logger *slog.Logger
	// ErrorCode reads the API's error code and message from the body of a
	// non-2xx answer, for the *APIError the answer becomes; both are
	// empty when the body holds none. Required.
	ErrorCode func(body []byte) (code, message string)
}

// WithDefaults returns cfg with its zero fields set, or an error naming
// the bad field, prefixed "<Name> config: ".
func (cfg Config) WithDefaults() (Config, error) {
	if cfg.Tokens == nil {
		return cfg, fmt.Errorf("%s config: Tokens is nil", cfg.Name)
	}
	if p := cfg.Tokens.Provider(); p != cfg.Provider {
		return cfg, fmt.Errorf("%s config: Tokens serves %s, not %s", cfg.Name, p, cfg.Provider)
	}
	if cfg.ErrorCode == nil {
		return cfg, fmt.Errorf("%s config: ErrorCode is nil", cfg.Name)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: cfg.Timeout}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// BaseURL returns raw, or def when raw is empty, without trailing slashes
// and then without suffix (an API version the caller adds itself), or an
// error prefixed "<name> config: " when it is not an http(s) URL.
func BaseURL(name, raw, def, suffix string) (string, error) {
	if raw == "" {
		raw = def
	}
	raw = strings.TrimSuffix(strings.TrimRight(raw, "/"), suffix)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return raw, fmt.Errorf("%s config: BaseURL %q is not an http(s) URL", name, raw)
	}
	return raw, nil
}

// Client makes the calls of one API. It is safe for concurrent use.
type Client struct {
	cfg Config
}

// New returns a Client with cfg's zero fields set to their defaults, or an
// error naming a bad field.
func New(cfg Config) (*Client, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{cfg: cfg}, nil
}

// Request is one call.
type Request struct {
	Op     string // the classify operation
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Send marks a submission: a failure whose outcome is unclear wraps
	// holdfast.ErrOutcomeUnknown.
	Send bool
}

// Response is a successful answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// APIError is an API's error answer, without secrets: the status and
// the body's error code and message, tokens redacted.
type APIError struct {
	API    string // Config.Name
	Op     string // the classify operation
	Status int
	// Code is the API's error code (Graph's error.code; Gmail's first
	// error reason, or error.status).
	Code    string
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	s := fmt.Sprintf("%s %s: HTTP %d", e.API, e.Op, e.Status)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Do sends r with the session's access token. A 401 invalidates the token
// and retries once with a fresh one (the token endpoint decides whether the
// grant is still good). A 2xx answer is returned; anything else is a
// classified *holdfast.ProviderError.
func (c *Client) Do(ctx context.Context, s *holdfast.Session, r Request) (*Response, error) {
	for attempt := 0; ; attempt++ {
		tok, err := c.cfg.Tokens.AccessToken(ctx, s)
		if err != nil {
			return nil, err
		}
		resp, err := c.send(ctx, r, tok)
		if err != nil {
			return nil, c.TransportError(s, r, err)
		}
		if resp.Status >= 200 && resp.Status <= 299 {
			return resp, nil
		}
		if resp.Status == http.StatusUnauthorized && attempt == 0 {
			c.cfg.Logger.DebugContext(ctx, c.cfg.Name+" 401: refreshing the access token and retrying once", "inbox_id", s.Inbox.ID, "op", r.Op)
			c.cfg.Tokens.Invalidate(s.Inbox.ID, tok)
			continue
		}
		return nil, c.apiError(s, r, resp, tok)
	}
}

// send makes one HTTP request under the request timeout.
func (c *Client) send(ctx context.Context, r Request, tok string) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, r.URL, body)
	if err != nil {
		return nil, err
	}
	for key, v := range r.Header {
		req.Header[key] = v
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	hr, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hr.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("%s %s: response body over %d bytes", c.cfg.Name, r.Op, maxBody)
	}
	return &Response{Status: hr.StatusCode, Header: hr.Header, Body: b}, nil
}

// apiError classifies a non-2xx answer.
func (c *Client) apiError(s *holdfast.Session, r Request, resp *Response, tok string) error {
	code, msg := c.cfg.ErrorCode(resp.Body)
	msg = oauth.Redact(msg, tok, s.RefreshToken)
	if len(msg) > maxMessage {
		msg = strings.ToValidUTF8(msg[:maxMessage], "") + "..."
	}
	var err error = &APIError{API: c.cfg.Name, Op: r.Op, Status: resp.Status, Code: oauth.Redact(code, tok, s.RefreshToken), Message: msg}
	if r.Send && resp.Status >= 500 {
		// The provider may have taken the message before failing.
		err = fmt.Errorf("%w: %w", holdfast.ErrOutcomeUnknown, err)
	}
	v := classify.Classify(classify.Input{
		Provider:   string(c.cfg.Provider),
		Surface:    c.cfg.Surface,
		HTTPStatus: resp.Status,
		Header:     resp.Header,
		Raw:        string(resp.Body),
		Operation:  r.Op,
	})
	return v.ProviderError(fmt.Errorf("inbox %s: %w", s.Inbox.ID, err))
}

// LookTwice calls look, and when it finds nothing, once more after wait:
// a provider's search index, or its asynchronous send, takes a moment to
// show a sent message. A negative wait looks once. A context that ends
// during the wait is a transport error of operation op.
func (c *Client) LookTwice(ctx context.Context, s *holdfast.Session, op string, wait time.Duration, look func() (bool, error)) (bool, error) {
	for n := 0; ; n++ {
		found, err := look()
		if err != nil || found || n > 0 || wait < 0 {
			return found, err
		}
		select {
		case <-ctx.Done():
			return false, c.TransportError(s, Request{Op: op}, ctx.Err())
		case <-time.After(wait):
		}
	}
}

// TransportError classifies err, for a request r that got no answer. For
// a submission, only a failed dial is a clear outcome.
func (c *Client) TransportError(s *holdfast.Session, r Request, err error) error {
	v := classify.Classify(classify.Input{Provider: string(c.cfg.Provider), Surface: c.cfg.Surface, Err: err, Operation: r.Op})
	if r.Send && !dialFailed(err) {
		err = fmt.Errorf("%w: %w", holdfast.ErrOutcomeUnknown, err)
	}
	return v.ProviderError(fmt.Errorf("%s %s for inbox %s: %w", c.cfg.Name, r.Op, s.Inbox.ID, err))
}

// BadAnswer classifies err, for a 2xx answer to operation op that holdfast
// cannot read: recoverable, reason unknown.
func (c *Client) BadAnswer(s *holdfast.Session, op string, err error) error {
	v := classify.Classify(classify.Input{Provider: string(c.cfg.Provider), Surface: c.cfg.Surface, Err: err, Operation: op})
	return v.ProviderError(fmt.Errorf("inbox %s: %w", s.Inbox.ID, err))
}

// dialFailed reports whether err happened before a connection existed, so
// that the request cannot have reached the server.
func dialFailed(err error) bool {
	if oe, ok := errors.AsType[*net.OpError](err); ok {
		return oe.Op == "dial"
	}
	return false
}

package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/provider/smtp"
)

// The classify operations of the Graph calls.
const (
	opDelta      = "messages.delta"
	opSendMail   = "sendMail"
	opListSearch = "messages.list"
	opMe         = "me"
)

// request is one Graph call.
type request struct {
	op     string // the classify operation
	method string
	url    string
	header http.Header
	body   []byte
	// send marks a submission: a failure whose outcome is unclear wraps
	// smtp.ErrOutcomeUnknown.
	send bool
}

// response is a successful Graph answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// APIError is a Graph error answer, without secrets: the status and the
// body's error code and message.
type APIError struct {
	Op      string
	Status  int
	Code    string
	Message string
}

// Error implements error.
func (e *APIError) Error() string {
	s := fmt.Sprintf("graph %s: HTTP %d", e.Op, e.Status)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// maxMessage bounds the Graph error message kept in an APIError.
const maxMessage = 300

// do sends r with the session's access token. A 401 invalidates the token
// and retries once with a fresh one (the token endpoint decides whether the
// grant is still good). A 2xx answer is returned; anything else is a
// classified *holdfast.ProviderError.
func (k *Connector) do(ctx context.Context, s *holdfast.Session, r request) (*response, error) {
	for attempt := 0; ; attempt++ {
		tok, err := k.cfg.Tokens.AccessToken(ctx, s)
		if err != nil {
			return nil, err
		}
		resp, err := k.send(ctx, r, tok)
		if err != nil {
			return nil, k.transportError(s, r, err)
		}
		if resp.status >= 200 && resp.status <= 299 {
			return resp, nil
		}
		if resp.status == http.StatusUnauthorized && attempt == 0 {
			k.cfg.Logger.DebugContext(ctx, "graph 401: refreshing the access token and retrying once", "inbox_id", s.Inbox.ID, "op", r.op)
			k.cfg.Tokens.Invalidate(s.Inbox.ID, tok)
			continue
		}
		return nil, k.apiError(s, r, resp, tok)
	}
}

// send makes one HTTP request under the request timeout.
func (k *Connector) send(ctx context.Context, r request, tok string) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, k.cfg.Timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return nil, err
	}
	for key, v := range r.header {
		req.Header[key] = v
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	hr, err := k.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hr.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("graph %s: response body over %d bytes", r.op, maxBody)
	}
	return &response{status: hr.StatusCode, header: hr.Header, body: b}, nil
}

// apiError classifies a non-2xx answer (surface graph).
func (k *Connector) apiError(s *holdfast.Session, r request, resp *response, tok string) error {
	ae := &APIError{Op: r.op, Status: resp.status}
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(resp.body, &body) == nil {
		ae.Code = oauth.Redact(body.Error.Code, tok, s.RefreshToken)
		ae.Message = oauth.Redact(body.Error.Message, tok, s.RefreshToken)
		if len(ae.Message) > maxMessage {
			ae.Message = strings.ToValidUTF8(ae.Message[:maxMessage], "") + "..."
		}
	}
	var err error = ae
	if r.send && resp.status >= 500 {
		// Graph may have taken the message before failing.
		err = fmt.Errorf("%w: %w", smtp.ErrOutcomeUnknown, ae)
	}
	v := classify.Classify(classify.Input{
		Provider:   string(holdfast.ProviderMicrosoft),
		Surface:    classify.SurfaceGraph,
		HTTPStatus: resp.status,
		Header:     resp.header,
		Raw:        string(resp.body),
		Operation:  r.op,
	})
	return providerError(v, fmt.Errorf("inbox %s: %w", s.Inbox.ID, err))
}

// transportError classifies a request that got no answer. For a
// submission, only a failed dial is a clear outcome.
func (k *Connector) transportError(s *holdfast.Session, r request, err error) error {
	v := classify.Classify(classify.Input{Provider: string(holdfast.ProviderMicrosoft), Surface: classify.SurfaceGraph, Err: err, Operation: r.op})
	if r.send && !dialFailed(err) {
		err = fmt.Errorf("%w: %w", smtp.ErrOutcomeUnknown, err)
	}
	return providerError(v, fmt.Errorf("graph %s for inbox %s: %w", r.op, s.Inbox.ID, err))
}

// dialFailed reports whether err happened before a connection existed, so
// that the request cannot have reached the server.
func dialFailed(err error) bool {
	if oe, ok := errors.AsType[*net.OpError](err); ok {
		return oe.Op == "dial"
	}
	return false
}

// providerError wraps err with a verdict.
func providerError(v classify.Verdict, err error) *holdfast.ProviderError {
	return &holdfast.ProviderError{
		Class:           v.Class,
		Reason:          v.Reason,
		Scope:           v.Scope,
		Action:          v.Action,
		RetryAfter:      v.RetryAfter,
		OutageSensitive: v.OutageSensitive,
		UserMessage:     v.UserMessage,
		Err:             err,
	}
}

package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// The limits of one delivery attempt.
const (
	// DefaultTimeout bounds one attempt, from dialling to the end of the
	// answer.
	DefaultTimeout = 10 * time.Second
	// maxResponseBody is the most of an answer's body read (and dropped).
	maxResponseBody = 64 << 10
	// userAgent names holdfast to receivers.
	userAgent = "holdfast-webhooks/1"
)

// Sender POSTs events to webhooks: one attempt per Send, signed, within a
// timeout, through the Guard, without following redirects or using proxies
// from the environment (a proxy would dial the endpoint for us, unchecked).
// It is safe for concurrent use.
type Sender struct {
	client *http.Client
}

// NewSender returns a Sender whose attempts reach only the addresses g
// allows and last at most timeout (zero means DefaultTimeout).
func NewSender(g *Guard, timeout time.Duration) *Sender {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: g.Control}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Sender{client: &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a 3xx is the answer: not a success
		},
	}}
}

// Result is the outcome of one attempt.
type Result struct {
	// StatusCode is the endpoint's status, or 0 when it did not answer.
	StatusCode int
	// Err is why there is no answer (transport error, timeout, refused
	// address), or nil.
	Err      error
	Duration time.Duration
}

// OK reports whether the endpoint answered 2xx.
func (r Result) OK() bool { return r.Err == nil && r.StatusCode >= 200 && r.StatusCode < 300 }

// Gone reports whether the endpoint answered 410 Gone: it asks never to
// be called again.
func (r Result) Gone() bool { return r.Err == nil && r.StatusCode == http.StatusGone }

// Send POSTs payload, the JSON of event eventID of type eventType, to
// endpoint, signed with secret at now.
func (s *Sender) Send(ctx context.Context, endpoint string, secret []byte, eventID, eventType string, payload []byte, now time.Time) Result {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return Result{Err: fmt.Errorf("build request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(EventIDHeader, eventID)
	req.Header.Set(EventTypeHeader, eventType)
	req.Header.Set(SignatureHeader, Sign(secret, now, payload))
	resp, err := s.client.Do(req)
	if err != nil {
		return Result{Err: cleanError(err), Duration: time.Since(start)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseBody))
	resp.Body.Close()
	return Result{StatusCode: resp.StatusCode, Duration: time.Since(start)}
}

// cleanError drops the *url.Error wrapper, which repeats the method and
// the URL; ErrRefusedAddress stays visible to errors.Is.
func cleanError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// Close closes the Sender's idle connections.
func (s *Sender) Close() { s.client.CloseIdleConnections() }

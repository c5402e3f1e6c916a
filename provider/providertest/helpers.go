package providertest

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
)

// Logs is an io.Writer for a slog handler that tests read while the
// connector writes.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Clock is a settable time source for the emulator; the token cache keeps
// real time, so that the emulator can expire a token the cache still
// holds.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock that reads now.
func NewClock(now time.Time) *Clock {
	return &Clock{now: now}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// AssertNoSecret fails if a secret appears in err's text, its user
// message or the logs.
func AssertNoSecret(t testing.TB, err error, logs string, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("error text holds a secret: %v", err)
		}
		if pe, ok := errors.AsType[*holdfast.ProviderError](err); ok && strings.Contains(pe.UserMessage, secret) {
			t.Errorf("user message holds a secret: %q", pe.UserMessage)
		}
		if strings.Contains(logs, secret) {
			t.Errorf("logs hold a secret:\n%s", logs)
		}
	}
}

// ProviderError returns err as a *holdfast.ProviderError, failing the
// test now if it is not one and later if it has no UserMessage.
func ProviderError(t testing.TB, err error) *holdfast.ProviderError {
	t.Helper()
	pe, ok := errors.AsType[*holdfast.ProviderError](err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *holdfast.ProviderError", err, err)
	}
	if pe.UserMessage == "" {
		t.Errorf("ProviderError has no UserMessage: %v", err)
	}
	return pe
}

// Listen listens on a free port of 127.0.0.1 for the rest of the test,
// with TLS from the first byte when implicitTLS is set (and tlsConfig is
// not nil).
func Listen(t testing.TB, tlsConfig *tls.Config, implicitTLS bool) (ln net.Listener, port int) {
	t.Helper()
	var err error
	if tlsConfig != nil && implicitTLS {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsConfig)
	} else {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// SilentServer serves a port of 127.0.0.1 that accepts connections and
// never says a word, for the rest of the test, and returns the port.
func SilentServer(t testing.TB) int {
	t.Helper()
	ln, port := Listen(t, nil, false)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return port
}

// Rotations records the refresh tokens a session's OnTokenRotated is
// handed. It is safe for concurrent use.
type Rotations struct {
	mu     sync.Mutex
	tokens []string
}

// Track sets s.OnTokenRotated to record into r.
func (r *Rotations) Track(s *holdfast.Session) {
	s.OnTokenRotated = func(_ context.Context, rt string) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tokens = append(r.tokens, rt)
		return nil
	}
}

// Tokens returns the refresh tokens recorded so far, oldest first.
func (r *Rotations) Tokens() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.tokens)
}

// Listener is a fake server serving a port of 127.0.0.1 for the rest of a
// test; the fakes embed it.
type Listener struct {
	// Host and Port locate the server (127.0.0.1 and an ephemeral port).
	Host string
	Port int

	ln  net.Listener
	srv interface{ Close() error }
	// served is closed once srv.Serve returned.
	served chan struct{}
}

// Serve serves srv on a free port, with TLS from the first byte when
// implicitTLS is set (and tlsConfig is not nil), and stops it when the
// test ends.
func Serve(t testing.TB, srv interface {
	Serve(net.Listener) error
	Close() error
}, tlsConfig *tls.Config, implicitTLS bool) Listener {
	t.Helper()
	ln, port := Listen(t, tlsConfig, implicitTLS)
	l := Listener{Host: "127.0.0.1", Port: port, ln: ln, srv: srv, served: make(chan struct{})}
	go func() {
		defer close(l.served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(l.Stop)
	return l
}

// Addr returns host:port.
func (l *Listener) Addr() string { return net.JoinHostPort(l.Host, strconv.Itoa(l.Port)) }

// Stop closes the listener and every connection. It is idempotent.
func (l *Listener) Stop() {
	// Serve may not have registered the listener yet, so close it here
	// too; closing it ends Serve, which is waited for before the server
	// closes, so that Close never runs beside a Serve still starting (a
	// race the detector reported in the server-down test).
	_ = l.ln.Close()
	if l.served != nil {
		<-l.served
	}
	_ = l.srv.Close()
}

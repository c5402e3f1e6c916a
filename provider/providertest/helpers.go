package providertest

import (
	"bytes"
	"errors"
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

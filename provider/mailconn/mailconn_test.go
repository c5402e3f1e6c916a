package mailconn_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/mailconn"
	"github.com/holdfast/holdfast/provider/providertest"
)

// classified stands in for a connector's classifier: it records the
// provider it was asked for.
type classified struct {
	provider string
	err      error
}

func (c *classified) Error() string { return c.provider + ": " + c.err.Error() }
func (c *classified) Unwrap() error { return c.err }

func options(token bool) mailconn.Options {
	return mailconn.Options{
		Protocol: "imap", DialTimeout: time.Second, Token: token, AllowPrivate: true,
		Classify: func(provider string, err error) error { return &classified{provider, err} },
	}
}

func TestDial(t *testing.T) {
	t.Parallel()
	port := providertest.SilentServer(t)
	for _, tc := range []struct {
		name     string
		server   holdfast.ServerConfig
		token    bool
		wantErr  string // empty: Dial succeeds
		provider string
	}{
		{"plain", holdfast.ServerConfig{Host: "127.0.0.1", Port: port, Security: holdfast.SecurityNone}, false, "", "generic"},
		{"STARTTLS is the protocol's", holdfast.ServerConfig{Host: "127.0.0.1", Port: port, Security: holdfast.SecurityStartTLS}, false, "", "generic"},
		{"unknown security", holdfast.ServerConfig{Host: "127.0.0.1", Port: port, Security: "ssl3"}, false,
			fmt.Sprintf(`imap connect at 127.0.0.1:%d: unknown security "ssl3"`, port), "generic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := mailconn.Dial(t.Context(), &tc.server, options(tc.token))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Dial = %v", err)
				}
				defer c.Close()
				if c.Provider != tc.provider || c.TLSConfig.ServerName != "127.0.0.1" || c.Addr != fmt.Sprintf("127.0.0.1:%d", port) {
					t.Errorf("Dial = provider %q, ServerName %q, Addr %s", c.Provider, c.TLSConfig.ServerName, c.Addr)
				}
				return
			}
			ce, ok := errors.AsType[*classified](err)
			if !ok || ce.provider != tc.provider || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Dial error = %v, want classified for %s with %q", err, tc.provider, tc.wantErr)
			}
		})
	}
}

// Fail puts the context's cause first once the context is done.
func TestFail(t *testing.T) {
	t.Parallel()
	port := providertest.SilentServer(t)
	c, err := mailconn.Dial(t.Context(), &holdfast.ServerConfig{Host: "127.0.0.1", Port: port, Security: holdfast.SecurityNone}, options(false))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = c.Fail(ctx, "greeting", errors.New("use of closed network connection"))
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "generic: imap greeting at ") {
		t.Errorf("Fail = %v, want the classified step with context.Canceled", err)
	}
}

package gmail_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
	"github.com/holdfast/holdfast/provider/gmail"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/provider/providertest"
)

// consentSetup starts an emulator holding user's mailbox and connects it
// the way holdfast's consent flow does: AuthCodeURL with scopes (empty:
// oauth.GoogleScopes), the emulator's consent for user, Exchange. The
// session holds the new grant's refresh token, not CreateAccount's.
func consentSetup(t *testing.T, scopes []string) *bundle {
	t.Helper()
	emu, urls := emulatortest.StartConfig(t, emulator.Config{})
	if _, err := emu.CreateAccount(emulator.Account{Provider: emulator.Google, Email: user}); err != nil {
		t.Fatal(err)
	}
	src, err := oauth.New(oauth.Config{
		Provider: holdfast.ProviderGoogle, BaseURL: urls.GoogleOAuth, AuthURL: urls.GoogleOAuth + "/o/oauth2/v2/auth",
		ClientID: emulator.DefaultClientID, ClientSecret: emulator.DefaultClientSecret,
		RedirectURL: "https://holdfast.test/oauth/callback", Scopes: scopes, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	client := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(src.AuthCodeURL("st", verifier) + "&login_hint=" + url.QueryEscape(user))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("consent = %d, Location %q; want a redirect with a code", resp.StatusCode, resp.Header.Get("Location"))
	}
	rt, err := src.Exchange(t.Context(), "inb_gmail", loc.Query().Get("code"), verifier)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	conn, err := gmail.New(gmail.Config{BaseURL: urls.Gmail, Tokens: src, Timeout: 5 * time.Second, FindSentWait: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{emu: emu, conn: conn, sess: &holdfast.Session{
		Inbox:        &holdfast.Inbox{ID: "inb_gmail", Email: user, Provider: holdfast.ProviderGoogle},
		RefreshToken: rt,
	}}
}

// TestGoogleScopesSuffice: a grant of exactly oauth.GoogleScopes allows
// everything the connector does, now that the emulator holds Gmail to the
// token's scopes: getProfile (Verify), messages.list and messages.get
// (Sync's backfill), history.list (Sync's increments), messages.send and
// messages.list with a search (FindSent).
func TestGoogleScopesSuffice(t *testing.T) {
	t.Parallel()
	b := consentSetup(t, nil)
	ctx := t.Context()
	if err := b.conn.Verify(ctx, b.sess); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	first := b.deliver(t, 2)
	res, err := b.conn.Sync(ctx, b.sess, "")
	if err != nil || len(res.Messages) != 2 || res.Messages[0].InternetMessageID == "" {
		t.Fatalf("Sync (backfill) = %v, %v; want %v with their metadata", providertest.ProviderIDs(res.Messages), err, reversed(first))
	}
	next := b.deliver(t, 1)
	res, err = b.conn.Sync(ctx, b.sess, res.Cursor)
	if err != nil || len(res.Messages) != 1 || res.Messages[0].ProviderID != next[0] {
		t.Fatalf("Sync (history) = %v, %v; want %v", providertest.ProviderIDs(res.Messages), err, next)
	}
	const id = "<scope_01@gmail.test>"
	if err := b.conn.Send(ctx, b.sess, outgoing(id)); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if found, err := b.conn.FindSent(ctx, b.sess, id); err != nil || !found {
		t.Fatalf("FindSent = %v, %v; want true", found, err)
	}
}

// TestMissingScope: a grant without a reading scope makes Verify fail with
// Gmail's 403 insufficientPermissions, which is permanent for the account
// and asks the owner to reconnect (and grant the scope); without
// gmail.send, Send fails the same way.
func TestMissingScope(t *testing.T) {
	t.Parallel()
	const gm = "https://www.googleapis.com/auth/gmail."
	for _, tt := range []struct {
		name   string
		scopes []string
		call   func(b *bundle) error
	}{
		{"Verify without gmail.readonly", []string{gm + "send"}, func(b *bundle) error { return b.conn.Verify(t.Context(), b.sess) }},
		{"Sync without gmail.readonly", []string{gm + "send"}, func(b *bundle) error {
			_, err := b.conn.Sync(t.Context(), b.sess, "")
			return err
		}},
		{"Send without gmail.send", []string{gm + "readonly"}, func(b *bundle) error {
			return b.conn.Send(t.Context(), b.sess, outgoing("<scope_02@gmail.test>"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := consentSetup(t, tt.scopes)
			err := tt.call(b)
			pe, ok := errors.AsType[*holdfast.ProviderError](err)
			if !ok || pe.Class != holdfast.ClassPermanent || pe.Reason != holdfast.ReasonInsufficientScope ||
				pe.Scope != holdfast.ScopeAccount || pe.Action != holdfast.ActionReconnect {
				t.Fatalf("error = %#v; want a permanent account-scoped insufficient_scope error asking to reconnect", err)
			}
			if !strings.Contains(err.Error(), "403") {
				t.Errorf("error %q does not mention the 403", err)
			}
		})
	}
}

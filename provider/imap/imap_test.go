package imap_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/imap"
	"github.com/holdfast/holdfast/provider/imap/imaptest"
	"github.com/holdfast/holdfast/provider/providertest"
	"github.com/holdfast/holdfast/provider/smtp/smtptest"
)

const (
	user     = "alice@example.test"
	password = "s3cret-Passw0rd-never-logged"
	token    = "ya29.token-never-logged"
)

// bundle is one test's servers, connector and session.
type bundle struct {
	imapSrv *imaptest.Server
	smtpSrv *smtptest.Server
	conn    *imap.Connector
	sess    *holdfast.Session
	logs    *providertest.Logs
}

type setupOpts struct {
	security holdfast.Security
	cfg      imap.Config
	caps     []goimap.Cap
	// log receives the connector's records; nil: the bundle's logs.
	log *slog.Logger
}

func setup(t *testing.T, o setupOpts) *bundle {
	t.Helper()
	if o.security == "" {
		o.security = holdfast.SecurityNone
	}
	var iopts imaptest.Options
	var sopts smtptest.Options
	if o.security != holdfast.SecurityNone {
		serverTLS, clientTLS := smtptest.NewTLS(t)
		implicit := o.security == holdfast.SecurityTLS
		iopts = imaptest.Options{TLSConfig: serverTLS, ImplicitTLS: implicit}
		sopts = smtptest.Options{TLSConfig: serverTLS, ImplicitTLS: implicit}
		o.cfg.TLSConfig = clientTLS
	}
	iopts.Caps = o.caps
	is := imaptest.Start(t, iopts)
	is.AddUser(t, user, password)
	is.SetToken(user, token)
	ss := smtptest.Start(t, sopts)
	ss.AddUser(user, password)
	ss.SetToken(user, token)
	logs := &providertest.Logs{}
	o.cfg.Logger = o.log
	if o.cfg.Logger == nil {
		o.cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	o.cfg.AllowPrivateHosts = true // the test servers listen on 127.0.0.1
	return &bundle{
		imapSrv: is,
		smtpSrv: ss,
		conn:    imap.New(o.cfg),
		sess: &holdfast.Session{
			Inbox: &holdfast.Inbox{
				ID: "inb_test", Email: user, Username: user, Provider: holdfast.ProviderIMAP,
				IMAP: &holdfast.ServerConfig{Host: is.Host, Port: is.Port, Security: o.security},
				SMTP: &holdfast.ServerConfig{Host: ss.Host, Port: ss.Port, Security: o.security},
			},
			Password: password,
		},
		logs: logs,
	}
}

func rawMessage(i int, body string) []byte {
	return []byte(fmt.Sprintf("From: Bob <bob@example.test>\r\n"+
		"To: alice@example.test\r\n"+
		"Subject: Message %d\r\n"+
		"Message-ID: <m%d@example.test>\r\n"+
		"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"+
		"Content-Type: text/plain; charset=utf-8\r\n"+
		"\r\n%s\r\n", i, i, body))
}

func (b *bundle) deliver(t *testing.T, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		b.imapSrv.Deliver(t, user, "INBOX", rawMessage(i, fmt.Sprintf("Body of message %d.", i)))
	}
}

func TestCommandTimeout(t *testing.T) {
	t.Parallel()
	port := providertest.SilentServer(t)
	for _, sec := range []holdfast.Security{holdfast.SecurityNone, holdfast.SecurityStartTLS} {
		k := imap.New(imap.Config{CommandTimeout: 200 * time.Millisecond, AllowPrivateHosts: true})
		s := &holdfast.Session{
			Inbox:    &holdfast.Inbox{ID: "inb_t", Username: user, IMAP: &holdfast.ServerConfig{Host: "127.0.0.1", Port: port, Security: sec}},
			Password: password,
		}
		start := time.Now()
		err := k.Verify(t.Context(), s)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: Verify took %v despite a 200ms command timeout", sec, d)
		}
		pe := providertest.ProviderError(t, err)
		if pe.Class != holdfast.ClassRecoverable || pe.Reason != holdfast.ReasonProviderTimeout {
			t.Errorf("%s: silent server: %s/%s, want recoverable/provider_timeout (%v)", sec, pe.Class, pe.Reason, err)
		}
	}
}

func TestXOAUTH2(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: imap.Config{
		AccessToken: func(ctx context.Context, s *holdfast.Session) (string, error) { return s.RefreshToken, nil },
	}})
	b.sess.Password = ""
	b.sess.RefreshToken = token // the fake token source hands it out as the access token
	if err := b.conn.Verify(t.Context(), b.sess); err != nil {
		t.Fatalf("Verify with XOAUTH2: %v", err)
	}
	b.sess.RefreshToken = "revoked-token"
	err := b.conn.Verify(t.Context(), b.sess)
	pe := providertest.ProviderError(t, err)
	if pe.Class != holdfast.ClassPermanent || !strings.Contains(err.Error(), "AUTHENTICATIONFAILED") {
		t.Errorf("refused token: %s/%s %v, want permanent with the tagged NO after the empty response", pe.Class, pe.Reason, err)
	}
	providertest.AssertNoSecret(t, err, b.logs.String(), password, token)
}

func TestAccessTokenError(t *testing.T) {
	t.Parallel()
	refused := &holdfast.ProviderError{Class: holdfast.ClassPermanent, Reason: holdfast.ReasonTokenRevoked, UserMessage: "revoked"}
	b := setup(t, setupOpts{cfg: imap.Config{
		AccessToken: func(context.Context, *holdfast.Session) (string, error) { return "", refused },
	}})
	b.sess.Password = ""
	if err := b.conn.Verify(t.Context(), b.sess); !errors.Is(err, refused) {
		t.Errorf("Verify = %v, want the token source's error unchanged", err)
	}
}

func decodeCursor(t *testing.T, c string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(c), &m); err != nil {
		t.Fatalf("cursor %q is not JSON: %v", c, err)
	}
	return m
}

// ids returns the messages' Message-IDs, in order.
var ids = providertest.MessageIDs

// TestSyncCursor: the cursor records the UIDVALIDITY and the highest UID
// synced, and a ProviderID is mailbox/UIDVALIDITY/UID.
func TestSyncCursor(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.deliver(t, 0, 3)
	res, err := b.conn.Sync(t.Context(), b.sess, "")
	if err != nil {
		t.Fatal(err)
	}
	cur := decodeCursor(t, res.Cursor)
	if wantPID := fmt.Sprintf("INBOX/%v/1", cur["uidvalidity"]); res.Messages[0].ProviderID != wantPID {
		t.Errorf("ProviderID = %s, want %s", res.Messages[0].ProviderID, wantPID)
	}
	if cur["uid"] != float64(3) {
		t.Errorf("cursor %s: uid %v, want 3", res.Cursor, cur["uid"])
	}
}

// syncRounds syncs from cursor, at most rounds times while the server has
// more, and returns each round's message count, the messages and the last
// cursor.
func syncRounds(t *testing.T, k *imap.Connector, s *holdfast.Session, cursor string, rounds int) ([]int, []holdfast.Message, string) {
	t.Helper()
	var sizes []int
	var msgs []holdfast.Message
	for range rounds {
		res, err := k.Sync(t.Context(), s, cursor)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(res.Messages))
		msgs = append(msgs, res.Messages...)
		cursor = res.Cursor
		if !res.More {
			break
		}
	}
	return sizes, msgs, cursor
}

func TestSyncBatches(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{cfg: imap.Config{BatchSize: 10}})
	b.deliver(t, 0, 25)
	sizes, msgs, _ := syncRounds(t, b.conn, b.sess, "", 5)
	all := ids(msgs)
	if fmt.Sprint(sizes) != "[10 10 5]" {
		t.Errorf("batch sizes = %v, want [10 10 5]", sizes)
	}
	if len(all) != 25 || all[0] != "<m0@example.test>" || all[24] != "<m24@example.test>" {
		t.Errorf("synced %d messages %v, want m0..m24 in order", len(all), all)
	}
}

func outgoing(id string) *holdfast.OutgoingMessage {
	return &holdfast.OutgoingMessage{
		MessageID: id,
		From:      "Alice <" + user + ">",
		To:        []string{"bob@example.test"},
		Bcc:       []string{"dave@example.test"},
		Subject:   "Hello",
		Text:      "Hi Bob.",
		HTML:      "<p>Hi Bob.</p>",
		Date:      time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
	}
}

func TestSendFindsSentByName(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.imapSrv.CreateMailbox(t, user, "Sent Items")
	const id = "<send-3@holdfast.test>"
	if err := b.conn.Send(t.Context(), b.sess, outgoing(id)); err != nil {
		t.Fatal(err)
	}
	if n := b.imapSrv.Count(t, user, "Sent Items", id); n != 1 {
		t.Errorf("Sent Items holds %d copies, want 1", n)
	}
}

func TestStatusLine(t *testing.T) {
	t.Parallel()
	got := imap.StatusLine(&goimap.Error{Type: goimap.StatusResponseTypeNo, Code: goimap.ResponseCodeAuthenticationFailed, Text: "Authentication failed."})
	if want := "NO [AUTHENTICATIONFAILED] Authentication failed."; got != want {
		t.Errorf("StatusLine = %q, want %q", got, want)
	}
}

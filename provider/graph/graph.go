// Package graph is holdfast's connector for Microsoft 365 and Outlook.com
// mailboxes (provider "microsoft") through Microsoft Graph's mail API.
//
// Access tokens come from package provider/oauth (the Microsoft identity
// platform), cached per inbox; a 401 refreshes the token and retries the
// request once. Sync runs Graph delta on the inbox folder and stores the
// round's @odata.deltaLink as the cursor (or, for a round left unfinished,
// its @odata.nextLink); an expired delta token (410 Gone) starts a new
// round from the start with SyncResult.Reset set. Send submits the RFC 5322
// message built by provider/smtp, with the Message-ID fixed when the send
// was accepted, as MIME to /me/sendMail, which files a copy in Sent Items;
// FindSent looks the Message-ID up with $filter=internetMessageId.
//
// Every error for a provider outcome is a *holdfast.ProviderError
// classified by package classify (surface graph, or token for the token
// endpoint) from the status, the Retry-After header and the body; a
// request that got no answer is classified as a transport error. The
// connector never sleeps on Retry-After: the verdict carries it. Tokens
// never appear in errors or logs.
//
// The Go API of this package is not stable.
package graph

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/bearer"
	"github.com/holdfast/holdfast/provider/smtp"
)

// Connector implements holdfast.Connector with Microsoft Graph. It keeps
// no connection between calls and is safe for concurrent use.
type Connector struct {
	cfg    Config
	client *bearer.Client
	base   *url.URL // Graph's root
	api    string   // base + "/v1.0"
}

var _ holdfast.Connector = (*Connector)(nil)

// New returns a Connector with cfg's zero fields set to their defaults, or
// an error naming a bad field.
func New(cfg Config) (*Connector, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := bearer.New(cfg.client())
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(cfg.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("graph config: BaseURL: %w", err)
	}
	return &Connector{cfg: cfg, client: client, base: base, api: cfg.BaseURL + "/v1.0"}, nil
}

// Verify gets an access token (refreshing it if needed) and lists the
// newest inbox message's id, a cheap call that needs the mail permission
// (GET /me would need User.Read).
func (k *Connector) Verify(ctx context.Context, s *holdfast.Session) error {
	_, err := k.client.Do(ctx, s, bearer.Request{Op: opListSearch, Method: http.MethodGet, URL: k.api + "/me/mailFolders/inbox/messages?$top=1&$select=id"})
	return err
}

// Send submits m with POST /me/sendMail as MIME: the RFC 5322 message of
// smtp.BuildMessage (Message-ID fixed at accept), with a Bcc header when
// there are Bcc recipients (Exchange takes the recipients from the header
// and drops Bcc from what it delivers), base64-encoded with Content-Type
// text/plain. Graph answers 202 Accepted and saves a copy to Sent Items
// (the default for MIME sends).
//
// A failure after the request may have reached Graph (a timeout, a reset,
// a 5xx) wraps holdfast.ErrOutcomeUnknown: look with FindSent before sending
// again. A 4xx or 429 is a clear refusal.
func (k *Connector) Send(ctx context.Context, s *holdfast.Session, m *holdfast.OutgoingMessage) error {
	raw, err := smtp.BuildMessageBcc(m)
	if err != nil {
		return err
	}
	body := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(body, raw)
	_, err = k.client.Do(ctx, s, bearer.Request{
		Op: opSendMail, Method: http.MethodPost, URL: k.api + "/me/sendMail",
		Header: http.Header{"Content-Type": {"text/plain"}},
		Body:   body,
		Send:   true,
	})
	return err
}

// sentFolders are where FindSent looks, in order: sendMail is
// asynchronous, and a message it accepted waits in the Outbox before it is
// filed in Sent Items. A message only ever moves from the first to the
// second, so looking in that order cannot miss one that moves between the
// two lookups.
var sentFolders = []string{"outbox", "sentitems"}

// FindSent reports whether the Outbox or Sent Items holds a message with
// this Message-ID: GET /me/mailFolders/{outbox,sentitems}/messages?
// $filter=internetMessageId eq '<id>'. A message in the Outbox was
// accepted and goes out by itself. When the first look finds nothing
// FindSent looks again after Config.FindSentWait; the copy may still take
// up to SentLag to appear, which the send worker waits out.
func (k *Connector) FindSent(ctx context.Context, s *holdfast.Session, messageID string) (bool, error) {
	if messageID == "" {
		return false, errors.New("graph FindSent: empty Message-ID")
	}
	q := url.Values{}
	q.Set("$filter", "internetMessageId eq '"+strings.ReplaceAll(messageID, "'", "''")+"'")
	q.Set("$select", "id")
	q.Set("$top", "1")
	query := strings.ReplaceAll(q.Encode(), "+", "%20")
	return k.client.LookTwice(ctx, s, opListSearch, k.cfg.FindSentWait, func() (bool, error) {
		for _, folder := range sentFolders {
			found, err := k.holds(ctx, s, k.api+"/me/mailFolders/"+folder+"/messages?"+query)
			if found || err != nil {
				return found, err
			}
		}
		return false, nil
	})
}

// holds reports whether the message list at u has a message.
func (k *Connector) holds(ctx context.Context, s *holdfast.Session, u string) (bool, error) {
	resp, err := k.client.Do(ctx, s, bearer.Request{Op: opListSearch, Method: http.MethodGet, URL: u})
	if err != nil {
		return false, err
	}
	var list struct {
		Value []json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(resp.Body, &list); err != nil {
		return false, k.badPage(s, fmt.Errorf("graph messages list: %w", err))
	}
	return len(list.Value) > 0, nil
}

// SentLag returns Config.SentLag: how long after an unclear sendMail
// FindSent may still miss the message. The send worker does not send
// again before FindSent has found nothing this long after the attempt.
func (k *Connector) SentLag() time.Duration { return k.cfg.SentLag }

// Account returns the address of the mailbox the session's grant signs in
// to: GET /me's mail, or its userPrincipalName when mail is empty. The
// consent flow checks it against the address the user asked to connect.
// Errors are classified like Verify's.
func (k *Connector) Account(ctx context.Context, s *holdfast.Session) (string, error) {
	resp, err := k.client.Do(ctx, s, bearer.Request{Op: opMe, Method: http.MethodGet, URL: k.api + "/me?$select=mail,userPrincipalName"})
	if err != nil {
		return "", err
	}
	var me struct {
		Mail              string `json:"mail"`
		UserPrincipalName string `json:"userPrincipalName"`
	}
	if err := json.Unmarshal(resp.Body, &me); err != nil || me.Mail+me.UserPrincipalName == "" {
		return "", k.badPage(s, fmt.Errorf("graph /me without mail or userPrincipalName: %v", err))
	}
	if me.Mail != "" {
		return me.Mail, nil
	}
	return me.UserPrincipalName, nil
}

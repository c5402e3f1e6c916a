// Package gmail is holdfast's connector for Gmail and Google Workspace
// mailboxes (provider "google") through the Gmail API.
//
// Access tokens come from package provider/oauth (Google's token
// endpoint), cached per inbox; a 401 refreshes the token and retries the
// request once. The first Sync of an inbox takes the mailbox's current
// historyId from the profile and fetches its most recent INBOX messages
// (messages.list, bounded by Config.BackfillLimit); later syncs follow
// users.history.list (messageAdded, label INBOX) from the stored historyId
// and fetch each new message's metadata (messages.get, format=metadata). A
// historyId Gmail no longer keeps (history.list 404) starts over with
// SyncResult.Reset set. Send submits the RFC 5322 message built by
// provider/smtp, with the Message-ID fixed when the send was accepted, with
// messages.send; FindSent searches for it with q=rfc822msgid:.
//
// Every error for a provider outcome is a *holdfast.ProviderError
// classified by package classify (surface gmail with the call as
// Input.Operation, or google_token for the token endpoint) from the
// status, the Retry-After header and the body; a request that got no answer
// is classified as a transport error. The connector never sleeps on
// Retry-After: the verdict carries it. Tokens never appear in errors or
// logs.
//
// The Go API of this package is not stable.
package gmail

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/bearer"
	"github.com/holdfast/holdfast/provider/smtp"
)

// Connector implements holdfast.Connector with the Gmail API. It keeps no
// connection between calls and is safe for concurrent use.
type Connector struct {
	cfg    Config
	client *bearer.Client
	api    string // BaseURL + "/gmail/v1/users/me"
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
	return &Connector{cfg: cfg, client: client, api: cfg.BaseURL + "/gmail/v1/users/me"}, nil
}

// profile is users.getProfile's answer.
type profile struct {
	EmailAddress string `json:"emailAddress"`
	HistoryID    string `json:"historyId"`
}

// profile reads the mailbox's profile.
func (k *Connector) profile(ctx context.Context, s *holdfast.Session) (*profile, error) {
	resp, err := k.client.Do(ctx, s, bearer.Request{Op: opProfile, Method: http.MethodGet, URL: k.api + "/profile"})
	if err != nil {
		return nil, err
	}
	var p profile
	if err := json.Unmarshal(resp.Body, &p); err != nil || p.HistoryID == "" {
		return nil, k.client.BadAnswer(s, opProfile, fmt.Errorf("gmail profile without a historyId: %v", err))
	}
	return &p, nil
}

// Verify gets an access token (refreshing it if needed) and reads the
// mailbox's profile (users.getProfile, one quota unit).
func (k *Connector) Verify(ctx context.Context, s *holdfast.Session) error {
	_, err := k.profile(ctx, s)
	return err
}

// Send submits m with messages.send: {"raw": base64url of the RFC 5322
// message of smtp.BuildMessage (Message-ID fixed at accept)}, with a Bcc
// header when there are Bcc recipients (Gmail takes the recipients from
// the header and drops Bcc from what it delivers). Gmail files the message
// in Sent (label SENT).
//
// A failure after the request may have reached Gmail (a timeout, a reset,
// a 5xx) wraps holdfast.ErrOutcomeUnknown: look with FindSent before sending
// again. A 4xx or 429 is a clear refusal.
func (k *Connector) Send(ctx context.Context, s *holdfast.Session, m *holdfast.OutgoingMessage) error {
	raw, err := smtp.BuildMessageBcc(m)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"raw": base64.URLEncoding.EncodeToString(raw)})
	if err != nil {
		return fmt.Errorf("gmail send: %w", err)
	}
	_, err = k.client.Do(ctx, s, bearer.Request{
		Op: opSend, Method: http.MethodPost, URL: k.api + "/messages/send",
		Header: http.Header{"Content-Type": {"application/json"}},
		Body:   body,
		Send:   true,
	})
	return err
}

// FindSent reports whether the mailbox holds a sent message with this
// Message-ID: messages.list with q="rfc822msgid:<id> in:sent", trash and
// spam included (a sent copy the user deleted still went out). When the
// first search finds nothing, FindSent searches again after
// Config.FindSentWait, for the search index to catch up.
func (k *Connector) FindSent(ctx context.Context, s *holdfast.Session, messageID string) (bool, error) {
	id := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(messageID), "<"), ">")
	if id == "" || strings.ContainsAny(id, " \t\r\n\"") {
		return false, fmt.Errorf("gmail FindSent: Message-ID %q cannot be searched for", messageID)
	}
	q := url.Values{}
	q.Set("q", "rfc822msgid:"+id+" in:sent")
	q.Set("maxResults", "1")
	q.Set("includeSpamTrash", "true")
	u := k.api + "/messages?" + q.Encode()
	return k.client.LookTwice(ctx, s, opList, k.cfg.FindSentWait, func() (bool, error) {
		resp, err := k.client.Do(ctx, s, bearer.Request{Op: opList, Method: http.MethodGet, URL: u})
		if err != nil {
			return false, err
		}
		var list listAnswer
		if err := json.Unmarshal(resp.Body, &list); err != nil {
			return false, k.client.BadAnswer(s, opList, fmt.Errorf("gmail messages.list: %w", err))
		}
		return len(list.Messages) > 0, nil
	})
}

// SentLag returns Config.SentLag: how long after an unclear messages.send
// a search may still miss the message. The send worker does not send
// again before FindSent has found nothing this long after the attempt.
func (k *Connector) SentLag() time.Duration { return k.cfg.SentLag }

// Account returns the address of the mailbox the session's grant signs in
// to: the profile's emailAddress (users.getProfile). The consent flow
// checks it against the address the user asked to connect. Errors are
// classified like Verify's.
func (k *Connector) Account(ctx context.Context, s *holdfast.Session) (string, error) {
	p, err := k.profile(ctx, s)
	if err != nil {
		return "", err
	}
	if p.EmailAddress == "" {
		return "", k.client.BadAnswer(s, opProfile, fmt.Errorf("gmail profile without an emailAddress"))
	}
	return p.EmailAddress, nil
}

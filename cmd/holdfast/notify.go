package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/webhook"
)

// notifier makes the status links, signed with the signing keys, and the
// notify pipeline, which mails notices through --notify-smtp-url or,
// without it, as the notice.sent webhook event alone (channel "webhook"),
// which is written to the outbox with the notice's sent; onSent is told
// after.
func notifier(cfg *config.Config, keys *signingKeys, store notify.Store, onSent func(context.Context, notify.Sent), log *slog.Logger) (*notify.Notifier, *notify.Links, error) {
	links, err := notify.NewLinks(keys.linkKeys()[0], cfg.PublicURL, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := keys.useFor(links); err != nil {
		return nil, nil, err
	}
	tmpl, err := notify.LoadTemplates(cfg.TemplatesDir)
	if err != nil {
		return nil, nil, fmt.Errorf("--templates-dir: %w", err)
	}
	nlog := log.With("component", "notify")
	nc := notify.Config{
		Store: store, Templates: tmpl, Links: links, Logger: nlog, Clock: holdfast.SystemClock{},
		Announce: func(s notify.Sent) ([]holdfast.OutboxEvent, error) {
			return webhook.NoticeEvents(noticeEvent(s), s.SentAt)
		},
		OnSent: onSent,
	}
	if cfg.NotifySMTPURL != "" {
		relay, err := notify.ParseSMTPURL(cfg.NotifySMTPURL)
		if err != nil {
			return nil, nil, fmt.Errorf("--notify-smtp-url: %w", err)
		}
		tlsConfig, err := mailTLSConfig(cfg)
		if err != nil {
			return nil, nil, err
		}
		nc.Mailer, nc.From, nc.Resolved = notify.NewSMTPMailer(relay, tlsConfig, nlog), cfg.NotifyFrom, cfg.NotifyResolved
		nlog.Info("notices are mailed", "relay", relay.String(), "from", cfg.NotifyFrom, "resolved_follow_up", cfg.NotifyResolved)
	} else {
		nlog.Info("notices are not mailed (no --notify-smtp-url): each one that passes its checks is sent as a notice.sent webhook event, channel webhook, for your application to tell the owner")
	}
	n, err := notify.New(nc)
	if err != nil {
		return nil, nil, err
	}
	return n, links, nil
}

// mailTLSConfig trusts --mail-ca-file's certificates besides the system's,
// or returns nil (the system roots) without it.
func mailTLSConfig(cfg *config.Config) (*tls.Config, error) {
	if cfg.MailCAFile == "" {
		return nil, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(cfg.MailCAFile)
	if err != nil {
		return nil, fmt.Errorf("--mail-ca-file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--mail-ca-file: no PEM certificate in %s", cfg.MailCAFile)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, nil
}

// noticeEvent is the notice.sent webhook event of a notice email.
func noticeEvent(s notify.Sent) webhook.NoticeData {
	d := webhook.NoticeData{Recipient: s.Recipient, Template: s.Template, Channel: s.Channel, StatusURL: s.StatusURL,
		ExpiresAt: s.Expires, SentAt: s.SentAt}
	for _, in := range s.Inboxes {
		act := holdfast.RequireReconnect
		if in.Admin {
			act = holdfast.RequireAdmin
		}
		d.Inboxes = append(d.Inboxes, webhook.NoticeInboxData{NoticeID: in.NoticeID, InboxID: in.ID, Email: in.Email,
			Provider: holdfast.Provider(in.Provider), ActionRequired: act, Reason: in.Reason, Message: in.Message})
	}
	return d
}

// Package imap is holdfast's connector for mailboxes on any IMAP server
// (provider "imap"), with mail sent through the inbox's SMTP submission
// server by package provider/smtp.
//
// Sync reads INBOX by UID: the cursor holds the mailbox's UIDVALIDITY and
// the highest UID returned, and each Sync fetches the next batch of UIDs
// above it. A changed UIDVALIDITY starts over from the first message with
// SyncResult.Reset set. Where the server offers CONDSTORE the cursor also
// holds the mailbox's HIGHESTMODSEQ, and each Sync returns again the
// messages already synced whose flags changed since (UID FETCH ...
// (CHANGEDSINCE modseq)). Send submits over SMTP and then appends the very same
// bytes to the Sent folder (found by SPECIAL-USE \Sent, then by common
// names, created as "Sent" if missing), where FindSent looks for a message by
// its Message-ID; unless the submission server files its own copy there
// (Gmail, Microsoft 365, Postfix with sender_bcc_maps), which the connector
// learns per host on the first send.
//
// Every error for a provider outcome is a *holdfast.ProviderError classified
// by package classify (surface imap or smtp); the connector never changes an
// inbox's state itself. Passwords and tokens never appear in errors or logs.
//
// The Go API of this package is not stable.
package imap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/smtp"
	"github.com/holdfast/holdfast/provider/xoauth2"
)

// inbox is the one mailbox Sync reads.
const inbox = "INBOX"

// Connector implements holdfast.Connector for IMAP and SMTP servers. It
// keeps no connection between calls and is safe for concurrent use.
type Connector struct {
	cfg  Config
	smtp *smtp.Client
	// files remembers, per SMTP host, whether the server files a copy of
	// submitted mail in Sent by itself (true) or not (false).
	files sync.Map
}

var _ holdfast.Connector = (*Connector)(nil)

// New returns a Connector with cfg's zero fields set to their defaults.
func New(cfg Config) *Connector {
	cfg = cfg.withDefaults()
	return &Connector{
		cfg: cfg,
		smtp: smtp.New(smtp.Config{
			TLSConfig:         cfg.TLSConfig,
			DialTimeout:       cfg.DialTimeout,
			CommandTimeout:    cfg.CommandTimeout,
			SubmissionTimeout: cfg.SubmissionTimeout,
			Logger:            cfg.Logger,
			AllowPrivateHosts: cfg.AllowPrivateHosts,
		}),
	}
}

// Verify signs in to the IMAP server and, when the inbox has one, to the
// SMTP server. It returns the first failure, classified.
func (k *Connector) Verify(ctx context.Context, s *holdfast.Session) error {
	c, err := k.dial(ctx, s)
	if err != nil {
		return err
	}
	c.close()
	if s.Inbox.SMTP == nil {
		return nil
	}
	cred, err := k.smtpCredentials(ctx, s)
	if err != nil {
		return err
	}
	return k.smtp.Verify(ctx, s.Inbox.SMTP, cred)
}

// Sync returns the INBOX messages with UIDs above the cursor's, at most
// Config.BatchSize of them, oldest first; More is set when others wait. An
// unreadable cursor or a changed UIDVALIDITY starts over from the first
// message and sets Reset.
//
// Where the server offers CONDSTORE (RFC 7162) it also returns, before the
// new ones, the messages at or below the cursor's UID whose flags (or other
// metadata) changed since the cursor's mod-sequence: again with their
// ProviderID and all their metadata, so that the store updates them. At
// most Config.BatchSize of those too, lowest mod-sequence first, with More
// set when others wait. Without CONDSTORE flag changes are not seen.
func (k *Connector) Sync(ctx context.Context, s *holdfast.Session, cursorText string) (*holdfast.SyncResult, error) {
	cur, err := parseCursor(cursorText)
	reset := false
	if err != nil {
		k.cfg.Logger.WarnContext(ctx, "imap cursor unreadable, syncing from the start", "inbox_id", s.Inbox.ID, "err", err)
		cur, reset = cursor{V: cursorVersion, Mailbox: inbox}, true
	}
	c, err := k.dial(ctx, s)
	if err != nil {
		return nil, err
	}
	defer c.close()

	var sel *goimap.SelectData
	if err := c.do(ctx, "SELECT "+cur.Mailbox, func() (err error) {
		condStore := c.c.Caps().Has(goimap.CapCondStore)
		sel, err = c.c.Select(cur.Mailbox, &goimap.SelectOptions{ReadOnly: true, CondStore: condStore}).Wait()
		return err
	}); err != nil {
		return nil, err
	}
	if cur.UIDValidity != 0 && cur.UIDValidity != sel.UIDValidity {
		k.cfg.Logger.InfoContext(ctx, "imap UIDVALIDITY changed, syncing from the start",
			"inbox_id", s.Inbox.ID, "mailbox", cur.Mailbox, "old", cur.UIDValidity, "new", sel.UIDValidity)
		reset = true
		cur.UID, cur.ModSeq = 0, 0
	}
	cur.UIDValidity = sel.UIDValidity
	res := &holdfast.SyncResult{Reset: reset}

	// sel.HighestModSeq is zero without CONDSTORE, and for NOMODSEQ.
	changed, modSeq, err := k.changed(ctx, c, cur, sel)
	if err != nil {
		return nil, err
	}
	if modSeq < sel.HighestModSeq {
		res.More = true
	}
	uids, err := k.newUIDs(ctx, c, cur, sel)
	if err != nil {
		return nil, err
	}
	if len(uids) > k.cfg.BatchSize {
		uids, res.More = uids[:k.cfg.BatchSize], true
	}
	bufs, err := c.fetch(ctx, slices.Concat(changed, uids))
	if err != nil {
		return nil, err
	}
	// Changed messages first, then the new ones, each oldest first.
	for _, b := range bufs {
		if _, ok := slices.BinarySearch(changed, b.UID); ok && uint32(b.UID) <= cur.UID {
			res.Messages = append(res.Messages, toMessage(s.Inbox.ID, cur.Mailbox, sel.UIDValidity, b))
		}
	}
	for _, b := range bufs {
		if uint32(b.UID) > cur.UID {
			res.Messages = append(res.Messages, toMessage(s.Inbox.ID, cur.Mailbox, sel.UIDValidity, b))
		}
	}
	if len(uids) > 0 {
		// The batch's last UID, fetched or expunged meanwhile, is done.
		cur.UID = uint32(uids[len(uids)-1])
	}
	cur.ModSeq = modSeq
	res.Cursor = cur.String()
	return res, nil
}

// newUIDs returns the UIDs above the cursor's, in order.
func (k *Connector) newUIDs(ctx context.Context, c *conn, cur cursor, sel *goimap.SelectData) ([]goimap.UID, error) {
	if sel.NumMessages == 0 || (sel.UIDNext != 0 && uint32(sel.UIDNext) <= cur.UID+1) {
		return nil, nil
	}
	// UID SEARCH rather than a range FETCH: UIDs have gaps, and
	// "last+1:*" always matches the highest message even when its UID is
	// not above last (RFC 9051 §6.4.8), so filter.
	var uids []goimap.UID
	if err := c.do(ctx, "UID SEARCH", func() error {
		data, err := c.c.UIDSearch(&goimap.SearchCriteria{
			UID: []goimap.UIDSet{{goimap.UIDRange{Start: goimap.UID(cur.UID + 1), Stop: 0}}},
		}, nil).Wait()
		if err != nil {
			return err
		}
		uids = data.AllUIDs()
		return nil
	}); err != nil {
		return nil, err
	}
	uids = slices.DeleteFunc(uids, func(u goimap.UID) bool { return uint32(u) <= cur.UID })
	slices.Sort(uids)
	return uids, nil
}

// changed returns the UIDs at or below the cursor's whose mod-sequence is
// above the cursor's (UID FETCH 1:uid (MODSEQ) (CHANGEDSINCE modseq)), at
// most BatchSize of them (more when several share the last mod-sequence),
// and the mod-sequence up to which they cover the changes: the mailbox's
// HIGHESTMODSEQ when they are all, else the last one's.
//
// Without mod-sequences (no CONDSTORE, NOMODSEQ) it returns nothing and
// zero. A cursor without a mod-sequence (nothing synced yet, or written
// before CONDSTORE was used) gets the mailbox's HIGHESTMODSEQ: the messages
// still to come are fetched whole, and changes to those already synced
// before now are not looked for.
func (k *Connector) changed(ctx context.Context, c *conn, cur cursor, sel *goimap.SelectData) ([]goimap.UID, uint64, error) {
	highest := sel.HighestModSeq
	if highest == 0 || cur.ModSeq == 0 || cur.UID == 0 || sel.NumMessages == 0 || cur.ModSeq >= highest {
		return nil, highest, nil
	}
	var bufs []*imapclient.FetchMessageBuffer
	if err := c.do(ctx, "UID FETCH CHANGEDSINCE", func() (err error) {
		bufs, err = c.c.Fetch(goimap.UIDSet{{Start: 1, Stop: goimap.UID(cur.UID)}}, &goimap.FetchOptions{
			UID: true, ModSeq: true, ChangedSince: cur.ModSeq,
		}).Collect()
		return err
	}); err != nil {
		return nil, 0, err
	}
	bufs = slices.DeleteFunc(bufs, func(b *imapclient.FetchMessageBuffer) bool {
		return b.UID == 0 || uint32(b.UID) > cur.UID || b.ModSeq <= cur.ModSeq
	})
	slices.SortFunc(bufs, func(a, b *imapclient.FetchMessageBuffer) int {
		return cmp.Or(cmp.Compare(a.ModSeq, b.ModSeq), cmp.Compare(a.UID, b.UID))
	})
	modSeq := highest
	if n := k.cfg.BatchSize; len(bufs) > n {
		for n < len(bufs) && bufs[n].ModSeq == bufs[n-1].ModSeq {
			n++
		}
		if n < len(bufs) {
			bufs, modSeq = bufs[:n], bufs[n-1].ModSeq
		}
	}
	uids := make([]goimap.UID, len(bufs))
	for i, b := range bufs {
		uids[i] = b.UID
	}
	slices.Sort(uids)
	return uids, modSeq, nil
}

// fetch fetches the messages with these UIDs for Sync, in UID order.
func (c *conn) fetch(ctx context.Context, uids []goimap.UID) ([]*imapclient.FetchMessageBuffer, error) {
	if len(uids) == 0 {
		return nil, nil
	}
	var bufs []*imapclient.FetchMessageBuffer
	if err := c.do(ctx, "UID FETCH", func() (err error) {
		bufs, err = c.c.Fetch(goimap.UIDSetNum(uids...), fetchOptions).Collect()
		return err
	}); err != nil {
		return nil, err
	}
	slices.SortFunc(bufs, func(a, b *imapclient.FetchMessageBuffer) int { return cmp.Compare(a.UID, b.UID) })
	return bufs, nil
}

// snippetHeader and snippetText are the body sections Sync fetches for
// snippets.
var (
	snippetHeader = &goimap.FetchItemBodySection{
		Specifier:    goimap.PartSpecifierHeader,
		HeaderFields: []string{"Content-Type", "Content-Transfer-Encoding"},
		Peek:         true,
	}
	snippetText = &goimap.FetchItemBodySection{
		Specifier: goimap.PartSpecifierText,
		Partial:   &goimap.SectionPartial{Offset: 0, Size: snippetFetchBytes},
		Peek:      true,
	}
	fetchOptions = &goimap.FetchOptions{
		UID:          true,
		Flags:        true,
		Envelope:     true,
		InternalDate: true,
		BodySection:  []*goimap.FetchItemBodySection{snippetHeader, snippetText},
	}
)

// ProviderID returns the stable identifier of a message:
// "mailbox/UIDVALIDITY/UID", such as "INBOX/1700000000/42".
func ProviderID(mailbox string, uidValidity uint32, uid goimap.UID) string {
	return fmt.Sprintf("%s/%d/%d", mailbox, uidValidity, uid)
}

// toMessage converts one fetched message.
func toMessage(inboxID, mailbox string, uidValidity uint32, b *imapclient.FetchMessageBuffer) holdfast.Message {
	m := holdfast.Message{
		InboxID:    inboxID,
		ProviderID: ProviderID(mailbox, uidValidity, b.UID),
		ReceivedAt: b.InternalDate,
	}
	if env := b.Envelope; env != nil {
		if env.MessageID != "" {
			m.InternetMessageID = "<" + env.MessageID + ">"
		}
		m.Subject = env.Subject
		if from := addrs(env.From); len(from) > 0 {
			m.From = from[0]
		}
		m.To = addrs(env.To)
		m.Cc = addrs(env.Cc)
	}
	for _, f := range b.Flags {
		m.Flags = append(m.Flags, string(f))
	}
	var header, text []byte
	for _, sec := range b.BodySection {
		switch sec.Section.Specifier {
		case goimap.PartSpecifierHeader:
			header = sec.Bytes
		case goimap.PartSpecifierText:
			text = sec.Bytes
		}
	}
	m.Snippet = snippet(header, text)
	return m
}

func addrs(list []goimap.Address) []string {
	var out []string
	for _, a := range list {
		if s := a.Addr(); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Send submits m through the inbox's SMTP server and then appends the same
// bytes to the Sent folder, marked \Seen, so that FindSent finds it. Gmail's
// SMTP files the Sent copy itself, so no copy is appended there; nor where
// the server is seen to file one (see serverFiled).
//
// An SMTP failure is returned classified; one whose outcome is unclear
// wraps holdfast.ErrOutcomeUnknown. Once the server accepted the message Send
// succeeds: a failed append is logged, not returned, because retrying the
// send would deliver the message twice.
func (k *Connector) Send(ctx context.Context, s *holdfast.Session, m *holdfast.OutgoingMessage) error {
	raw, err := smtp.BuildMessage(m)
	if err != nil {
		return err
	}
	from, rcpts, err := smtp.Envelope(m)
	if err != nil {
		return err
	}
	cred, err := k.smtpCredentials(ctx, s)
	if err != nil {
		return err
	}
	if err := k.smtp.SendRaw(ctx, s.Inbox.SMTP, cred, from, rcpts, raw); err != nil {
		return err
	}
	if s.Inbox.SMTP != nil && xoauth2.ProviderForHost(s.Inbox.SMTP.Host) == "google" {
		return nil
	}
	if k.serverFiled(ctx, s, m.MessageID) {
		return nil
	}
	if err := k.appendSent(ctx, s, raw, m); err != nil {
		k.cfg.Logger.WarnContext(ctx, "imap append to Sent failed after the message was sent",
			"inbox_id", s.Inbox.ID, "message_id", m.MessageID, "err", err)
	}
	return nil
}

// serverFiled reports whether the submission server filed its own copy of
// the message just sent in Sent, as Microsoft 365 and Postfix with
// sender_bcc_maps do, so that appending one would make two. The first send
// through a host looks for the copy for up to Config.SentCopyWait (a
// server files it a moment after accepting the message) and remembers the
// answer for the host; later sends trust it.
func (k *Connector) serverFiled(ctx context.Context, s *holdfast.Session, messageID string) bool {
	if s.Inbox.SMTP == nil || k.cfg.SentCopyWait < 0 {
		return false
	}
	host := s.Inbox.SMTP.Host
	if v, ok := k.files.Load(host); ok {
		return v.(bool)
	}
	deadline := time.Now().Add(k.cfg.SentCopyWait)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		found, err := k.FindSent(ctx, s, messageID)
		if err != nil {
			// Unknown: append, and ask again on the next send.
			k.cfg.Logger.DebugContext(ctx, "imap: could not look for the server's Sent copy", "inbox_id", s.Inbox.ID, "err", err)
			return false
		}
		if found {
			k.files.Store(host, true)
			k.cfg.Logger.InfoContext(ctx, "imap: the submission server files sent mail itself; not appending to Sent", "smtp_host", host)
			return true
		}
		if time.Now().Add(wait).After(deadline) {
			k.files.Store(host, false)
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// smtpCredentials returns the session's SMTP sign-in.
func (k *Connector) smtpCredentials(ctx context.Context, s *holdfast.Session) (smtp.Credentials, error) {
	cred, err := k.credentials(ctx, s)
	if err != nil {
		return smtp.Credentials{}, err
	}
	return smtp.Credentials{Username: cred.username, Password: cred.password, AccessToken: cred.token}, nil
}

// appendSent appends raw to the Sent folder, creating it if needed.
func (k *Connector) appendSent(ctx context.Context, s *holdfast.Session, raw []byte, m *holdfast.OutgoingMessage) error {
	c, err := k.dial(ctx, s)
	if err != nil {
		return err
	}
	defer c.close()
	sent, err := c.sentMailbox(ctx, true)
	if err != nil {
		return err
	}
	return c.do(ctx, "APPEND "+sent, func() error {
		cmd := c.c.Append(sent, int64(len(raw)), &goimap.AppendOptions{
			Flags: []goimap.Flag{goimap.FlagSeen},
			Time:  m.Date,
		})
		if _, err := cmd.Write(raw); err != nil {
			_ = cmd.Close()
			return err
		}
		if err := cmd.Close(); err != nil {
			return err
		}
		_, err := cmd.Wait()
		return err
	})
}

// sentNames are the Sent folder names tried, in order, when no mailbox has
// the \Sent special-use attribute.
var sentNames = []string{"Sent", "Sent Items", "Sent Messages", "Sent Mail", "INBOX.Sent", "INBOX/Sent", "[Gmail]/Sent Mail"}

// errNoSent means the account has no Sent folder.
var errNoSent = errors.New("imap: no Sent folder")

// sentMailbox finds the Sent folder: the mailbox with the \Sent
// special-use attribute (RFC 6154), else the first of sentNames that exists
// (case-insensitively). With create it creates "Sent" when there is none
// (marked \Sent where the server allows); without, it returns errNoSent.
func (c *conn) sentMailbox(ctx context.Context, create bool) (string, error) {
	var list []*goimap.ListData
	if err := c.do(ctx, "LIST", func() (err error) {
		var opts *goimap.ListOptions
		if c.c.Caps().Has(goimap.CapSpecialUse) {
			opts = &goimap.ListOptions{ReturnSpecialUse: true}
		}
		list, err = c.c.List("", "*", opts).Collect()
		return err
	}); err != nil {
		return "", err
	}
	for _, l := range list {
		if slices.Contains(l.Attrs, goimap.MailboxAttrSent) {
			return l.Mailbox, nil
		}
	}
	for _, name := range sentNames {
		for _, l := range list {
			if strings.EqualFold(l.Mailbox, name) && !slices.Contains(l.Attrs, goimap.MailboxAttrNoSelect) {
				return l.Mailbox, nil
			}
		}
	}
	if !create {
		return "", errNoSent
	}
	const name = "Sent"
	if err := c.do(ctx, "CREATE "+name, func() error {
		var opts *goimap.CreateOptions
		if c.c.Caps().Has(goimap.CapCreateSpecialUse) {
			opts = &goimap.CreateOptions{SpecialUse: []goimap.MailboxAttr{goimap.MailboxAttrSent}}
		}
		return c.c.Create(name, opts).Wait()
	}); err != nil {
		return "", err
	}
	return name, nil
}

// FindSent reports whether the Sent folder holds a message with this
// Message-ID (UID SEARCH HEADER Message-ID). An account without a Sent
// folder has sent nothing through holdfast.
func (k *Connector) FindSent(ctx context.Context, s *holdfast.Session, messageID string) (bool, error) {
	if messageID == "" {
		return false, errors.New("imap FindSent: empty Message-ID")
	}
	c, err := k.dial(ctx, s)
	if err != nil {
		return false, err
	}
	defer c.close()
	sent, err := c.sentMailbox(ctx, false)
	if errors.Is(err, errNoSent) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var found bool
	err = c.do(ctx, "SEARCH in "+sent, func() error {
		if _, err := c.c.Select(sent, &goimap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
			return err
		}
		data, err := c.c.UIDSearch(&goimap.SearchCriteria{
			Header: []goimap.SearchCriteriaHeaderField{{Key: "Message-ID", Value: messageID}},
		}, nil).Wait()
		if err != nil {
			return err
		}
		found = len(data.AllUIDs()) > 0
		return nil
	})
	return found, err
}

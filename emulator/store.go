package emulator

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"time"
)

// Account describes a mailbox to create.
type Account struct {
	Provider Provider `json:"provider"`
	Email    string   `json:"email"`
	// Tenant is the Entra tenant (or Workspace domain) the mailbox belongs
	// to; faults can be scoped to it. Default: the address's domain.
	Tenant string `json:"tenant"`
}

// Mail is a message to deliver into a mailbox.
type Mail struct {
	To      string `json:"to"`
	From    string `json:"from"`
	Subject string `json:"subject"`
	Text    string `json:"text"`
	// MessageID is the Internet Message-ID, with angle brackets.
	// Default: a fresh one.
	MessageID string `json:"message_id,omitempty"`
}

// Delivery identifies a delivered message.
type Delivery struct {
	ID        string `json:"id"`         // the provider's message ID
	MessageID string `json:"message_id"` // the Internet Message-ID
}

// SentMessage records one accepted send call.
type SentMessage struct {
	Provider  Provider  `json:"provider"`
	ID        string    `json:"id"` // the sent copy's provider ID, if one was stored
	From      string    `json:"from"`
	To        []string  `json:"to"`
	Cc        []string  `json:"cc,omitempty"`
	Bcc       []string  `json:"bcc,omitempty"`
	Subject   string    `json:"subject"`
	Text      string    `json:"text"`
	MessageID string    `json:"message_id"`
	Time      time.Time `json:"time"`
}

// Folders. Gmail sees them as the labels INBOX and SENT.
const (
	folderInbox = "inbox"
	folderSent  = "sentitems"
	// folderOutbox holds sent messages for Config.SentDelay before they
	// reach folderSent. Gmail has no Outbox: there it stands for a SENT
	// message its search does not find yet.
	folderOutbox = "outbox"
)

type account struct {
	provider Provider
	email    string
	tenant   string
	grants   []*grant // oldest first, at most maxGrants

	change   uint64 // last change number (Gmail history id, Graph delta position)
	floor    uint64 // change numbers below it are expired cursors
	gen      uint64 // bumped by ExpireSyncState; delta tokens carry it
	messages []*message
	byID     map[string]*message // allocated with the first message
	sent     []SentMessage
	outbox   int // messages in folderOutbox

	bucket float64 // throttling tokens
	filled time.Time

	// Sync-call bookkeeping for Stats, fixed-size: the Unix nanoseconds of
	// the last two sync calls (lastSync[0] the latest), how many sync calls
	// the mailbox made and how many came within the duplicate window of the
	// one before.
	lastSync [2]int64
	syncs    uint32
	dupSyncs uint32
}

type grant struct {
	id       string
	clientID string
	scope    []string
	offline  bool // refresh tokens are returned
	revoked  bool
	issued   time.Time
}

type message struct {
	change    uint64
	id        string
	threadID  string // "": derived from id by thread
	folder    string
	from      string
	to        []string
	cc        []string
	bcc       []string
	subject   string
	text      string
	messageID string
	received  time.Time
	raw       []byte // RFC 5322 form as submitted; nil: built on demand by rawBytes
	filedAt   int64  // Unix nanoseconds when a message in folderOutbox reaches folderSent
	html      bool
	generated bool // made by the traffic generator: carries X-Emulator-Arrived
}

// rawBytes returns the message's RFC 5322 form: as submitted, or built from
// its fields (delivered messages keep no copy, to stay small).
func (m *message) rawBytes() []byte {
	if m.raw != nil {
		return m.raw
	}
	return buildRaw(m)
}

// normEmail validates and lower-cases a bare address.
func normEmail(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalidf(field, "is required")
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s {
		return "", invalidf(field, "must be a bare email address like user@example.com")
	}
	return strings.ToLower(s), nil
}

func domainOf(email string) string {
	_, d, _ := strings.Cut(email, "@")
	return d
}

// defaultScope is the scope of a grant made by CreateAccount: every scope
// holdfast asks for (provider/oauth's MicrosoftScopes and GoogleScopes) and
// more, so that such a grant can make every call the emulator serves.
// The slice is shared by every such grant and must not be modified.
func defaultScope(p Provider) []string {
	if p == Microsoft {
		return defaultMicrosoftScope
	}
	return defaultGoogleScope
}

var (
	defaultMicrosoftScope = []string{"https://graph.microsoft.com/Mail.ReadWrite", "https://graph.microsoft.com/Mail.Send",
		"https://graph.microsoft.com/User.Read", "https://outlook.office.com/IMAP.AccessAsUser.All",
		"https://outlook.office.com/SMTP.Send", "openid", "profile", "email", "offline_access"}
	defaultGoogleScope = []string{scopeMailGoogle, scopeGmailModify, scopeGmailReadonly, scopeGmailSend, "openid", "email"}
)

// CreateAccount creates the mailbox a, or finds it if it exists for the
// same provider, and gives it a new grant for the configured client. It
// returns the grant's refresh token. It returns an *InvalidError for bad
// input, ErrConflict when the address belongs to the other provider and
// ErrFull when the account table is full.
func (e *Emulator) CreateAccount(a Account) (string, error) {
	if a.Provider != Microsoft && a.Provider != Google {
		return "", invalidf("provider", "must be %q or %q", Microsoft, Google)
	}
	email, err := normEmail("email", a.Email)
	if err != nil {
		return "", err
	}
	tenant := strings.TrimSpace(a.Tenant)
	if tenant == "" {
		tenant = domainOf(email)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	acc := e.accounts[email]
	switch {
	case acc != nil && acc.provider != a.Provider:
		return "", fmt.Errorf("%w: %s is a %s account", ErrConflict, email, acc.provider)
	case acc != nil && a.Tenant != "" && !strings.EqualFold(acc.tenant, tenant):
		return "", fmt.Errorf("%w: %s is in tenant %s", ErrConflict, email, acc.tenant)
	case acc == nil:
		if len(e.accounts) >= e.cfg.MaxAccounts {
			return "", fmt.Errorf("%w: %d accounts", ErrFull, e.cfg.MaxAccounts)
		}
		acc = e.newAccountLocked(a.Provider, email, tenant)
	}
	g := e.newGrantLocked(acc, e.cfg.ClientID, defaultScope(a.Provider), true)
	e.cfg.Logger.Info("emulator: grant created", "provider", acc.provider, "email", acc.email, "tenant", acc.tenant)
	return e.refreshToken(acc, g), nil
}

// newAccountLocked adds an account with no grant; the caller has checked
// that the address is free and the table has room.
func (e *Emulator) newAccountLocked(p Provider, email, tenant string) *account {
	acc := &account{provider: p, email: email, tenant: tenant, change: firstChangeID,
		bucket: max(1, e.cfg.RateLimit), filled: e.now()}
	e.accounts[email] = acc
	e.order = append(e.order, acc)
	return acc
}

// newGrantLocked adds a grant to acc, dropping the oldest beyond maxGrants.
func (e *Emulator) newGrantLocked(acc *account, clientID string, scope []string, offline bool) *grant {
	g := &grant{id: fmt.Sprintf("g%d", e.newIDLocked()), clientID: clientID, scope: scope, offline: offline, issued: e.now()}
	acc.grants = append(acc.grants, g)
	if len(acc.grants) > maxGrants {
		acc.grants = slices.Delete(acc.grants, 0, len(acc.grants)-maxGrants)
	}
	return g
}

func (acc *account) grant(id string) *grant {
	for _, g := range acc.grants {
		if g.id == id {
			return g
		}
	}
	return nil
}

// Revoke revokes every grant of the mailbox: its refresh and access tokens
// fail from now on. It returns ErrNotFound for an unknown address.
func (e *Emulator) Revoke(email string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	acc := e.accounts[strings.ToLower(email)]
	if acc == nil {
		return fmt.Errorf("account %s: %w", email, ErrNotFound)
	}
	for _, g := range acc.grants {
		g.revoked = true
	}
	e.cfg.Logger.Info("emulator: grants revoked", "email", acc.email)
	return nil
}

// ExpireSyncState makes every Graph delta or skip token and every Gmail
// history id handed out so far for the mailbox expire, as the providers'
// caches do: Graph answers 410 SyncStateNotFound, Gmail 404 notFound. It
// returns ErrNotFound for an unknown address.
func (e *Emulator) ExpireSyncState(email string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	acc := e.accounts[strings.ToLower(email)]
	if acc == nil {
		return fmt.Errorf("account %s: %w", email, ErrNotFound)
	}
	acc.change++
	acc.floor = acc.change
	acc.gen++
	e.cfg.Logger.Info("emulator: sync state expired", "email", acc.email)
	return nil
}

// Deliver puts m into the inbox of m.To. It returns an *InvalidError for
// bad input, ErrNotFound when m.To has no account and ErrFull when the
// mailbox is full.
func (e *Emulator) Deliver(m Mail) (Delivery, error) {
	to, err := normEmail("to", m.To)
	if err != nil {
		return Delivery{}, err
	}
	from, err := normEmail("from", m.From)
	if err != nil {
		return Delivery{}, err
	}
	if m.MessageID != "" && !validMessageID(m.MessageID) {
		return Delivery{}, invalidf("message_id", "must look like <left@right>")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	acc := e.accounts[to]
	if acc == nil {
		return Delivery{}, &InvalidError{Field: "to", Message: "no mailbox " + to + " (create it first)"}
	}
	msg := &message{folder: folderInbox, from: from, to: []string{to}, subject: m.Subject, text: m.Text,
		messageID: m.MessageID, received: e.now()}
	if err := e.storeLocked(acc, msg); err != nil {
		return Delivery{}, err
	}
	return Delivery{ID: msg.id, MessageID: msg.messageID}, nil
}

func validMessageID(s string) bool {
	return len(s) > 4 && s[0] == '<' && s[len(s)-1] == '>' && strings.Contains(s, "@") && !strings.ContainsAny(s, " \r\n")
}

// storeLocked gives msg its IDs and change number and stores it in acc.
func (e *Emulator) storeLocked(acc *account, msg *message) error {
	if keep := e.cfg.KeepMessages; keep > 0 {
		e.dropOldestLocked(acc, msg.folder, keep-1)
	}
	if len(acc.messages) >= e.cfg.MaxMessages {
		return fmt.Errorf("mailbox %s: %w (%d messages)", acc.email, ErrFull, e.cfg.MaxMessages)
	}
	n := e.newIDLocked()
	if msg.messageID == "" {
		msg.messageID = fmt.Sprintf("<emu.%d.%x@%s>", n, e.key[:4], domainOf(msg.from))
	}
	switch acc.provider {
	case Microsoft:
		msg.id = graphID(prefixGraphMessage, acc.email, n) // thread: the same with prefixGraphThread
	default:
		// Gmail IDs are 16 hex digits; X-GM-MSGID is the same number.
		msg.id = fmt.Sprintf("%016x", 0x18c0000000000000+n) // thread: the same
	}
	acc.change++
	msg.change = acc.change
	acc.messages = append(acc.messages, msg)
	if acc.byID == nil {
		acc.byID = make(map[string]*message, 1)
	}
	acc.byID[msg.id] = msg
	if msg.folder == folderInbox {
		e.stats.delivered++
	}
	return nil
}

// dropOldestLocked forgets the oldest messages of acc's folder until at
// most keep are left in it (Config.KeepMessages; per folder, so that inbound
// traffic does not push sent copies out of Sent Items): they leave listings
// and GETs answer 404, while change numbers, and so delta tokens and
// history ids, carry on.
func (e *Emulator) dropOldestLocked(acc *account, folder string, keep int) {
	n := 0
	for _, m := range acc.messages {
		if m.folder == folder {
			n++
		}
	}
	if n <= keep {
		return
	}
	drop := n - keep
	acc.messages = slices.DeleteFunc(acc.messages, func(m *message) bool {
		if drop == 0 || m.folder != folder {
			return false
		}
		drop--
		delete(acc.byID, m.id)
		if m.folder == folderOutbox {
			acc.outbox--
		}
		return true
	})
}

// Prefixes of Graph message and conversation IDs.
const (
	prefixGraphMessage = "AAMkAGI2"
	prefixGraphThread  = "AAQkAGI2"
)

// thread returns the message's thread (Graph conversation) ID: the one set
// (a Gmail reply's), else for a Graph message its ID with the conversation
// prefix, else its ID, as Gmail starts a thread with its first message's.
// Derived rather than stored, to keep messages small.
func (m *message) thread() string {
	if m.threadID != "" {
		return m.threadID
	}
	if rest, ok := strings.CutPrefix(m.id, prefixGraphMessage); ok {
		return prefixGraphThread + rest
	}
	return m.id
}

// graphID makes an opaque, Exchange-looking ID.
func graphID(prefix, email string, n uint64) string {
	h := sha256.Sum256([]byte(email))
	b := make([]byte, 0, 24)
	b = append(b, h[:16]...)
	b = binary.BigEndian.AppendUint64(b, n)
	return prefix + base64.URLEncoding.EncodeToString(b)
}

// Sent returns what the mailbox has sent, one entry per accepted send call,
// oldest first. It returns ErrNotFound for an unknown address.
func (e *Emulator) Sent(from string) ([]SentMessage, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	acc := e.accounts[strings.ToLower(strings.TrimSpace(from))]
	if acc == nil {
		return nil, fmt.Errorf("account %s: %w", from, ErrNotFound)
	}
	out := make([]SentMessage, len(acc.sent))
	for i, s := range acc.sent {
		s.To, s.Cc, s.Bcc = slices.Clone(s.To), slices.Clone(s.Cc), slices.Clone(s.Bcc)
		out[i] = s
	}
	return out, nil
}

// sendLocked records a send by acc, keeps a copy in its sent folder when
// save is set, and delivers to recipients with accounts here. The caller
// has checked the mailbox's limits with canSendLocked.
func (e *Emulator) sendLocked(acc *account, msg *message, save bool) SentMessage {
	msg.folder = folderSent
	msg.from = acc.email
	msg.received = e.now()
	if e.cfg.SentDelay > 0 && save {
		msg.folder, msg.filedAt = folderOutbox, msg.received.Add(e.cfg.SentDelay).UnixNano()
		acc.outbox++
	}
	s := SentMessage{Provider: acc.provider, From: acc.email, To: msg.to, Cc: msg.cc, Bcc: msg.bcc,
		Subject: msg.subject, Text: msg.text, Time: msg.received}
	if save {
		_ = e.storeLocked(acc, msg) // canSendLocked made room
		s.ID = msg.id
	} else if msg.messageID == "" {
		msg.messageID = fmt.Sprintf("<emu.%d.%x@%s>", e.newIDLocked(), e.key[:4], domainOf(acc.email))
	}
	s.MessageID = msg.messageID
	if keep := e.cfg.KeepMessages; keep > 0 && len(acc.sent) >= keep {
		acc.sent = slices.Delete(acc.sent, 0, len(acc.sent)-keep+1)
	}
	acc.sent = append(acc.sent, s)
	e.countSendLocked(s.MessageID)
	for _, rcpt := range slices.Concat(msg.to, msg.cc, msg.bcc) {
		if r := e.accounts[strings.ToLower(rcpt)]; r != nil {
			in := *msg
			in.folder, in.id, in.threadID = folderInbox, "", ""
			_ = e.storeLocked(r, &in) // a full recipient mailbox drops the message, as a bounce would
		}
	}
	return s
}

// fileSentLocked moves the messages of acc's Outbox whose SentDelay has
// passed to its sent folder, each as a new change (Graph gives a moved
// message a new change key; delta on Sent Items reports it then).
func (e *Emulator) fileSentLocked(acc *account) {
	if acc.outbox == 0 {
		return
	}
	now := e.now()
	var filed []*message
	acc.messages = slices.DeleteFunc(acc.messages, func(m *message) bool {
		if m.folder != folderOutbox || now.UnixNano() < m.filedAt {
			return false
		}
		filed = append(filed, m)
		return true
	})
	for _, m := range filed {
		m.folder = folderSent
		acc.change++
		m.change = acc.change
		acc.messages = append(acc.messages, m)
		acc.outbox--
	}
}

// canSendLocked reports whether acc has room for one more send (and its
// sent copy, when save is set).
func (e *Emulator) canSendLocked(acc *account, save bool) bool {
	if e.cfg.KeepMessages > 0 {
		return true // the oldest records and messages make room
	}
	if len(acc.sent) >= e.cfg.MaxMessages {
		return false
	}
	return !save || len(acc.messages) < e.cfg.MaxMessages
}

// folderMessages returns up to limit of acc's messages in folder with
// change numbers in (after, upto], oldest first; folder "" means any.
func (acc *account) folderMessages(folder string, after, upto uint64, limit int) []*message {
	i, _ := slices.BinarySearchFunc(acc.messages, after+1, func(m *message, c uint64) int {
		return cmpUint(m.change, c)
	})
	var out []*message
	for _, m := range acc.messages[i:] {
		if m.change > upto {
			break
		}
		if folder == "" || m.folder == folder {
			out = append(out, m)
			if len(out) == limit {
				break
			}
		}
	}
	return out
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Package imaptest runs an in-memory IMAP server for tests of holdfast's
// IMAP connector: go-imap's imapmemserver behind a session that also speaks
// XOAUTH2 (with Gmail's error challenge), can refuse sign-ins with chosen
// responses, and can change a mailbox's UIDVALIDITY.
//
// It is a fake at the wire level, not a mock. Tests that need a real server
// use provider/mailtest (Dovecot).
//
// The Go API of this package is not stable.
package imaptest

import (
	"bytes"
	"crypto/tls"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/holdfast/holdfast/provider/providertest"
	"github.com/holdfast/holdfast/provider/xoauth2"
)

// Server is one running in-memory IMAP server.
type Server struct {
	// Listener locates the server (Host, Port, Addr) and stops it.
	providertest.Listener

	mem *imapmemserver.Server
	srv *imapserver.Server

	mu    sync.Mutex
	users map[string]*user
	// LoginErr, if set, is returned to every sign-in instead of checking
	// credentials (for example an *imap.Error with code UNAVAILABLE).
	loginErr error
}

type user struct {
	mem       *imapmemserver.User
	password  string
	token     string
	delivered map[string][][]byte // per mailbox, for ResetUIDValidity
}

// Options configure Start.
type Options struct {
	// TLSConfig, if set, makes the server speak implicit TLS when
	// ImplicitTLS is true, and offer STARTTLS otherwise.
	TLSConfig   *tls.Config
	ImplicitTLS bool
	// Caps are extra capabilities to announce (UIDPLUS is always there).
	Caps []imap.Cap
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{mem: imapmemserver.New(), users: map[string]*user{}}
	caps := imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}}
	for _, c := range opts.Caps {
		caps[c] = struct{}{}
	}
	o := &imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &session{Session: s.mem.NewSession(), srv: s}, nil, nil
		},
		Caps:         caps,
		Logger:       discardLogger{},
		InsecureAuth: opts.TLSConfig == nil,
	}
	if !opts.ImplicitTLS {
		o.TLSConfig = opts.TLSConfig
	}
	s.srv = imapserver.New(o)
	s.Listener = providertest.Serve(t, s.srv, opts.TLSConfig, opts.ImplicitTLS)
	return s
}

// AddUser adds a user with a password and an empty INBOX.
func (s *Server) AddUser(t testing.TB, username, password string) {
	t.Helper()
	u := imapmemserver.NewUser(username, password)
	if err := u.Create("INBOX", nil); err != nil {
		t.Fatalf("imaptest: create INBOX: %v", err)
	}
	s.mem.AddUser(u)
	s.mu.Lock()
	s.users[username] = &user{mem: u, password: password, delivered: map[string][][]byte{}}
	s.mu.Unlock()
}

// SetToken sets the XOAUTH2 access token the user signs in with.
func (s *Server) SetToken(username, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[username].token = token
}

// SetLoginError makes every sign-in fail with err (nil restores checking).
func (s *Server) SetLoginError(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginErr = err
}

// CreateMailbox creates a mailbox for the user.
func (s *Server) CreateMailbox(t testing.TB, username, mailbox string) {
	t.Helper()
	if err := s.user(t, username).mem.Create(mailbox, nil); err != nil {
		t.Fatalf("imaptest: create %s: %v", mailbox, err)
	}
}

// Deliver appends raw to the user's mailbox.
func (s *Server) Deliver(t testing.TB, username, mailbox string, raw []byte) {
	t.Helper()
	u := s.user(t, username)
	if _, err := u.mem.Append(mailbox, literal{bytes.NewReader(raw)}, &imap.AppendOptions{Time: time.Now()}); err != nil {
		t.Fatalf("imaptest: deliver to %s: %v", mailbox, err)
	}
	s.mu.Lock()
	u.delivered[mailbox] = append(u.delivered[mailbox], raw)
	s.mu.Unlock()
}

// ResetUIDValidity deletes and recreates the mailbox with the same
// messages, so that it gets a new UIDVALIDITY and new UIDs.
func (s *Server) ResetUIDValidity(t testing.TB, username, mailbox string) {
	t.Helper()
	u := s.user(t, username)
	if err := u.mem.Delete(mailbox); err != nil {
		t.Fatalf("imaptest: delete %s: %v", mailbox, err)
	}
	if err := u.mem.Create(mailbox, nil); err != nil {
		t.Fatalf("imaptest: create %s: %v", mailbox, err)
	}
	s.mu.Lock()
	msgs := u.delivered[mailbox]
	u.delivered[mailbox] = nil
	s.mu.Unlock()
	for _, raw := range msgs {
		s.Deliver(t, username, mailbox, raw)
	}
}

// Count returns how many messages in the mailbox carry the Message-ID
// (with angle brackets).
func (s *Server) Count(t testing.TB, username, mailbox, messageID string) int {
	t.Helper()
	u := s.user(t, username)
	sess := imapmemserver.NewUserSession(u.mem)
	defer sess.Close()
	if _, err := sess.Select(mailbox, &imap.SelectOptions{ReadOnly: true}); err != nil {
		t.Fatalf("imaptest: select %s: %v", mailbox, err)
	}
	data, err := sess.Search(imapserver.NumKindUID, &imap.SearchCriteria{
		Header: []imap.SearchCriteriaHeaderField{{Key: "Message-Id", Value: messageID}},
	}, &imap.SearchOptions{})
	if err != nil {
		t.Fatalf("imaptest: search %s: %v", mailbox, err)
	}
	return len(data.AllUIDs())
}

func (s *Server) user(t testing.TB, username string) *user {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[username]
	if !ok {
		t.Fatalf("imaptest: no user %q", username)
	}
	return u
}

type literal struct{ *bytes.Reader }

func (l literal) Size() int64 { return l.Reader.Size() }

// session adds PLAIN and XOAUTH2 and the forced sign-in error to a memory
// server session.
type session struct {
	imapserver.Session
	srv *Server
}

var _ imapserver.SessionSASL = (*session)(nil)

// Login implements imapserver.Session.
func (s *session) Login(username, password string) error {
	s.srv.mu.Lock()
	err := s.srv.loginErr
	s.srv.mu.Unlock()
	if err != nil {
		return err
	}
	return s.Session.Login(username, password)
}

// AuthenticateMechanisms implements imapserver.SessionSASL.
func (s *session) AuthenticateMechanisms() []string {
	return []string{sasl.Plain, xoauth2.Mechanism}
}

// Authenticate implements imapserver.SessionSASL.
func (s *session) Authenticate(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return imapserver.ErrAuthFailed
			}
			return s.Login(username, password)
		}), nil
	case xoauth2.Mechanism:
		return xoauth2.NewServer(func(username, token string) error {
			s.srv.mu.Lock()
			u, ok := s.srv.users[username]
			forced := s.srv.loginErr
			s.srv.mu.Unlock()
			if forced != nil {
				return forced
			}
			if !ok || u.token == "" || token != u.token {
				return imapserver.ErrAuthFailed
			}
			return s.Session.Login(username, u.password)
		}), nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "Unsupported mechanism"}
}

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// ErrUnavailable is the response a server sends when its authentication
// backend is down; pass it to SetLoginError.
var ErrUnavailable error = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "Authentication service unavailable"}

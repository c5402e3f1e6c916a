// Package smtptest runs an in-memory SMTP submission server for tests of
// holdfast's SMTP client and IMAP connector: go-smtp's server with AUTH
// PLAIN and XOAUTH2 (with the error challenge), a log of accepted messages,
// and a hook to reject or stall the reply to a message's data.
//
// It is a fake at the wire level, not a mock. Tests that need a real server
// use provider/mailtest.
//
// The Go API of this package is not stable.
package smtptest

import (
	"crypto/tls"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/holdfast/holdfast/provider/providertest"
	"github.com/holdfast/holdfast/provider/xoauth2"
)

// Message is one accepted submission.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Server is one running submission server.
type Server struct {
	// Listener locates the server (Host, Port, Addr) and stops it.
	providertest.Listener

	srv *smtp.Server

	mu       sync.Mutex
	users    map[string]string // username → password
	tokens   map[string]string // username → access token
	messages []Message
	// dataFunc is the hook set by SetDataFunc.
	dataFunc func(m Message) error
}

// Options configure Start.
type Options struct {
	// TLSConfig, if set, makes the server speak implicit TLS when
	// ImplicitTLS is true, and offer STARTTLS otherwise.
	TLSConfig   *tls.Config
	ImplicitTLS bool
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{users: map[string]string{}, tokens: map[string]string{}}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &session{srv: s}, nil
	}))
	s.srv.Domain = "localhost"
	s.srv.AllowInsecureAuth = opts.TLSConfig == nil
	s.srv.ReadTimeout = 10 * time.Second
	s.srv.WriteTimeout = 10 * time.Second
	s.srv.ErrorLog = discardLogger{}
	if !opts.ImplicitTLS {
		s.srv.TLSConfig = opts.TLSConfig
	}
	s.Listener = providertest.Serve(t, s.srv, opts.TLSConfig, opts.ImplicitTLS)
	return s
}

// AddUser adds a user who signs in with a password.
func (s *Server) AddUser(username, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[username] = password
}

// SetToken sets the XOAUTH2 access token the user signs in with.
func (s *Server) SetToken(username, token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[username] = token
}

// SetDataFunc sets a hook run when a message's data has been read, before
// the reply: a returned error (an *smtp.SMTPError) becomes the reply, and a
// sleep stalls it.
func (s *Server) SetDataFunc(f func(m Message) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dataFunc = f
}

// Messages returns the accepted messages, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

type session struct {
	srv  *Server
	auth bool
	msg  Message
}

var _ smtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain, xoauth2.Mechanism} }

func (s *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, username, password string) error {
			s.srv.mu.Lock()
			want, ok := s.srv.users[username]
			s.srv.mu.Unlock()
			if !ok || password != want || identity != "" && identity != username {
				return smtp.ErrAuthFailed
			}
			s.auth = true
			return nil
		}), nil
	case xoauth2.Mechanism:
		return xoauth2.NewServer(func(username, token string) error {
			s.srv.mu.Lock()
			want, ok := s.srv.tokens[username]
			s.srv.mu.Unlock()
			if !ok || token != want {
				return smtp.ErrAuthFailed
			}
			s.auth = true
			return nil
		}), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if !s.auth {
		return smtp.ErrAuthRequired
	}
	s.msg = Message{From: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.Data = b
	s.srv.mu.Lock()
	f := s.srv.dataFunc
	s.srv.mu.Unlock()
	if f != nil {
		if err := f(s.msg); err != nil {
			return err
		}
	}
	s.srv.mu.Lock()
	s.srv.messages = append(s.srv.messages, s.msg)
	s.srv.mu.Unlock()
	return nil
}

func (s *session) Reset() { s.msg = Message{} }

func (s *session) Logout() error { return nil }

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

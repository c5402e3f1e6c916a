// Package mailtest runs private instances of real mail servers for tests:
// Dovecot for IMAP and Postfix for SMTP submission, both from Debian's
// packages. The IMAP and SMTP connector tests and the end-to-end drills use
// it to talk to the real thing instead of a fake.
//
// Start gives a test its own pair of servers. Their configuration, mail and
// logs live in t.TempDir(); they listen on free ports of 127.0.0.1 only,
// read nothing from /etc/dovecot or /etc/postfix, and stop at t.Cleanup, so
// tests in parallel, in one package or several, do not see each other.
//
//   - Dovecot serves IMAP with STARTTLS (IMAPAddr; plaintext logins are
//     allowed too) and with implicit TLS (IMAPTLSAddr). Accounts come from
//     passwd-files (one per account, passwords in PLAIN) that AddUser and
//     SetPassword write, also while it runs. Mailboxes are Maildirs, with
//     Drafts, Sent, Trash, Junk and Archive created and marked with their
//     SPECIAL-USE attribute. A failed login is answered with NO
//     [AUTHENTICATIONFAILED] within about half a second: the growing
//     per-IP delay that Dovecot normally adds after repeated failures is
//     turned off.
//   - Postfix serves submission with STARTTLS (SMTPAddr) and with implicit
//     TLS (SMTPTLSAddr). It requires TLS and then AUTH PLAIN or LOGIN, which
//     it checks against Dovecot (Dovecot SASL), and delivers every message
//     over LMTP into the Dovecot mailboxes of the recipients, a few tens of
//     milliseconds after accepting it (see WaitCount). Like Gmail and
//     Microsoft 365 it keeps a copy of what it accepts in the sender's
//     Sent mailbox (sender_bcc_maps to user+Sent@domain, which Dovecot's
//     LMTP files in "Sent"), a moment after accepting it too. It accepts any
//     recipient domain; for a recipient without an account Dovecot refuses
//     the message, and Postfix's bounce lands in the sender's INBOX if the
//     sender has an account. Nothing ever leaves the machine.
//   - The TLS certificate is made for 127.0.0.1 and localhost by a throwaway
//     CA; clients trust it with RootCAs, CAFile or TLSConfig.
//
// Deliver and Append put messages straight into a mailbox; MessageIDs,
// Count and WaitCount look at what a mailbox holds; ResetUIDValidity makes
// a mailbox's UIDVALIDITY change; Stop and Restart take both servers down
// and up again on the same ports, keeping the mail.
//
// The servers are installed by .ci/install-mail-servers, which also creates
// the unprivileged user holdfasttest that Dovecot's mail processes run as.
// Start needs root, because Postfix's master and Dovecot change users. When
// anything is missing, Start skips the test, or fails it when CI=true.
//
// The Go API is not stable.
package mailtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// MailUser is the unprivileged system user that Dovecot's mail processes
// run as; Dovecot refuses to run them as root.
const MailUser = "holdfasttest"

const (
	startTimeout   = 15 * time.Second
	stopGrace      = 250 * time.Millisecond
	stopTimeout    = 5 * time.Second
	commandTimeout = 15 * time.Second
	waitTimeout    = 15 * time.Second
)

// Server is a running pair of private Dovecot and Postfix instances. Its
// methods are safe for concurrent use. The mailbox methods (Deliver,
// Append, MessageIDs, Count, UIDValidity, ResetUIDValidity) use doveadm and
// need the servers to be running.
type Server struct {
	// IMAPAddr is the IMAP listener ("127.0.0.1:port"): plaintext, with
	// STARTTLS offered.
	IMAPAddr string
	// IMAPTLSAddr is the IMAP listener with implicit TLS.
	IMAPTLSAddr string
	// SMTPAddr is the submission listener: STARTTLS is required before
	// AUTH and MAIL.
	SMTPAddr string
	// SMTPTLSAddr is the submission listener with implicit TLS.
	SMTPTLSAddr string
	// RootCAs holds the CA that signed the servers' certificate.
	RootCAs *x509.CertPool
	// CAFile is the path of that CA certificate, PEM-encoded.
	CAFile string
	// Dir holds the servers' configuration, mail and logs.
	Dir string

	env         *environment
	data        configData
	dovecotConf string
	postfixConf string

	mu          sync.Mutex
	passwdStamp time.Time
	dovecot     *proc
	postfix     *proc
}

// Start starts a private Dovecot and Postfix for t and stops them when t
// ends. It skips t, or fails it when CI=true, if the servers are not
// installed or it is not running as root.
func Start(t testing.TB) *Server {
	t.Helper()
	env, err := lookEnvironment()
	if err != nil {
		unavailable(t, err, os.Getenv("CI") == "true")
	}

	s := &Server{env: env, Dir: t.TempDir()}
	// The socket directories get a short path: the sockets' paths must fit
	// in 108 bytes, which a long test name could break under t.TempDir().
	run, err := os.MkdirTemp("", "mailtest")
	if err != nil {
		t.Fatalf("mailtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.logLogs(t)
		}
		// The servers are stopped by now; the queue belongs to no one else.
		if err := os.RemoveAll(run); err != nil {
			t.Errorf("mailtest: remove %s: %v", run, err)
		}
	})
	t.Cleanup(s.Stop)

	if err := s.prepare(run); err != nil {
		t.Fatalf("mailtest: prepare %s: %v", s.Dir, err)
	}
	for attempt := 1; ; attempt++ {
		if err = s.configure(); err != nil {
			t.Fatalf("mailtest: configure: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
		s.Stop()
		// A free port picked for us may have been taken by someone else
		// before the server bound it: pick new ones and try again.
		if attempt == 3 || !s.logsContain("Address already in use") {
			t.Fatalf("mailtest: start: %v", err)
		}
	}
}

// unavailable ends t because the machine cannot run the servers: it fails t
// in CI, where they must be installed, and skips it elsewhere.
func unavailable(t testing.TB, err error, ci bool) {
	t.Helper()
	msg := fmt.Sprintf("mailtest: %v; install the mail servers with `sudo .ci/install-mail-servers` and run the tests as root", err)
	if ci {
		t.Fatal(msg)
	} else {
		t.Skip(msg)
	}
}

// TLSConfig returns a client configuration that trusts the servers'
// certificate when dialling 127.0.0.1.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: s.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// AddUser creates the account email with password. Both servers accept it
// at once, also while running. The address is case-insensitive; the
// password may hold any character but tab, CR, LF and NUL.
func (s *Server) AddUser(t testing.TB, email, password string) {
	t.Helper()
	if err := checkAddress(email); err != nil {
		t.Fatalf("mailtest: AddUser(%q): %v", email, err)
	}
	if err := checkPassword(password); err != nil {
		t.Fatalf("mailtest: AddUser(%q): %v", email, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := os.Stat(s.passwdFile(email)); err == nil {
		t.Fatalf("mailtest: AddUser(%q): user exists", email)
	}
	if err := s.writePasswdFile(email, password); err != nil {
		t.Fatalf("mailtest: AddUser(%q): %v", email, err)
	}
}

// SetPassword changes the password of an existing account. It takes effect
// for the next login; open sessions stay logged in. Dovecot looks for
// changes at most once a second, so SetPassword returns only when the
// next second has begun, which takes half a second on average.
func (s *Server) SetPassword(t testing.TB, email, password string) {
	t.Helper()
	if err := checkPassword(password); err != nil {
		t.Fatalf("mailtest: SetPassword(%q): %v", email, err)
	}
	s.mu.Lock()
	_, err := os.Stat(s.passwdFile(email))
	if err == nil {
		err = s.writePasswdFile(email, password)
	} else {
		err = errors.New("no such user")
	}
	running := s.dovecot != nil
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("mailtest: SetPassword(%q): %v", email, err)
	}
	if running {
		now := time.Now()
		time.Sleep(now.Truncate(time.Second).Add(time.Second + 10*time.Millisecond).Sub(now))
	}
}

// Deliver puts raw, an RFC 5322 message, into the INBOX of to, as if it had
// just arrived. It does not go through Postfix.
func (s *Server) Deliver(t testing.TB, to string, raw []byte) {
	t.Helper()
	s.Append(t, to, "INBOX", raw)
}

// Append puts raw, an RFC 5322 message, into mailbox of the account email,
// e.g. into "Sent" as a mail client that sent it would.
func (s *Server) Append(t testing.TB, email, mailbox string, raw []byte) {
	t.Helper()
	if _, err := s.doveadm(raw, "save", "-u", email, "-m", mailbox); err != nil {
		t.Fatalf("mailtest: append to %s of %s: %v", mailbox, email, err)
	}
}

// MessageIDs returns the Message-ID header of each message in mailbox of
// the account email, in UID order, with angle brackets as in the header; a
// message without one gives "".
func (s *Server) MessageIDs(t testing.TB, email, mailbox string) []string {
	t.Helper()
	ids, err := s.messageIDs(email, mailbox)
	if err != nil {
		t.Fatalf("mailtest: message IDs in %s of %s: %v", mailbox, email, err)
	}
	return ids
}

// Messages returns the messages in mailbox of the account email, in UID
// order, each as its full RFC 5322 text with LF line endings, as Dovecot
// stored it (for mail that arrived through Postfix, with the headers it
// added).
func (s *Server) Messages(t testing.TB, email, mailbox string) [][]byte {
	t.Helper()
	out, err := s.doveadm(nil, "-f", "pager", "fetch", "-u", email, "uid text", "mailbox", mailbox, "all")
	if err != nil {
		t.Fatalf("mailtest: messages in %s of %s: %v", mailbox, email, err)
	}
	var msgs [][]byte
	if out == "" {
		return msgs
	}
	// The pager formatter writes each message as "uid: N\ntext:\n<message>\n",
	// with a form feed line between messages.
	for _, rec := range strings.Split(out, "\n\f\n") {
		_, body, ok := strings.Cut(rec, "\ntext:\n")
		if !ok || !strings.HasPrefix(rec, "uid: ") {
			t.Fatalf("mailtest: messages in %s of %s: unexpected doveadm output %q", mailbox, email, rec)
		}
		msgs = append(msgs, []byte(strings.TrimSuffix(body, "\n")))
	}
	return msgs
}

// Count returns how many messages in mailbox of the account email have the
// Message-ID messageID (with its angle brackets).
func (s *Server) Count(t testing.TB, email, mailbox, messageID string) int {
	t.Helper()
	return count(s.MessageIDs(t, email, mailbox), messageID)
}

// WaitCount waits until mailbox of the account email holds want messages
// with the Message-ID messageID, for mail that Postfix delivers a moment
// after accepting it. It fails t if that does not happen within 15 seconds.
// To check that a message arrived exactly once, wait for 1 and look again
// with Count after whatever could cause a duplicate.
func (s *Server) WaitCount(t testing.TB, email, mailbox, messageID string, want int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ids, err := s.messageIDs(email, mailbox)
		n := count(ids, messageID)
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailtest: %s of %s holds %d messages with Message-ID %s (error %v), want %d", mailbox, email, n, messageID, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// UIDValidity returns the UIDVALIDITY of mailbox of the account email.
func (s *Server) UIDValidity(t testing.TB, email, mailbox string) uint32 {
	t.Helper()
	v, err := s.uidValidity(email, mailbox)
	if err != nil {
		t.Fatalf("mailtest: UIDVALIDITY of %s of %s: %v", mailbox, email, err)
	}
	return v
}

// ResetUIDValidity gives mailbox of the account email a new UIDVALIDITY,
// as a server does when it rebuilds a mailbox, and returns it. The
// messages stay; a client must consider every UID it knows invalid.
func (s *Server) ResetUIDValidity(t testing.TB, email, mailbox string) uint32 {
	t.Helper()
	old, err := s.uidValidity(email, mailbox)
	if err != nil {
		t.Fatalf("mailtest: reset UIDVALIDITY of %s of %s: %v", mailbox, email, err)
	}
	next := old + 1
	if next == 0 {
		next = 1
	}
	if _, err := s.doveadm(nil, "mailbox", "update", "-u", email, "--uid-validity", strconv.FormatUint(uint64(next), 10), mailbox); err != nil {
		t.Fatalf("mailtest: reset UIDVALIDITY of %s of %s: %v", mailbox, email, err)
	}
	got, err := s.uidValidity(email, mailbox)
	if err != nil || got != next {
		t.Fatalf("mailtest: reset UIDVALIDITY of %s of %s: it is %d (error %v), want %d", mailbox, email, got, err, next)
	}
	return got
}

// Stop stops both servers, as an outage would: connections are closed and
// new ones refused. Mail, accounts and queued messages are kept for
// Restart. Stop is idempotent and also runs at t.Cleanup.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range []*proc{s.dovecot, s.postfix} {
		if p != nil {
			wg.Go(p.stop)
		}
	}
	wg.Wait()
	s.dovecot, s.postfix = nil, nil
}

// Restart stops the servers if they run and starts them again on the same
// addresses, with the mail kept.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.Stop()
		t.Fatalf("mailtest: restart: %v", err)
	}
}

// environment is what Start needs from the machine; lookEnvironment finds
// it once per process.
type environment struct {
	dovecot, doveadm, master string
	mailUID, mailGID         int
	postfixUID, postdropGID  int
	dovecotGID               int
	dhFile                   string
}

var lookEnvironment = sync.OnceValues(func() (*environment, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("not running as root")
	}
	env := &environment{}
	var missing []string
	for _, b := range []struct {
		path *string
		name string
		dirs []string
	}{
		{&env.dovecot, "dovecot", []string{"/usr/sbin"}},
		{&env.doveadm, "doveadm", []string{"/usr/bin"}},
		{&env.master, "master", []string{"/usr/lib/postfix/sbin", "/usr/libexec/postfix"}},
	} {
		*b.path = findBinary(b.name, b.dirs)
		if *b.path == "" {
			missing = append(missing, b.name)
		}
	}
	if _, err := os.Stat("/usr/lib/dovecot/lmtp"); err != nil {
		missing = append(missing, "dovecot lmtp")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s not found", strings.Join(missing, ", "))
	}

	var err error
	if env.postfixUID, _, err = lookupUser("postfix"); err != nil {
		return nil, err
	}
	if env.postdropGID, err = lookupGroup("postdrop"); err != nil {
		return nil, err
	}
	if _, env.dovecotGID, err = lookupUser("dovecot"); err != nil {
		return nil, err
	}
	if env.mailUID, env.mailGID, err = lookupUser(MailUser); err != nil {
		// The install script creates it; a machine set up by hand may not
		// have it yet.
		out, addErr := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", MailUser).CombinedOutput()
		if env.mailUID, env.mailGID, err = lookupUser(MailUser); err != nil {
			return nil, fmt.Errorf("create user %s: %v: %s", MailUser, addErr, bytes.TrimSpace(out))
		}
	}
	if _, err := os.Stat("/usr/share/dovecot/dh.pem"); err == nil {
		env.dhFile = "/usr/share/dovecot/dh.pem"
	}
	return env, nil
})

// findBinary looks for name in PATH, then in dirs.
func findBinary(name string, dirs []string) string {
	if name != "master" { // too generic a name to take from PATH
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

func lookupUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", name, err)
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", name, err)
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("user %s: %w", name, err)
	}
	return uid, gid, nil
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("group %s: %w", name, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("group %s: %w", name, err)
	}
	return gid, nil
}

// prepare makes the certificate and the directories, with the owners
// and modes that the servers' unprivileged processes need.
func (s *Server) prepare(run string) error {
	c, err := newCerts()
	if err != nil {
		return err
	}
	s.RootCAs = c.pool
	s.CAFile = filepath.Join(s.Dir, "ca.pem")
	d := configData{
		Dir:        s.Dir,
		RunDir:     filepath.Join(run, "dovecot"),
		Queue:      filepath.Join(run, "postfix"),
		Users:      filepath.Join(s.Dir, "users"),
		MailUID:    s.env.mailUID,
		MailGID:    s.env.mailGID,
		DHFile:     s.env.dhFile,
		CertFile:   filepath.Join(s.Dir, "cert.pem"),
		KeyFile:    filepath.Join(s.Dir, "key.pem"),
		ChainFile:  filepath.Join(s.Dir, "chain.pem"),
		HomePrefix: filepath.Join(s.Dir, "mail"),
	}
	s.data = d
	s.dovecotConf = filepath.Join(s.Dir, "dovecot.conf")
	s.postfixConf = filepath.Join(s.Dir, "postfix")

	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{s.CAFile, c.caPEM, 0o644},
		{d.CertFile, c.certPEM, 0o644},
		{d.KeyFile, c.keyPEM, 0o600},
		{d.ChainFile, slices.Concat(c.keyPEM, c.certPEM), 0o600},
	} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return err
		}
	}

	// The unprivileged processes (Dovecot's auth and mail processes,
	// Postfix's daemons) must get through the test's temporary directories,
	// which testing creates with mode 0700.
	for _, dir := range []string{filepath.Dir(s.Dir), s.Dir, run} {
		if err := os.Chmod(dir, 0o711); err != nil {
			return err
		}
	}
	for _, dir := range []string{filepath.Dir(filepath.Dir(s.Dir)), filepath.Dir(run)} {
		if err := checkSearchable(dir); err != nil {
			return err
		}
	}
	dirs := []struct {
		path     string
		uid, gid int
		mode     os.FileMode
	}{
		{d.HomePrefix, d.MailUID, d.MailGID, 0o700},
		{d.Users, 0, s.env.dovecotGID, 0o750},
		{s.postfixConf, 0, 0, 0o755},
		{filepath.Join(s.Dir, "dovecot-state"), 0, 0, 0o755},
		{filepath.Join(s.Dir, "postfix-data"), s.env.postfixUID, 0, 0o700},
		{d.Queue, 0, 0, 0o755},
		{filepath.Join(d.Queue, "pid"), 0, 0, 0o755},
		{filepath.Join(d.Queue, "maildrop"), s.env.postfixUID, s.env.postdropGID, 0o730},
		{filepath.Join(d.Queue, "public"), s.env.postfixUID, s.env.postdropGID, 0o710},
	}
	for _, q := range []string{"active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private", "saved", "trace"} {
		dirs = append(dirs, struct {
			path     string
			uid, gid int
			mode     os.FileMode
		}{filepath.Join(d.Queue, q), s.env.postfixUID, 0, 0o700})
	}
	for _, dir := range dirs {
		if err := os.Mkdir(dir.path, dir.mode); err != nil {
			return err
		}
		if err := os.Chown(dir.path, dir.uid, dir.gid); err != nil {
			return err
		}
		if err := os.Chmod(dir.path, dir.mode); err != nil {
			return err
		}
	}
	return nil
}

// checkSearchable reports a directory on the way to dir that other users
// cannot pass through, such as a TMPDIR under /root.
func checkSearchable(dir string) error {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("%s is not searchable by other users, whom the servers' processes run as; point TMPDIR elsewhere", d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// configure picks free ports and writes both servers' configuration.
func (s *Server) configure() error {
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	d := &s.data
	d.IMAPPort, d.IMAPSPort, d.SMTPPort, d.SMTPSPort = ports[0], ports[1], ports[2], ports[3]
	s.IMAPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.IMAPPort))
	s.IMAPTLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.IMAPSPort))
	s.SMTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.SMTPPort))
	s.SMTPTLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(d.SMTPSPort))

	var dovecot, main, master bytes.Buffer
	if err := dovecotConf.Execute(&dovecot, d); err != nil {
		return err
	}
	if err := postfixMain.Execute(&main, d); err != nil {
		return err
	}
	if err := postfixMaster.Execute(&master, d); err != nil {
		return err
	}
	for path, b := range map[string][]byte{
		s.dovecotConf:                             dovecot.Bytes(),
		filepath.Join(s.postfixConf, "main.cf"):   main.Bytes(),
		filepath.Join(s.postfixConf, "master.cf"): master.Bytes(),
		filepath.Join(s.Dir, "sender_bcc.regexp"): []byte(senderBCC),
	} {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return err
		}
		// Postfix waits until its configuration has not changed for two
		// seconds, in case an editor is still writing it: predate it.
		old := time.Now().Add(-time.Hour)
		if err := os.Chtimes(path, old, old); err != nil {
			return err
		}
	}
	return nil
}

// freePorts returns n distinct ports of 127.0.0.1 that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// start starts Dovecot and Postfix and waits until all their listeners
// greet, over TLS where they use it.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dovecot != nil || s.postfix != nil {
		return errors.New("already running")
	}
	deadline := time.Now().Add(startTimeout)
	const imapGreeting, imapQuit = "* OK ", "0 LOGOUT\r\n"
	const smtpGreeting, smtpQuit = "220 ", "QUIT\r\n"
	tlsConfig := s.TLSConfig()

	var err error
	s.dovecot, err = startProc(filepath.Join(s.Dir, "dovecot.stderr.log"), s.env.dovecot, "-F", "-c", s.dovecotConf)
	if err != nil {
		return fmt.Errorf("start dovecot: %w", err)
	}
	if err := waitReady(deadline,
		readiness{s.dovecot, s.IMAPAddr, nil, imapGreeting, imapQuit},
		readiness{s.dovecot, s.IMAPTLSAddr, tlsConfig, imapGreeting, imapQuit},
	); err != nil {
		return err
	}
	// Only now: an smtpd that finds no Dovecot auth socket exits, and
	// Postfix's master then holds the service back for a minute.
	s.postfix, err = startProc(filepath.Join(s.Dir, "postfix.stderr.log"), s.env.master, "-d", "-c", s.postfixConf)
	if err != nil {
		return fmt.Errorf("start postfix: %w", err)
	}
	return waitReady(deadline,
		readiness{s.postfix, s.SMTPAddr, nil, smtpGreeting, smtpQuit},
		readiness{s.postfix, s.SMTPTLSAddr, tlsConfig, smtpGreeting, smtpQuit},
	)
}

// passwdFile is the passwd-file of the account email.
func (s *Server) passwdFile(email string) string {
	return filepath.Join(s.data.Users, strings.ToLower(email))
}

// writePasswdFile writes the passwd-file of one account, which both
// Dovecot's passdb and userdb read. Dovecot rereads a file when its mtime
// or size changes, and mtime has a resolution of one second there: every
// version gets a later mtime than the one before, even within a second.
func (s *Server) writePasswdFile(email, password string) error {
	// PLAIN.B64 lets the password hold ':' and any other byte the file
	// format is touchy about.
	line := fmt.Sprintf("%s:{PLAIN.B64}%s::::::\n", strings.ToLower(email), base64.StdEncoding.EncodeToString([]byte(password)))
	path := s.passwdFile(email)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(line), 0o640); err != nil {
		return err
	}
	// Dovecot's auth process runs as the user dovecot.
	if err := os.Chown(tmp, 0, s.env.dovecotGID); err != nil {
		return err
	}
	stamp := time.Now().Truncate(time.Second)
	if !stamp.After(s.passwdStamp) {
		stamp = s.passwdStamp.Add(time.Second)
	}
	if err := os.Chtimes(tmp, stamp, stamp); err != nil {
		return err
	}
	s.passwdStamp = stamp
	return os.Rename(tmp, path)
}

// checkAddress rejects what cannot be a passwd-file's name and first field.
func checkAddress(email string) error {
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return errors.New("not an address")
	}
	if strings.ContainsFunc(email, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(":/%", r) }) {
		return errors.New("address with a space, control or non-ASCII character, ':', '/' or '%'")
	}
	return nil
}

// checkPassword rejects what Dovecot refuses in any password ("password
// having illegal chars"): it could never log in.
func checkPassword(password string) error {
	if strings.ContainsAny(password, "\x00\t\r\n") {
		return errors.New("password with a tab, CR, LF or NUL, which Dovecot rejects")
	}
	return nil
}

// doveadm runs doveadm against this instance with stdin and returns its
// standard output.
func (s *Server) doveadm(stdin []byte, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.env.doveadm, append([]string{"-c", s.dovecotConf}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("doveadm %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

func (s *Server) messageIDs(email, mailbox string) ([]string, error) {
	out, err := s.doveadm(nil, "-f", "tab", "fetch", "-u", email, "hdr.message-id", "mailbox", mailbox, "all")
	if err != nil {
		return nil, err
	}
	values, err := column(out, "hdr.message-id")
	if err != nil {
		return nil, fmt.Errorf("doveadm fetch: %w", err)
	}
	return values, nil
}

func (s *Server) uidValidity(email, mailbox string) (uint32, error) {
	out, err := s.doveadm(nil, "-f", "tab", "mailbox", "status", "-u", email, "uidvalidity", mailbox)
	if err != nil {
		return 0, err
	}
	values, err := column(out, "uidvalidity")
	if err == nil && len(values) != 1 {
		err = fmt.Errorf("%d rows in %q, want 1", len(values), out)
	}
	if err != nil {
		return 0, fmt.Errorf("doveadm mailbox status: %w", err)
	}
	v, err := strconv.ParseUint(values[0], 10, 32)
	if err != nil {
		return 0, fmt.Errorf("doveadm mailbox status: %w", err)
	}
	return uint32(v), nil
}

// column returns the values of the column name in out, the output of
// doveadm's tab formatter: a header line, then one line per row.
func column(out, name string) ([]string, error) {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	i := slices.Index(strings.Split(lines[0], "\t"), name)
	if i < 0 {
		return nil, fmt.Errorf("no column %s in %q", name, out)
	}
	values := []string{}
	for _, l := range lines[1:] {
		fields := strings.Split(l, "\t")
		if i >= len(fields) {
			return nil, fmt.Errorf("short row %q in %q", l, out)
		}
		values = append(values, strings.TrimSpace(fields[i]))
	}
	return values, nil
}

func count(ids []string, messageID string) int {
	n := 0
	for _, id := range ids {
		if id == strings.TrimSpace(messageID) {
			n++
		}
	}
	return n
}

// logFiles are the servers' logs, in the order they are shown.
var logFiles = []string{"dovecot.stderr.log", "dovecot.log", "postfix.stderr.log", "postfix.log"}

// logLogs writes the servers' logs to t.Log.
func (s *Server) logLogs(t testing.TB) {
	t.Helper()
	for _, name := range logFiles {
		b, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		const max = 64 << 10
		if len(b) > max {
			b = b[len(b)-max:]
		}
		t.Logf("mailtest: %s:\n%s", name, b)
	}
}

// logsContain reports whether any of the servers' logs contains s.
func (s *Server) logsContain(substr string) bool {
	for _, name := range logFiles {
		b, err := os.ReadFile(filepath.Join(s.Dir, name))
		if err == nil && bytes.Contains(b, []byte(substr)) {
			return true
		}
	}
	return false
}

// proc is a server process, in a process group of its own so that stop can
// end its children too.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // set before done is closed
}

// startProc starts argv with its output appended to logPath. A goroutine
// owned by the proc waits for the process; it ends when the process exits,
// which stop ensures.
func startProc(logPath string, argv ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// readiness is a listener that a process must serve: it answers with
// greeting (over TLS with tls, if set), and quit ends the session.
type readiness struct {
	p              *proc
	addr           string
	tls            *tls.Config
	greeting, quit string
}

// waitReady waits until every listener greets, a process exits or the
// deadline passes.
func waitReady(deadline time.Time, rs ...readiness) error {
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() { errs[i] = r.wait(deadline) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (r readiness) wait(deadline time.Time) error {
	for {
		err := probe(r.addr, r.tls, r.greeting, r.quit)
		if err == nil {
			return nil
		}
		select {
		case <-r.p.done:
			return fmt.Errorf("%s exited before serving %s: %v", filepath.Base(r.p.cmd.Path), r.addr, r.p.err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not serving %s after %v: %w", filepath.Base(r.p.cmd.Path), r.addr, startTimeout, err)
		}
	}
}

// probe connects to addr, reads a greeting line starting with greeting
// and says quit. Dovecot greets once its auth process is ready, so a
// greeting means that logins work.
func probe(addr string, tlsConfig *tls.Config, greeting, quit string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(2 * time.Second)); err != nil {
		return err
	}
	if tlsConfig != nil {
		conn = tls.Client(conn, tlsConfig)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read greeting: %w", err)
	}
	if !strings.HasPrefix(line, greeting) {
		return fmt.Errorf("greeting %q, want %q", line, greeting)
	}
	_, err = io.WriteString(conn, quit)
	return err
}

// stop sends SIGTERM to the process group, as systemd stops a service,
// and kills what is left after stopGrace: Dovecot's master sometimes
// waits a second for its children, which tests need not wait for.
func (p *proc) stop() {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-p.done
	// Children that outlive the master may hold its listening sockets for
	// a moment, which Restart would find in use. (Zombies hold nothing;
	// they wait for init to reap them.)
	for deadline := time.Now().Add(stopTimeout); time.Now().Before(deadline) && groupAlive(pid); {
		time.Sleep(5 * time.Millisecond)
	}
}

// groupAlive reports whether a process of the process group pgid is alive
// and not a zombie, from /proc.
func groupAlive(pgid int) bool {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid pgrp ...": comm may hold anything but
		// ends at the last ')'.
		fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(fields) >= 3 && fields[2] == strconv.Itoa(pgid) && fields[0] != "Z" {
			return true
		}
	}
	return false
}

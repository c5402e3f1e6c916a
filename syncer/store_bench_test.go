package syncer_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goimap "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/imap"
	"github.com/holdfast/holdfast/provider/mailtest"
	"github.com/holdfast/holdfast/syncer"
)

// The benchmark mail: benchMailboxes accounts on one private Dovecot, with
// benchMessages messages each in INBOX.
const (
	benchMailboxes = 20
	benchMessages  = 500
	benchPassword  = "bench-Passw0rd"
)

// benchMail starts a Dovecot (provider/mailtest; skipped where it is not
// installed) and fills the benchmark accounts over IMAP APPEND.
func benchMail(b *testing.B) (*mailtest.Server, []string) {
	b.Helper()
	srv := mailtest.Start(b)
	emails := make([]string, benchMailboxes)
	var wg sync.WaitGroup
	for i := range emails {
		emails[i] = fmt.Sprintf("bench%d@example.test", i)
		srv.AddUser(b, emails[i], benchPassword)
		wg.Go(func() { appendBench(b, srv, i, emails[i]) })
	}
	wg.Wait()
	return srv, emails
}

// appendBench appends account n's benchMessages messages.
func appendBench(b *testing.B, srv *mailtest.Server, n int, email string) {
	c, err := imapclient.DialTLS(srv.IMAPTLSAddr, &imapclient.Options{TLSConfig: srv.TLSConfig()})
	if err != nil {
		b.Error(err)
		return
	}
	defer c.Close()
	if err := c.Login(email, benchPassword).Wait(); err != nil {
		b.Error(err)
		return
	}
	for i := range benchMessages {
		raw := fmt.Appendf(nil, "From: Bob <bob@example.test>\r\n"+
			"To: %s\r\n"+
			"Subject: Message %d\r\n"+
			"Message-ID: <m%d.%d@example.test>\r\n"+
			"Date: Sun, 01 Mar 2026 12:00:00 +0000\r\n"+
			"Content-Type: text/plain; charset=utf-8\r\n"+
			"\r\nBody of message %d, with some more words to make a snippet.\r\n", email, i, i, n, i)
		cmd := c.Append("INBOX", int64(len(raw)), nil)
		if _, err := cmd.Write(raw); err != nil {
			b.Error(err)
			return
		}
		if err := cmd.Close(); err != nil {
			b.Error(err)
			return
		}
		if _, err := cmd.Wait(); err != nil {
			b.Error(err)
			return
		}
	}
}

// countingStore is a store counting the messages SaveSync stores; done is
// closed once want were added.
type countingStore struct {
	holdfast.Store
	added atomic.Int64
	want  int64
	done  chan struct{}
}

func (s *countingStore) SaveSync(ctx context.Context, inboxID string, msgs []holdfast.Message, cursor string, at time.Time, announce holdfast.Announce[[]holdfast.Message]) (int, error) {
	n, err := s.Store.SaveSync(ctx, inboxID, msgs, cursor, at, announce)
	if s.added.Add(int64(n)) == s.want {
		close(s.done)
	}
	return n, err
}

// BenchmarkSyncIntoStore syncs the 20 mailboxes of 500 messages from a
// local Dovecot into a new store of each engine with the syncer, the IMAP
// connector and Store.SaveSync ("holdfast/sqlite", "holdfast/postgres"),
// next to a plain fetch of the same messages with the bare go-imap client
// ("PlainFetch"). Both report messages per second over all the mailboxes,
// synced at once.
func BenchmarkSyncIntoStore(b *testing.B) {
	srv, emails := benchMail(b)
	if b.Failed() {
		b.FailNow()
	}
	host, p, err := net.SplitHostPort(srv.IMAPTLSAddr)
	if err != nil {
		b.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		b.Fatal(err)
	}
	server := &holdfast.ServerConfig{Host: host, Port: port, Security: holdfast.SecurityTLS}
	opts := &goimap.FetchOptions{
		UID: true, Flags: true, Envelope: true, InternalDate: true,
		BodySection: []*goimap.FetchItemBodySection{
			{Specifier: goimap.PartSpecifierHeader, HeaderFields: []string{"Content-Type", "Content-Transfer-Encoding"}, Peek: true},
			{Specifier: goimap.PartSpecifierText, Partial: &goimap.SectionPartial{Size: 2048}, Peek: true},
		},
	}
	// One untimed fetch first, so that neither pays for Dovecot building
	// its caches of the new mail.
	fetchAll(b, srv, emails, opts)

	b.Run("holdfast", func(b *testing.B) {
		for _, e := range benchEngines {
			b.Run(e.name, func(b *testing.B) {
				conn := imap.New(imap.Config{TLSConfig: srv.TLSConfig(), BatchSize: benchMessages, AllowPrivateHosts: true})
				var took time.Duration
				for b.Loop() {
					took += syncIntoStore(b, e, conn, server, emails)
				}
				b.ReportMetric(float64(b.N*benchMailboxes*benchMessages)/took.Seconds(), "msgs/s")
			})
		}
	})

	b.Run("PlainFetch", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			fetchAll(b, srv, emails, opts)
		}
		b.ReportMetric(float64(b.N*benchMailboxes*benchMessages)/time.Since(start).Seconds(), "msgs/s")
	})
}

// fetchAll fetches every account's INBOX with go-imap, all at once.
func fetchAll(b *testing.B, srv *mailtest.Server, emails []string, opts *goimap.FetchOptions) {
	var wg sync.WaitGroup
	errs := make(chan error, len(emails))
	for _, email := range emails {
		wg.Go(func() { errs <- plainFetch(srv, email, opts) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, net.ErrClosed) {
			b.Fatal(err)
		}
	}
}

// syncIntoStore makes a new migrated store of engine e holding one inbox
// per account, then starts a syncer, asks it to sync every inbox now, and
// returns how long it took until every message was stored. Only that
// is timed.
func syncIntoStore(b *testing.B, e benchEngine, conn *imap.Connector, server *holdfast.ServerConfig, emails []string) time.Duration {
	b.StopTimer()
	ctx := context.Background()
	st := e.open(b)
	defer st.Close()
	now := time.Now().UTC().Truncate(time.Microsecond)
	inboxes := make([]*holdfast.Inbox, len(emails))
	for i, email := range emails {
		in := &holdfast.Inbox{
			ID: holdfast.NewID("inb", now), Provider: holdfast.ProviderIMAP, Email: email, Username: email,
			Tenant: "example.test", State: holdfast.StateConnected, Since: now, CreatedAt: now, UpdatedAt: now,
			IMAP: server,
		}
		if err := st.CreateInbox(ctx, in, holdfast.Event{InboxID: in.ID, At: now, NewState: in.State, Cause: holdfast.CauseAPI}); err != nil {
			b.Fatal(err)
		}
		inboxes[i] = in
	}
	cs := &countingStore{Store: st, want: benchMailboxes * benchMessages, done: make(chan struct{})}
	s, err := syncer.New(syncer.Config{
		Store: cs, Monitor: &fakeMonitor{},
		Connectors: map[holdfast.Provider]holdfast.Connector{holdfast.ProviderIMAP: conn},
		Session: func(_ context.Context, in *holdfast.Inbox) (*holdfast.Session, error) {
			return &holdfast.Session{Inbox: in, Password: benchPassword}, nil
		},
		Interval: time.Hour, Concurrency: benchMailboxes,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.Stop(sctx); err != nil {
			b.Error(err)
		}
	}()
	b.StartTimer()
	start := time.Now()
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for _, in := range inboxes {
		if err := s.Now(in.ID); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-cs.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("after 5 minutes %d of %d messages are stored", cs.added.Load(), cs.want)
	}
	took := time.Since(start)
	b.StopTimer()
	msgs, err := st.Messages(ctx, inboxes[0].ID, holdfast.MessageFilter{Limit: 1000})
	if err != nil || len(msgs) != benchMessages {
		b.Fatalf("inbox 0 holds %d messages (%v), want %d", len(msgs), err, benchMessages)
	}
	b.StartTimer()
	return took
}

// plainFetch fetches every message of the account's INBOX with go-imap.
func plainFetch(srv *mailtest.Server, email string, opts *goimap.FetchOptions) error {
	c, err := imapclient.DialTLS(srv.IMAPTLSAddr, &imapclient.Options{TLSConfig: srv.TLSConfig()})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(email, benchPassword).Wait(); err != nil {
		return err
	}
	if _, err := c.Select("INBOX", &goimap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return err
	}
	msgs, err := c.Fetch(goimap.UIDSet{{Start: 1, Stop: 0}}, opts).Collect()
	if err != nil {
		return err
	}
	if len(msgs) != benchMessages {
		return fmt.Errorf("fetched %d messages of %s, want %d", len(msgs), email, benchMessages)
	}
	return c.Logout().Wait()
}

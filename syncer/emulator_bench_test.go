package syncer_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/emulator"
	"github.com/holdfast/holdfast/emulator/emulatortest"
	"github.com/holdfast/holdfast/provider/gmail"
	"github.com/holdfast/holdfast/provider/graph"
	"github.com/holdfast/holdfast/provider/oauth"
	"github.com/holdfast/holdfast/secrets"
	"github.com/holdfast/holdfast/syncer"
)

// The emulator benchmark's mail: emuAccounts accounts per provider on one
// in-process emulator, with emuMessages messages each in the inbox.
const (
	emuAccounts = 500
	emuMessages = 5
)

// emuAccount is one emulator mailbox and the refresh token of its grant.
type emuAccount struct {
	email, refreshToken string
}

// emuProvider is one provider as the benchmark sees it.
type emuProvider struct {
	name     string
	provider holdfast.Provider
	emu      emulator.Provider
	// connector returns a new connector (with a new, empty token cache).
	connector func(b *testing.B, urls emulator.URLs) holdfast.Connector
}

var emuProviders = []emuProvider{
	{
		name: "microsoft", provider: holdfast.ProviderMicrosoft, emu: emulator.Microsoft,
		connector: func(b *testing.B, urls emulator.URLs) holdfast.Connector {
			c, err := graph.New(graph.Config{BaseURL: urls.Graph, Tokens: emuTokens(b, holdfast.ProviderMicrosoft, urls.MicrosoftLogin),
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			return c
		},
	},
	{
		name: "google", provider: holdfast.ProviderGoogle, emu: emulator.Google,
		connector: func(b *testing.B, urls emulator.URLs) holdfast.Connector {
			c, err := gmail.New(gmail.Config{BaseURL: urls.Gmail, Tokens: emuTokens(b, holdfast.ProviderGoogle, urls.GoogleOAuth),
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			return c
		},
	},
}

// emuTokens returns a new OAuth token source of provider p on the
// emulator, configured as serve configures it.
func emuTokens(b *testing.B, p holdfast.Provider, baseURL string) *oauth.Source {
	src, err := oauth.New(oauth.Config{Provider: p, BaseURL: baseURL,
		ClientID: emulator.DefaultClientID, ClientSecret: emulator.DefaultClientSecret,
		RedirectURL: "http://127.0.0.1:8080/v1/oauth/callback", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return src
}

// BenchmarkSyncEmulator syncs emuAccounts inboxes of each OAuth provider,
// with emuMessages messages each, from an in-process emulator into a new
// store of each engine (the outer sub-benchmarks), through the syncer with the real connector, token source
// and Store.SaveSync, with the refresh tokens sealed in the store as serve
// keeps them. "first" is each inbox's first sync (a token refresh, and for
// Microsoft saving the rotated refresh token, then the full listing);
// "incremental" is the next sync with nothing new (a cached access token,
// one delta or history call). Both report inboxes and messages synced per
// second over all the inboxes, synced at once by
// syncer.DefaultConcurrency workers.
func BenchmarkSyncEmulator(b *testing.B) {
	emu, urls := emulatortest.Start(b)
	accounts := map[holdfast.Provider][]emuAccount{}
	for _, p := range emuProviders {
		accs := make([]emuAccount, emuAccounts)
		for i := range accs {
			email := fmt.Sprintf("bench%d@%s.example.test", i, p.name)
			rt, err := emu.CreateAccount(emulator.Account{Provider: p.emu, Email: email})
			if err != nil {
				b.Fatal(err)
			}
			for j := range emuMessages {
				if _, err := emu.Deliver(emulator.Mail{To: email, From: "bob@example.test",
					Subject: fmt.Sprintf("Message %d", j), Text: fmt.Sprintf("Body of message %d, with some more words to make a snippet.", j)}); err != nil {
					b.Fatal(err)
				}
			}
			accs[i] = emuAccount{email: email, refreshToken: rt}
		}
		accounts[p.provider] = accs
	}
	key, err := secrets.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	ring, err := secrets.NewKeyring(key)
	if err != nil {
		b.Fatal(err)
	}

	for _, e := range benchEngines {
		b.Run(e.name, func(b *testing.B) {
			for _, p := range emuProviders {
				b.Run(p.name, func(b *testing.B) {
					b.Run("first", func(b *testing.B) {
						var took time.Duration
						for b.Loop() {
							b.StopTimer()
							r := newEmuRun(b, e, ring, p, urls, accounts[p.provider])
							b.StartTimer()
							d, msgs := r.round(b)
							b.StopTimer()
							if msgs != emuAccounts*emuMessages {
								b.Fatalf("the first syncs stored %d messages, want %d", msgs, emuAccounts*emuMessages)
							}
							r.check(b)
							r.stop(b)
							b.StartTimer()
							took += d
						}
						reportEmu(b, took, b.N*emuAccounts, b.N*emuAccounts*emuMessages)
					})
					b.Run("incremental", func(b *testing.B) {
						r := newEmuRun(b, e, ring, p, urls, accounts[p.provider])
						defer r.stop(b)
						if _, msgs := r.round(b); msgs != emuAccounts*emuMessages {
							b.Fatalf("the first syncs stored %d messages, want %d", msgs, emuAccounts*emuMessages)
						}
						var took time.Duration
						total := 0
						for b.Loop() {
							d, msgs := r.round(b)
							took += d
							total += msgs
						}
						if total != 0 {
							b.Fatalf("the incremental syncs stored %d messages, want none", total)
						}
						reportEmu(b, took, b.N*emuAccounts, total)
					})
				})
			}
		})
	}
}

// reportEmu reports inboxes and messages synced per second over took.
func reportEmu(b *testing.B, took time.Duration, inboxes, msgs int) {
	b.ReportMetric(float64(inboxes)/took.Seconds(), "inboxes/s")
	b.ReportMetric(float64(msgs)/took.Seconds(), "msgs/s")
}

// emuRun is one migrated store holding an inbox per account, and a
// started syncer over it with a new connector.
type emuRun struct {
	store   holdfast.Store
	ring    *secrets.Keyring
	syncer  *syncer.Syncer
	track   *emuTracker
	inboxes []*holdfast.Inbox
}

// newEmuRun opens the store, connects the accounts as inboxes with their
// sealed refresh tokens, and starts the syncer, whose first syncs are an
// interval (an hour) away.
func newEmuRun(b *testing.B, e benchEngine, ring *secrets.Keyring, p emuProvider, urls emulator.URLs, accs []emuAccount) *emuRun {
	b.Helper()
	ctx := context.Background()
	st := e.open(b)
	r := &emuRun{store: st, ring: ring, inboxes: make([]*holdfast.Inbox, len(accs))}
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i, a := range accs {
		id := holdfast.NewID("inb", now)
		sealed, err := secrets.SealCredentials(ring, id, secrets.Credentials{RefreshToken: a.refreshToken})
		if err != nil {
			b.Fatal(err)
		}
		in := &holdfast.Inbox{
			ID: id, Provider: p.provider, Email: a.email, Tenant: p.name + ".example.test", Credentials: sealed,
			State: holdfast.StateConnected, Since: now, CreatedAt: now, UpdatedAt: now,
		}
		if err := st.CreateInbox(ctx, in, holdfast.Event{InboxID: id, At: now, NewState: in.State, Cause: holdfast.CauseAPI}); err != nil {
			b.Fatal(err)
		}
		r.inboxes[i] = in
	}
	r.track = &emuTracker{last: map[string]bool{}}
	conn := &emuConnector{Connector: p.connector(b, urls), track: r.track}
	// The session as serve opens it: the sealed refresh token, and a
	// rotated one sealed and saved at once.
	session := func(_ context.Context, in *holdfast.Inbox) (*holdfast.Session, error) {
		c, err := secrets.OpenCredentials(ring, in.ID, in.Credentials)
		if err != nil {
			return nil, err
		}
		return &holdfast.Session{Inbox: in, RefreshToken: c.RefreshToken,
			OnTokenRotated: func(ctx context.Context, refreshToken string) error {
				sealed, err := secrets.SealCredentials(ring, in.ID, secrets.Credentials{RefreshToken: refreshToken})
				if err != nil {
					return err
				}
				return st.SetCredentials(context.WithoutCancel(ctx), in.ID, sealed)
			}}, nil
	}
	s, err := syncer.New(syncer.Config{
		Store: &emuStore{Store: st, track: r.track}, Monitor: &fakeMonitor{},
		Connectors: map[holdfast.Provider]holdfast.Connector{p.provider: conn},
		Session:    session, Interval: time.Hour,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		b.Fatal(err)
	}
	r.syncer = s
	return r
}

// round asks the syncer to sync every inbox now and returns how long it
// took until each one's sync ended, and the messages they added.
func (r *emuRun) round(b *testing.B) (time.Duration, int) {
	b.Helper()
	done, failed := r.track.arm(len(r.inboxes))
	start := time.Now()
	for _, in := range r.inboxes {
		if err := r.syncer.Now(in.ID); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-done:
	case err := <-failed:
		b.Fatalf("a sync failed: %v", err)
	case <-time.After(2 * time.Minute):
		n, _ := r.track.count()
		b.Fatalf("after 2 minutes %d of %d inboxes are synced", n, len(r.inboxes))
	}
	took := time.Since(start)
	_, added := r.track.count()
	return took, added
}

// check makes sure that the first inbox holds its messages and its
// refresh token still opens.
func (r *emuRun) check(b *testing.B) {
	b.Helper()
	ctx := context.Background()
	in := r.inboxes[0]
	msgs, err := r.store.Messages(ctx, in.ID, holdfast.MessageFilter{Limit: 100})
	if err != nil || len(msgs) != emuMessages {
		b.Fatalf("inbox 0 holds %d messages (%v), want %d", len(msgs), err, emuMessages)
	}
	stored, err := r.store.Inbox(ctx, in.ID)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := secrets.OpenCredentials(r.ring, in.ID, stored.Credentials); err != nil {
		b.Fatal(err)
	}
}

// stop stops the syncer and closes the store.
func (r *emuRun) stop(b *testing.B) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.syncer.Stop(ctx); err != nil {
		b.Error(err)
	}
	r.store.Close()
}

// emuTracker counts the inboxes whose sync ended (their last round stored)
// and the messages stored, for the round in progress.
type emuTracker struct {
	mu     sync.Mutex
	last   map[string]bool // inbox ID → its latest Sync said no More
	want   int
	synced int
	added  int
	done   chan struct{}
	failed chan error
}

// arm starts a round of want syncs.
func (t *emuTracker) arm(want int) (<-chan struct{}, <-chan error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.want, t.synced, t.added = want, 0, 0
	t.done, t.failed = make(chan struct{}), make(chan error, 1)
	return t.done, t.failed
}

func (t *emuTracker) count() (synced, added int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.synced, t.added
}

// fail reports the round's first failure. t.mu must be held.
func (t *emuTracker) fail(err error) {
	select {
	case t.failed <- err:
	default:
	}
}

// result notes a connector's answer for an inbox.
func (t *emuTracker) result(inboxID string, res *holdfast.SyncResult, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.fail(fmt.Errorf("sync inbox %s: %w", inboxID, err))
		return
	}
	t.last[inboxID] = !res.More
}

// saved notes a stored batch of an inbox.
func (t *emuTracker) saved(inboxID string, added int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.fail(fmt.Errorf("store inbox %s: %w", inboxID, err))
		return
	}
	t.added += added
	if !t.last[inboxID] {
		return
	}
	t.synced++
	if t.synced == t.want {
		close(t.done)
	}
}

// emuConnector is a connector telling the tracker each Sync's answer.
type emuConnector struct {
	holdfast.Connector
	track *emuTracker
}

func (c *emuConnector) Sync(ctx context.Context, s *holdfast.Session, cursor string) (*holdfast.SyncResult, error) {
	res, err := c.Connector.Sync(ctx, s, cursor)
	c.track.result(s.Inbox.ID, res, err)
	return res, err
}

// emuStore is a store telling the tracker each stored batch.
type emuStore struct {
	holdfast.Store
	track *emuTracker
}

func (s *emuStore) SaveSync(ctx context.Context, inboxID string, msgs []holdfast.Message, cursor string, at time.Time, announce holdfast.Announce[[]holdfast.Message]) (int, error) {
	n, err := s.Store.SaveSync(ctx, inboxID, msgs, cursor, at, announce)
	s.track.saved(inboxID, n, err)
	return n, err
}

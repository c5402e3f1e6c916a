package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/dashboard"
	"github.com/holdfast/holdfast/lifecycle"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/secrets"
)

// signingKeys are the keys that sign status-page links and dashboard
// sessions, each list the current key first and then the ones still
// accepted. They are not the credential keys (HOLDFAST_SECRET_KEY or
// secret.keys): rotating those breaks no link and signs nobody out.
//
// Keys read from the store are re-read every signingRefreshEvery while
// the service runs (Start, Stop), so that a rotation, or a node started
// later that stored newer keys, reaches every node without a restart: a
// link or session signed on one node verifies on all of them within the
// interval. Keys from HOLDFAST_SIGNING_KEY are fixed.
type signingKeys struct {
	mu       sync.RWMutex // guards links and sessions once the service runs
	links    [][]byte
	sessions [][]byte

	// store and ring are where the keys are re-read from; nil store: the
	// keys are fixed (HOLDFAST_SIGNING_KEY).
	store holdfast.SigningKeyStore
	ring  *secrets.Keyring
	log   *slog.Logger
	clock holdfast.Clock
	// statusLinks is told the link keys whenever they change.
	statusLinks *notify.Links
	// every is how often the keys are re-read; zero means
	// signingRefreshEvery.
	every time.Duration
	owner lifecycle.Owner
}

var _ lifecycle.Service = (*signingKeys)(nil)

// signingRefreshEvery is how often each node re-reads the stored signing
// keys.
const signingRefreshEvery = 30 * time.Second

// signingReadTimeout bounds one re-read of the stored signing keys.
const signingReadTimeout = 10 * time.Second

// add appends one key pair to the accepted keys.
func (sk *signingKeys) add(p signingPair) {
	sk.links = append(sk.links, p.link)
	sk.sessions = append(sk.sessions, p.session)
}

// linkKeys returns the status-link keys, the current first.
func (sk *signingKeys) linkKeys() [][]byte {
	sk.mu.RLock()
	defer sk.mu.RUnlock()
	return sk.links
}

// sessionKeys returns the dashboard session keys, the current first
// (dashboard.Config's SessionKeysFunc).
func (sk *signingKeys) sessionKeys() [][]byte {
	sk.mu.RLock()
	defer sk.mu.RUnlock()
	return sk.sessions
}

// useFor makes l sign with the current link key and accept the others,
// now and whenever a refresh changes them.
func (sk *signingKeys) useFor(l *notify.Links) error {
	sk.mu.Lock()
	defer sk.mu.Unlock()
	sk.statusLinks = l
	return l.SetKeys(sk.links...)
}

// Start starts re-reading the stored keys every interval until Stop
// (lifecycle.Service); with fixed keys it does nothing.
func (sk *signingKeys) Start(ctx context.Context) error {
	return sk.owner.Start(ctx, func(run context.Context) error {
		if sk.store != nil {
			sk.owner.Go(func() { sk.loop(run) })
		}
		return nil
	})
}

// Stop ends the re-reading. It is safe to call before Start and more than
// once.
func (sk *signingKeys) Stop(ctx context.Context) error { return sk.owner.Stop(ctx, nil) }

// loop re-reads the keys every interval until run ends; a failed read
// keeps the keys it has and says so.
func (sk *signingKeys) loop(run context.Context) {
	every := sk.every
	if every <= 0 {
		every = signingRefreshEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-run.Done():
			return
		case <-t.C:
		}
		if err := sk.refresh(run); err != nil && run.Err() == nil {
			sk.log.WarnContext(run, "re-read the signing keys; keeping the ones read before", "err", err)
		}
	}
}

// refresh re-reads the stored keys: the current one and, while links it
// signed may still be valid, the previous one (openSigningKeys), and
// hands them to the status links. Keys dropped from the store (a second
// rotation) or past their time are no longer accepted.
func (sk *signingKeys) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, signingReadTimeout)
	defer cancel()
	stored, err := sk.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	if len(stored) == 0 {
		return errors.New("no signing key stored")
	}
	pairs, err := openSigningKeys(stored, sk.ring, sk.clock.Now())
	if err != nil {
		return err
	}
	fresh := &signingKeys{}
	for _, p := range pairs {
		fresh.add(p)
	}
	sk.mu.Lock()
	defer sk.mu.Unlock()
	changed := !bytes.Equal(sk.links[0], fresh.links[0])
	if sk.statusLinks != nil {
		if err := sk.statusLinks.SetKeys(fresh.links...); err != nil {
			return err
		}
	}
	sk.links, sk.sessions = fresh.links, fresh.sessions
	if changed {
		sk.log.InfoContext(ctx, "signing key changed in the store; signing with it", "generation", stored[0].Generation)
	}
	return nil
}

// signingPair is one signing key: the key of status links and the key of
// dashboard sessions.
type signingPair struct{ link, session []byte }

// pairOf is the pair of a status-link key: the session key is derived
// from it.
func pairOf(link []byte) signingPair {
	return signingPair{link: link, session: dashboard.DeriveKey(link)}
}

// legacyPair is the pair that holdfast derived from HOLDFAST_SECRET_KEY
// before the signing keys were stored.
func legacyPair(secretKey string) signingPair {
	return signingPair{link: notify.DeriveKey(secretKey), session: dashboard.DeriveKey([]byte(secretKey))}
}

// The plaintext of a stored signing key is one kind byte and then:
const (
	// kindLink: the status-link key; the session key is derived from it.
	kindLink byte = 1
	// kindPair: the status-link key and the session key, 32 bytes each
	// (the keys derived from HOLDFAST_SECRET_KEY, imported).
	kindPair byte = 2
)

// encode returns the plaintext that stores p.
func (p signingPair) encode() []byte {
	if bytes.Equal(p.session, dashboard.DeriveKey(p.link)) {
		return append([]byte{kindLink}, p.link...)
	}
	return append(append([]byte{kindPair}, p.link...), p.session...)
}

// decodePair reads the plaintext of a stored signing key.
func decodePair(b []byte) (signingPair, error) {
	switch {
	case len(b) >= 33 && b[0] == kindLink:
		return pairOf(b[1:]), nil
	case len(b) == 65 && b[0] == kindPair:
		return signingPair{link: b[1:33], session: b[33:]}, nil
	}
	return signingPair{}, errors.New("stored signing key: unknown format")
}

// loadSigningKeys reads the signing keys: HOLDFAST_SIGNING_KEY if set
// (with the keys derived from HOLDFAST_SECRET_KEY still accepted, if it
// is set, so that links mailed before the switch keep working), else the
// keys stored in the store, shared by every process on it and created on
// first use (storedSigningKeys).
func loadSigningKeys(ctx context.Context, cfg *config.Config, store holdfast.SigningKeyStore, ring *secrets.Keyring, log *slog.Logger) (*signingKeys, error) {
	sk := &signingKeys{log: log, clock: holdfast.SystemClock{}}
	if cfg.SigningKey != "" {
		keys, err := notify.ParseKeys(cfg.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("HOLDFAST_SIGNING_KEY: %w", err)
		}
		for _, k := range keys {
			sk.add(pairOf(k))
		}
		if cfg.SecretKey != "" {
			sk.add(legacyPair(cfg.SecretKey))
		}
		return sk, nil
	}
	pairs, err := storedSigningKeys(ctx, cfg, store, ring, log)
	if err != nil {
		return nil, err
	}
	for _, p := range pairs {
		sk.add(p)
	}
	sk.store, sk.ring = store, ring
	return sk, nil
}

// storedSigningKeys returns the signing keys in the store, the current
// first, then the previous one while links it signed may still be valid
// (until the link lifetime has passed since the current key was made).
// With none stored, it stores the first ones (firstSigningKeys). When
// several processes do so at once, one stores its keys and the others
// read them.
func storedSigningKeys(ctx context.Context, cfg *config.Config, store holdfast.SigningKeyStore, ring *secrets.Keyring, log *slog.Logger) ([]signingPair, error) {
	for range 3 {
		stored, err := store.SigningKeys(ctx)
		if err != nil {
			return nil, err
		}
		if len(stored) > 0 {
			return openSigningKeys(stored, ring, time.Now())
		}
		first, from, err := firstSigningKeys(cfg)
		if err != nil {
			return nil, err
		}
		err = addSigningKeys(ctx, store, ring, 1, first...)
		if errors.Is(err, holdfast.ErrConflict) {
			continue // another process stored them first: read those
		}
		if err != nil {
			return nil, err
		}
		log.Info("signing keys stored", "from", from)
	}
	return nil, errors.New("signing keys: changed under each of 3 reads")
}

// firstSigningKeys returns the keys to store first, the oldest first, and
// says where they come from: with HOLDFAST_SECRET_KEY set, the keys that
// holdfast derived from it and signed with before, as the previous key,
// and a new key; else the keys of status-link.key in the data directory,
// which signed before, if there is one; else a new key.
func firstSigningKeys(cfg *config.Config) ([]signingPair, string, error) {
	fresh := pairOf(newSigningKey())
	if cfg.SecretKey != "" {
		return []signingPair{legacyPair(cfg.SecretKey), fresh}, "a new key; the key derived from HOLDFAST_SECRET_KEY is still accepted for the links' lifetime", nil
	}
	path := filepath.Join(cfg.DataDir, notify.KeyFileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return []signingPair{fresh}, "a new key", nil
	}
	keys, err := notify.LoadOrCreateKeys(cfg.DataDir)
	if err != nil {
		return nil, "", err
	}
	var pairs []signingPair
	for i := len(keys) - 1; i >= 0; i-- {
		pairs = append(pairs, pairOf(keys[i]))
	}
	return pairs, path + " (no longer read)", nil
}

// openSigningKeys opens stored, newest first: the current key, and the
// previous one while a link it signed may still be valid at now.
func openSigningKeys(stored []*holdfast.SigningKey, ring *secrets.Keyring, now time.Time) ([]signingPair, error) {
	var pairs []signingPair
	for i, k := range stored {
		if i > 1 || i == 1 && !now.Before(stored[0].CreatedAt.Add(notify.DefaultLinkLifetime)) {
			break
		}
		plain, err := ring.Open(k.Sealed, secrets.SigningKeyAAD(k.Generation))
		if err != nil {
			return nil, fmt.Errorf("open signing key %d: %w", k.Generation, err)
		}
		p, err := decodePair(plain)
		if err != nil {
			return nil, fmt.Errorf("signing key %d: %w", k.Generation, err)
		}
		pairs = append(pairs, p)
	}
	return pairs, nil
}

// addSigningKeys seals pairs, the oldest first, and stores them as
// generations gen, gen+1, …; the store then keeps the newest two. It
// returns holdfast.ErrConflict, with nothing stored, if another process
// stored one of these generations first.
func addSigningKeys(ctx context.Context, store holdfast.SigningKeyStore, ring *secrets.Keyring, gen int64, pairs ...signingPair) error {
	var keys []*holdfast.SigningKey
	for i, p := range pairs {
		g := gen + int64(i)
		sealed, err := ring.Seal(p.encode(), secrets.SigningKeyAAD(g))
		if err != nil {
			return fmt.Errorf("seal signing key %d: %w", g, err)
		}
		keys = append(keys, &holdfast.SigningKey{Generation: g, Sealed: sealed})
	}
	return store.AddSigningKeys(ctx, keys...)
}

// newSigningKey returns 32 random bytes.
func newSigningKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	return k
}

// runSigningKeyRotate stores a new current signing key; the one it
// replaces stays as the previous key, and the one before is dropped.
// Running services re-read the keys every signingRefreshEvery.
func runSigningKeyRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs, finish := config.NewFlagSet("signing-key rotate", config.FlagsStore, &cfg, getenv, stderr)
	if err := parse(fs, args, finish); err != nil {
		return err
	}
	if getenv("HOLDFAST_SIGNING_KEY") != "" {
		return errors.New("HOLDFAST_SIGNING_KEY is set: put a new key first in it and keep the current one second (see docs/operations.md)")
	}
	log := cfg.Logger(stderr)
	ring, err := openKeyring(&cfg)
	if err != nil {
		return err
	}
	b, err := openBackend(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.migrate(ctx); err != nil {
		return err
	}
	if _, err := storedSigningKeys(ctx, &cfg, b.store, ring, log); err != nil {
		return err
	}
	stored, err := b.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	gen := stored[0].Generation + 1
	err = addSigningKeys(ctx, b.store, ring, gen, pairOf(newSigningKey()))
	if errors.Is(err, holdfast.ErrConflict) {
		return fmt.Errorf("another process rotated the signing key at the same time; it is rotated once: %w", err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signing key %d is current; key %d is still accepted for 14 days. Every running holdfast serve signs with it within %v.\n", gen, gen-1, signingRefreshEvery)
	return nil
}

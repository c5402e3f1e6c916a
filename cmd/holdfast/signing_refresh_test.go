package main

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/notify"
	"github.com/holdfast/holdfast/secrets"
	"github.com/holdfast/holdfast/store/postgres/pgtest"
)

// laterClock is the wall clock moved ahead by d.
type laterClock struct{ d time.Duration }

func (c laterClock) Now() time.Time { return time.Now().Add(c.d) }

// signingNode is one node's signing keys and the status links they sign.
type signingNode struct {
	keys  *signingKeys
	links *notify.Links
}

// newSigningNode loads the signing keys from store as serve does.
func newSigningNode(t *testing.T, store holdfast.SigningKeyStore, ring *secrets.Keyring) *signingNode {
	t.Helper()
	cfg := &config.Config{DataDir: t.TempDir()}
	keys, err := loadSigningKeys(t.Context(), cfg, store, ring, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("loadSigningKeys = %v", err)
	}
	links, err := notify.NewLinks(keys.linkKeys()[0], "https://h.example.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := keys.useFor(links); err != nil {
		t.Fatal(err)
	}
	return &signingNode{keys, links}
}

// accepts reports whether the node accepts a status link.
func (n *signingNode) accepts(tok string) bool {
	_, err := n.links.Verify(tok, time.Now())
	return err == nil
}

// rotate stores a new current signing key, as holdfast signing-key
// rotate does.
func rotate(t *testing.T, store holdfast.SigningKeyStore, ring *secrets.Keyring) {
	t.Helper()
	stored, err := store.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := addSigningKeys(t.Context(), store, ring, stored[0].Generation+1, pairOf(newSigningKey())); err != nil {
		t.Fatal(err)
	}
}

// TestSigningKeysRefreshAcrossNodes runs nodes on one PostgreSQL schema,
// each with its own store: after a rotation, a node started later signs
// with the new key, and a node that was running accepts its links and
// sessions, and signs with it, once it has re-read the keys (its service
// re-reads them every interval), without a restart. The documented
// semantics stay: the previous key is accepted for the links' lifetime
// and no longer, and a second rotation revokes the oldest links on every
// node.
func TestSigningKeysRefreshAcrossNodes(t *testing.T) {
	t.Parallel()
	ring, err := secrets.FromEnv(secretK1)
	if err != nil {
		t.Fatal(err)
	}
	url, _ := pgtest.Schema(t)
	storeA, storeB := pgtest.Open(t, url), pgtest.Open(t, url)
	a := newSigningNode(t, storeA, ring)
	old := a.links.Sign("owner@example.test", time.Now().Add(time.Hour))

	rotate(t, storeA, ring)
	b := newSigningNode(t, storeB, ring) // started after the rotation
	tok := b.links.Sign("owner@example.test", time.Now().Add(time.Hour))
	if a.accepts(tok) {
		t.Fatal("a accepts a link signed with a key it has not read yet; the test shows nothing")
	}

	// a's service re-reads the keys.
	a.keys.every = 10 * time.Millisecond
	if err := a.keys.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !a.accepts(tok) {
		if time.Now().After(deadline) {
			t.Fatal("a never accepted b's link signed with the rotated key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.keys.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := a.links.Sign("owner@example.test", time.Now().Add(time.Hour)); !b.accepts(got) {
		t.Error("b refuses a link a signed after its refresh")
	}
	if !slices.EqualFunc(a.keys.sessionKeys(), b.keys.sessionKeys(), slices.Equal) {
		t.Error("a and b hold different session keys after a's refresh; a session made on one would fail on the other")
	}
	for name, n := range map[string]*signingNode{"a": a, "b": b} {
		if !n.accepts(old) {
			t.Errorf("%s refuses a link signed before the rotation; the previous key is accepted for 14 days", name)
		}
	}

	// The previous key's time is over 14 days after the current key was
	// stored: a refresh then drops it.
	b.keys.clock = laterClock{notify.DefaultLinkLifetime + time.Hour}
	if err := b.keys.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b.accepts(old) {
		t.Error("b accepts a link signed with the previous key past its 14 days")
	}
	if !b.accepts(tok) {
		t.Error("b refuses a link signed with the current key")
	}

	// A second rotation revokes the links signed before the first, on
	// every node at its next refresh; the ones signed with the key it
	// replaces still open.
	rotate(t, storeB, ring)
	for name, n := range map[string]*signingNode{"a": a, "b": b} {
		n.keys.clock = holdfast.SystemClock{}
		if err := n.keys.refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n.accepts(old) {
			t.Errorf("%s accepts a link signed two rotations ago", name)
		}
		if !n.accepts(tok) {
			t.Errorf("%s refuses a link signed with the previous key", name)
		}
	}
}

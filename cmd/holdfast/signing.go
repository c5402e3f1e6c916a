package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/dashboard"
	"github.com/holdfast/holdfast/notify"
)

// signingKeys are the keys that sign status-page links and dashboard
// sessions, each list the current key first and then the ones still
// accepted. They are not the credential keys (HOLDFAST_SECRET_KEY or
// secret.keys): rotating those breaks no link and signs nobody out.
type signingKeys struct {
	links    [][]byte
	sessions [][]byte
}

// loadSigningKeys reads the signing keys: HOLDFAST_SIGNING_KEY if set,
// else, when only HOLDFAST_SECRET_KEY is set, the keys derived from it as
// before there were signing keys (with a warning: rotating it breaks
// every link), else status-link.key in the data directory, created on
// first use. With both variables set, the keys derived from
// HOLDFAST_SECRET_KEY are still accepted, so that links mailed before the
// switch keep working.
func loadSigningKeys(cfg *config.Config, log *slog.Logger) (*signingKeys, error) {
	var keys [][]byte
	switch {
	case cfg.SigningKey != "":
		k, err := notify.ParseKeys(cfg.SigningKey)
		if err != nil {
			return nil, fmt.Errorf("HOLDFAST_SIGNING_KEY: %w", err)
		}
		keys = k
	case cfg.SecretKey != "":
		log.Warn("status links and dashboard sessions are signed with a key derived from HOLDFAST_SECRET_KEY: rotating it breaks every mailed link; set HOLDFAST_SIGNING_KEY (see docs/operations.md)")
		return &signingKeys{links: [][]byte{notify.DeriveKey(cfg.SecretKey)}, sessions: [][]byte{dashboard.DeriveKey([]byte(cfg.SecretKey))}}, nil
	default:
		if err := cfg.EnsureDataDir(); err != nil {
			return nil, err
		}
		k, err := notify.LoadOrCreateKeys(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		keys = k
	}
	sk := &signingKeys{links: keys}
	for _, k := range keys {
		sk.sessions = append(sk.sessions, dashboard.DeriveKey(k))
	}
	if cfg.SecretKey != "" {
		sk.links = append(sk.links, notify.DeriveKey(cfg.SecretKey))
		sk.sessions = append(sk.sessions, dashboard.DeriveKey([]byte(cfg.SecretKey)))
	}
	return sk, nil
}

// runSigningKeyRotate makes a new current signing key in status-link.key
// and keeps the one it replaces as the previous key. Running services
// read the file when they start: restart them after it.
func runSigningKeyRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs, finish := config.NewFlagSet("signing-key rotate", config.FlagsStore, &cfg, getenv, stderr)
	if err := parse(fs, args, finish); err != nil {
		return err
	}
	if getenv("HOLDFAST_SIGNING_KEY") != "" {
		return errors.New("HOLDFAST_SIGNING_KEY is set: put a new key first in it and keep the current one second (see docs/operations.md)")
	}
	if err := cfg.EnsureDataDir(); err != nil {
		return err
	}
	if err := notify.RotateKeyFile(cfg.DataDir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "new signing key is current in %s; the previous one is still accepted. Restart holdfast serve to use it.\n", cfg.DataDir)
	return nil
}

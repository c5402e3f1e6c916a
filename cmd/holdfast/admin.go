package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/secrets"
)

// runMigrate applies every pending migration (holdfast's and River's) and
// exits.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg config.Config
	fs, finish := config.NewFlagSet("migrate", config.FlagsStore, &cfg, getenv, stderr)
	if err := parse(fs, args, finish); err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	b, err := openBackend(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.migrate(ctx); err != nil {
		return err
	}
	log.Info("migrations applied", "store", b.name)
	return nil
}

// runKeysRotate makes a new secret key active and re-encrypts every stored
// credential, webhook signing secret and signing key under it. With a key file, the new
// key is generated and added to the file; with HOLDFAST_SECRET_KEY, the
// operator puts the new key first in the list before running it. Every
// write is a compare-and-set, so it may run while holdfast serve writes
// credentials or webhook secrets.
func runKeysRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var cfg config.Config
	fs, finish := config.NewFlagSet("keys rotate", config.FlagsStore, &cfg, getenv, stderr)
	if err := parse(fs, args, finish); err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	if cfg.SecretKey == "" {
		if err := cfg.EnsureDataDir(); err != nil {
			return err
		}
		id, err := secrets.AddKeyToFile(keyFile(&cfg))
		if err != nil {
			return err
		}
		log.Info("new secret key is active", "key_id", id)
	}
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
	stats, err := secrets.Reencrypt(ctx, b.store, ring)
	if err != nil {
		return fmt.Errorf("re-encrypt credentials: %w", err)
	}
	fmt.Fprintf(stdout, "active key %s: %d inboxes scanned, %d re-encrypted, %d already current\n",
		ring.ActiveID(), stats.Scanned, stats.Reencrypted, stats.Current)
	wstats, err := secrets.ReencryptWebhooks(ctx, b.store, ring, webhookSecretAAD)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "active key %s: %d webhooks scanned, %d re-encrypted, %d already current\n",
		ring.ActiveID(), wstats.Scanned, wstats.Reencrypted, wstats.Current)
	sstats, err := secrets.ReencryptSigningKeys(ctx, b.store, ring)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "active key %s: %d signing keys scanned, %d re-encrypted, %d already current\n",
		ring.ActiveID(), sstats.Scanned, sstats.Reencrypted, sstats.Current)
	return nil
}

// keyFile is where the generated key file lives.
func keyFile(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "secret.keys") }

// openKeyring loads the keys that seal credentials: HOLDFAST_SECRET_KEY if
// set, otherwise the key file in the data directory, created on first use.
func openKeyring(cfg *config.Config) (*secrets.Keyring, error) {
	if cfg.SecretKey != "" {
		k, err := secrets.FromEnv(cfg.SecretKey)
		if err != nil {
			return nil, err
		}
		return k, nil
	}
	if err := cfg.EnsureDataDir(); err != nil {
		return nil, err
	}
	k, err := secrets.LoadOrCreateFile(keyFile(cfg))
	if err != nil {
		return nil, err
	}
	return k, nil
}

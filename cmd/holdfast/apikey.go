package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/config"
)

// apikeyUsage is printed for a missing or unknown apikey subcommand.
const apikeyUsage = `usage: holdfast apikey create --name NAME [--scope full|read_only|send|dashboard] [store flags]
       holdfast apikey list [store flags]
       holdfast apikey revoke ID [store flags]
`

// runAPIKey runs an apikey subcommand: create, list or revoke.
func runAPIKey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, apikeyUsage)
		return exitCode(2)
	}
	switch args[0] {
	case "create":
		return runAPIKeyCreate(ctx, args[1:], getenv, stdout, stderr)
	case "list":
		return runAPIKeyList(ctx, args[1:], getenv, stdout, stderr)
	case "revoke":
		return runAPIKeyRevoke(ctx, args[1:], getenv, stdout, stderr)
	}
	fmt.Fprint(stderr, apikeyUsage)
	return exitCode(2)
}

// withKeyStore parses the store flags of an apikey subcommand (plus the
// ones extra adds), opens and migrates the store and runs f on it.
func withKeyStore(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer,
	extra func(fs *flag.FlagSet), f func(holdfast.APIKeyStore) error) error {
	var cfg config.Config
	fs, finish := config.NewFlagSet(name, config.FlagsStore, &cfg, getenv, stderr)
	if extra != nil {
		extra(fs)
	}
	if err := parse(fs, args, finish); err != nil {
		return err
	}
	b, err := openBackend(ctx, &cfg, cfg.Logger(stderr))
	if err != nil {
		return err
	}
	defer b.close()
	if err := b.migrate(ctx); err != nil {
		return err
	}
	return f(b.store)
}

// runAPIKeyCreate creates an API key and prints it, alone, on the last line
// of stdout. Only its hash is stored.
func runAPIKeyCreate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var name, scope *string
	flags := func(fs *flag.FlagSet) {
		name = fs.String("name", "", "a name that says who uses the key (required)")
		scope = fs.String("scope", string(holdfast.ScopeFull), "what the key may do: full, read_only, send or dashboard")
	}
	return withKeyStore(ctx, "apikey create", args, getenv, stderr, flags, func(st holdfast.APIKeyStore) error {
		n, err := holdfast.CheckAPIKeyName(*name)
		if err != nil {
			return fmt.Errorf("--name: give a name of 1 to %d characters: %w", holdfast.MaxAPIKeyName, err)
		}
		sc, err := holdfast.ParseAPIKeyScope(*scope)
		if err != nil {
			return fmt.Errorf("--scope: %w", err)
		}
		secret, k := holdfast.NewAPIKey(n, time.Now())
		k.Scope = sc
		if err := st.CreateAPIKey(ctx, k); err != nil {
			return fmt.Errorf("store API key: %w", err)
		}
		fmt.Fprintf(stdout, "API key %q created (id %s, scope %s). It is shown once; keep it safe:\n%s\n", k.Name, k.ID, k.Scope, secret)
		return nil
	})
}

// runAPIKeyList prints every API key, one a line: ID, scope, prefix,
// created, revoked, name. Secrets are never stored, so never shown.
func runAPIKeyList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return withKeyStore(ctx, "apikey list", args, getenv, stderr, nil, func(st holdfast.APIKeyStore) error {
		keys, err := st.APIKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSCOPE\tPREFIX\tCREATED\tREVOKED\tNAME")
		for _, k := range keys {
			revoked := "-"
			if k.Revoked() {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Scope, k.Prefix, k.CreatedAt.Format(time.RFC3339), revoked, k.Name)
		}
		return tw.Flush()
	})
}

// runAPIKeyRevoke revokes the key whose ID is the first argument. It stops
// working at once, in every running holdfast serve, and so do the
// dashboard sessions made with it.
func runAPIKeyRevoke(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, "usage: holdfast apikey revoke ID [store flags]\n")
		return exitCode(2)
	}
	id := args[0]
	return withKeyStore(ctx, "apikey revoke", args[1:], getenv, stderr, nil, func(st holdfast.APIKeyStore) error {
		k, err := st.RevokeAPIKey(ctx, id, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "API key %s (%q, scope %s) revoked at %s\n", k.ID, k.Name, k.Scope, k.RevokedAt.Format(time.RFC3339))
		return nil
	})
}

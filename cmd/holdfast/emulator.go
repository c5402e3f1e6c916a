package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"time"

	"github.com/holdfast/holdfast/emulator"
)

// runEmulator serves the Microsoft and Google provider emulator until ctx
// is cancelled. It prints the environment that points holdfast at it on
// stdout, one NAME=value line each, and logs to stderr.
func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: holdfast emulator [flags]\n\n"+
			"Serves a fake Microsoft identity platform + Graph mail and Google OAuth + Gmail API\n"+
			"with fault injection, and a control API under /_emulator (see docs/providers.md).\n\nflags:\n")
		fs.PrintDefaults()
	}
	listen := fs.String("listen", "127.0.0.1:8025", "`address` to listen on")
	var cfg emulator.Config
	fs.StringVar(&cfg.ClientID, "client-id", emulator.DefaultClientID, "the only OAuth client ID the token endpoints accept")
	fs.StringVar(&cfg.ClientSecret, "client-secret", emulator.DefaultClientSecret, "the only OAuth client secret the token endpoints accept")
	fs.DurationVar(&cfg.TokenLifetime, "token-lifetime", time.Hour, "access-token lifetime")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 0, "Graph or Gmail requests per second per mailbox before 429s (0: no limit)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the random source that picks the requests a fault fails")
	fs.DurationVar(&cfg.SentDelay, "sent-delay", 0, "how long a send takes to reach Sent (Graph: in the Outbox meanwhile; Gmail: not found by a search)")
	fs.IntVar(&cfg.MaxAccounts, "max-accounts", 10_000, "most accounts the emulator holds")
	fs.IntVar(&cfg.KeepMessages, "keep-messages", 0, "keep only the last N messages of each folder and N send records per mailbox, forgetting older ones (0: keep all, up to 10,000)")
	var pre emulator.Bulk
	fs.IntVar(&pre.Count, "accounts", 0, "create N accounts at start: {prefix}{i}@t{i % domains}.example, as POST /_emulator/accounts/bulk")
	provider := fs.String("accounts-provider", string(emulator.Microsoft), "provider of the --accounts accounts: microsoft or google")
	fs.StringVar(&pre.Prefix, "accounts-prefix", "lt", "address prefix of the --accounts accounts")
	fs.IntVar(&pre.DomainCount, "accounts-domains", 100, "number of domains (tenants) the --accounts accounts spread over")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	switch {
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "emulator: unexpected argument %q\n", fs.Arg(0))
		return exitCode(2)
	case cfg.ClientID == "" || cfg.ClientSecret == "":
		fmt.Fprintln(stderr, "emulator: --client-id and --client-secret must not be empty")
		return exitCode(2)
	case cfg.TokenLifetime < time.Second:
		fmt.Fprintln(stderr, "emulator: --token-lifetime must be at least 1s")
		return exitCode(2)
	case cfg.RateLimit < 0:
		fmt.Fprintln(stderr, "emulator: --rate-limit must not be negative")
		return exitCode(2)
	case cfg.SentDelay < 0:
		fmt.Fprintln(stderr, "emulator: --sent-delay must not be negative")
		return exitCode(2)
	case cfg.MaxAccounts < 1:
		fmt.Fprintln(stderr, "emulator: --max-accounts must be at least 1")
		return exitCode(2)
	case cfg.KeepMessages < 0:
		fmt.Fprintln(stderr, "emulator: --keep-messages must not be negative")
		return exitCode(2)
	case pre.Count < 0:
		fmt.Fprintln(stderr, "emulator: --accounts must not be negative")
		return exitCode(2)
	}
	pre.Provider = emulator.Provider(*provider)
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.Logger = log

	e := emulator.New(cfg)
	if pre.Count > 0 {
		start := time.Now()
		if _, err := e.CreateAccounts(pre); err != nil {
			fmt.Fprintf(stderr, "emulator: --accounts: %v\n", err)
			return exitCode(2)
		}
		log.Info("emulator accounts created", "count", pre.Count, "provider", pre.Provider, "prefix", pre.Prefix,
			"domains", pre.DomainCount, "took", time.Since(start).Round(time.Millisecond))
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	urls := emulator.URLsFor("http://" + net.JoinHostPort(host, fmt.Sprint(addr.Port)))
	env := urls.Env()
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(stdout, "%s=%s\n", k, env[k])
	}
	log.Info("emulator listening", "addr", ln.Addr().String(), "control", urls.Control,
		"client_id", cfg.ClientID, "token_lifetime", cfg.TokenLifetime, "rate_limit", cfg.RateLimit, "seed", cfg.Seed, "sent_delay", cfg.SentDelay,
		"max_accounts", cfg.MaxAccounts, "keep_messages", cfg.KeepMessages)
	return e.Run(ctx, ln)
}

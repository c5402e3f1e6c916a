// Command holdfast is the holdfast mail gateway: one binary whose
// subcommands run the service, manage its store and keys, classify provider
// errors and replay outage scenarios in the simulator.
//
// This package only wires: the behaviour lives in the packages it imports.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	err := run(context.Background(), os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	var ec exitCode
	switch {
	case err == nil:
	case errors.As(err, &ec):
		os.Exit(int(ec))
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "holdfast:", err)
		os.Exit(1)
	}
}

// exitCode is an error that only carries the process's exit status; the
// subcommand has already said what went wrong.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

const usage = `usage: holdfast <command> [flags]

commands:
  serve           run the service (HTTP API, background jobs)
  migrate         apply database migrations and exit
  apikey create   create an API key (printed once, on the last line); --scope full|read_only|send|dashboard
  apikey list     list the API keys (never their secrets)
  apikey revoke   revoke an API key by ID, and the dashboard sessions made with it
  keys rotate     add a new secret key and re-encrypt every credential under it
  signing-key rotate  new key for status links and dashboard sessions; the previous one still verifies
  classify        classify provider errors: JSON lines on stdin, verdicts on stdout
  sim             replay an outage scenario against the health engine
  emulator        serve a fake Microsoft Graph and Gmail (with OAuth) for tests and demos
  loadtest        run a live fleet test: the emulator, K serve nodes on one PostgreSQL, an outage, a node killed

Run 'holdfast <command> -h' for a command's flags.
`

// run is the whole program. It reads the environment only through getenv,
// so tests can call it in-process. SIGINT and SIGTERM cancel its context.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitCode(2)
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stderr)
	case "migrate":
		return runMigrate(ctx, rest, getenv, stderr)
	case "apikey":
		return runAPIKey(ctx, rest, getenv, stdout, stderr)
	case "keys":
		if len(rest) == 0 || rest[0] != "rotate" {
			fmt.Fprint(stderr, "usage: holdfast keys rotate [store flags]\n")
			return exitCode(2)
		}
		return runKeysRotate(ctx, rest[1:], getenv, stdout, stderr)
	case "signing-key":
		if len(rest) == 0 || rest[0] != "rotate" {
			fmt.Fprint(stderr, "usage: holdfast signing-key rotate [store flags]\n")
			return exitCode(2)
		}
		return runSigningKeyRotate(ctx, rest[1:], getenv, stdout, stderr)
	case "classify":
		return runClassify(ctx, rest, stdin, stdout, stderr)
	case "sim":
		return runSim(ctx, rest, stdout, stderr)
	case "emulator":
		return runEmulator(ctx, rest, stdout, stderr)
	case "loadtest":
		return runLoadtest(ctx, rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "holdfast: unknown command %q\n\n%s", cmd, usage)
	return exitCode(2)
}

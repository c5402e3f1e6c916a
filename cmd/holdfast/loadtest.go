package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/holdfast/holdfast/loadtest"
)

// runLoadtest runs a live fleet test (package loadtest) and exits non-zero
// when a criterion fails.
func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: holdfast loadtest [flags]\n\n"+
			"Starts the emulator and K serve nodes on one PostgreSQL, connects N inboxes, runs a steady phase,\n"+
			"a provider outage (a node killed during it) and the recovery, and checks the criteria of a\n"+
			"fleet (docs/operations.md, \"Load test\"). Exits 1 when a criterion fails.\n\nflags:\n")
		fs.PrintDefaults()
	}
	var cfg loadtest.Config
	fs.IntVar(&cfg.Nodes, "nodes", 3, "`K`, the holdfast serve nodes")
	fs.IntVar(&cfg.Inboxes, "inboxes", 3000, "`N`, the inboxes (and emulator accounts)")
	fs.Float64Var(&cfg.GoogleShare, "google-share", 0.4, "share of Google inboxes; the rest are Microsoft")
	fs.IntVar(&cfg.Tenants, "tenants", 100, "domains each provider's accounts are spread over")
	fs.DurationVar(&cfg.Interval, "interval", 30*time.Second, "serve's sync interval")
	fs.DurationVar(&cfg.Steady, "steady", 2*time.Minute, "length of the steady phase")
	fs.DurationVar(&cfg.Outage, "outage", 2*time.Minute, "length of the provider outage (0: none)")
	fs.DurationVar(&cfg.Recovery, "recovery", 5*time.Minute, "longest wait for every inbox to be connected after the outage")
	kill := fs.String("kill", "1@30s", "`node@after`: kill that node index this long into the outage; \"none\" kills none")
	fs.Float64Var(&cfg.MailRate, "mail-rate", 5, "messages delivered per second")
	fs.Float64Var(&cfg.SendRate, "send-rate", 1, "sends per second (a third scheduled a little ahead)")
	fs.Float64Var(&cfg.EmulatorRate, "emulator-rate", 200, "provider calls per second the fleet is taken to get, for the capacity bound")
	fs.Float64Var(&cfg.CallsPerRecovery, "calls-per-recovery", 2, "provider calls one inbox needs to come back, for the capacity bound")
	fs.BoolVar(&cfg.CapEmulator, "cap-emulator", false, "make the emulator enforce --emulator-rate from the steady phase on")
	fs.DurationVar(&cfg.LeasePeriod, "lease-period", 0, "partition lease length (default the cluster package's)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", loadtest.DefaultDatabaseURL, "PostgreSQL database; each run makes a fresh schema in it")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the schema and the logs after the run")
	fs.StringVar(&cfg.Binary, "binary", "", "the holdfast binary to run (default this one)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the traffic and the emulator")
	fs.StringVar(&cfg.WorkDir, "dir", "", "directory for the logs (default a temporary one, removed after a passing run)")
	fs.StringVar(&cfg.EmulatorBinary, "emulator-binary", "", "the holdfast binary to run the emulator with (default --binary)")
	var emuArgs multiFlag
	fs.Var(&emuArgs, "emulator-arg", "a flag added to the emulator's, like --emulator-arg=--rate-limit=5 (repeatable)")
	var serveEnv multiFlag
	fs.Var(&serveEnv, "serve-env", "`KEY=VALUE` added to every node's environment (repeatable)")
	jsonOut := fs.String("json", "", "write the report as JSON to `file`")
	htmlOut := fs.String("html", "", "write the report as a self-contained HTML page to `file`")
	if err := fs.Parse(args); err != nil {
		return exitCode(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadtest: unexpected argument %q\n", fs.Arg(0))
		return exitCode(2)
	}
	cfg.ServeEnv, cfg.EmulatorArgs = serveEnv, emuArgs
	cfg.KillNode = -1
	if *kill != "none" && *kill != "" {
		i, after, ok := strings.Cut(*kill, "@")
		n, err1 := strconv.Atoi(i)
		d, err2 := time.ParseDuration(after)
		if !ok || err1 != nil || err2 != nil || n < 0 {
			fmt.Fprintf(stderr, "loadtest: --kill %q: want node@after, like 1@30s, or none\n", *kill)
			return exitCode(2)
		}
		cfg.KillNode, cfg.KillAfter = n, d
	}
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("loadtest: find this binary: %w", err)
		}
		cfg.Binary = exe
	}
	// Checked before the defaults fill in zero values: --nodes 0 is an
	// error, not three nodes.
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return exitCode(2)
	}
	rep, err := loadtest.Run(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	if *jsonOut != "" {
		if err := writeFile(*jsonOut, rep.WriteJSON); err != nil {
			return err
		}
	}
	if *htmlOut != "" {
		if err := writeFile(*htmlOut, rep.WriteHTML); err != nil {
			return err
		}
	}
	rep.Summary(stdout)
	if !rep.Pass {
		return exitCode(1)
	}
	return nil
}

// writeFile creates name and writes it with write.
func writeFile(name string, write func(io.Writer) error) error {
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("loadtest: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// multiFlag is a repeatable flag of NAME=VALUE strings.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	*m = append(*m, v)
	return nil
}

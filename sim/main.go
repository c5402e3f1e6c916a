// Package sim is holdfast's simulator: it runs the real health engine and
// the real classifier against simulated providers on a virtual clock, at
// fleet scale, and scores what the engine did against the scenario's
// ground truth. The scenario schema, the policies and the report are
// described in docs/health-engine.md and the shared scenarios README.
//
// Each scenario ERROR object is classified once with classify.Classify and
// its verdict reused for every request that returns it: Classify is pure,
// so this is exactly what classifying every response would give.
//
// The Go API is not stable.
package sim

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// Main runs `holdfast sim` with args (without the program and subcommand
// names). It returns the exit code: 0 when every expect holds, 1 when one
// fails, 2 on bad input.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("holdfast sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	scenario := fs.String("scenario", "", "scenario `FILE` (JSON)")
	policy := fs.String("policy", "holdfast", "policy: holdfast or naive")
	out := fs.String("out", "", "write the JSON report to `FILE`")
	htmlOut := fs.String("html", "", "write the HTML report to `FILE`")
	quiet := fs.Bool("quiet", false, "no progress bar")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *scenario == "" {
		fmt.Fprintln(stderr, "holdfast sim: --scenario is required")
		return 2
	}
	if *policy != "holdfast" && *policy != "naive" {
		fmt.Fprintf(stderr, "holdfast sim: --policy %q: want holdfast or naive\n", *policy)
		return 2
	}
	sc, err := LoadScenario(*scenario)
	if err != nil {
		fmt.Fprintf(stderr, "holdfast sim: %s: %v\n", *scenario, err)
		return 2
	}
	var progress io.Writer = stderr
	if *quiet {
		progress = nil
	}
	rep, r, err := simulate(ctx, sc, *policy, progress)
	if err != nil {
		fmt.Fprintf(stderr, "holdfast sim: %v\n", err)
		return 2
	}
	summary(stdout, rep)
	if *out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(*out, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintf(stderr, "holdfast sim: write report: %v\n", err)
			return 2
		}
	}
	if *htmlOut != "" {
		f, err := os.Create(*htmlOut)
		if err == nil {
			err = r.writeHTML(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "holdfast sim: write html: %v\n", err)
			return 2
		}
	}
	if !check(sc, rep, stdout) {
		return 1
	}
	return 0
}

// Run simulates sc under policy ("holdfast" or "naive") and returns the
// report. progress, if not nil, gets a progress bar.
func Run(ctx context.Context, sc *Scenario, policy string, progress io.Writer) (*Report, error) {
	rep, _, err := simulate(ctx, sc, policy, progress)
	return rep, err
}

func simulate(ctx context.Context, sc *Scenario, policy string, progress io.Writer) (*Report, *run, error) {
	if policy != "holdfast" && policy != "naive" {
		return nil, nil, errors.New("policy: want holdfast or naive")
	}
	start := time.Now()
	r, err := newRun(sc, policy, progress)
	if err != nil {
		return nil, nil, err
	}
	if err := r.loop(ctx); err != nil {
		return nil, nil, err
	}
	r.finish()
	r.rep.WallS = round2(time.Since(start).Seconds())
	r.rep.PeakRSSMB = peakRSSMB()
	return &r.rep, r, nil
}

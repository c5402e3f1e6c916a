package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/holdfast/holdfast/classify"
	"github.com/holdfast/holdfast/sim"
)

// runClassify reads provider errors as JSON lines on stdin and writes one
// verdict line per input, in order.
func runClassify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("classify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: holdfast classify < errors.jsonl

Reads one JSON object a line: {"provider","surface","http_status","raw","operation"}.
Writes one line per input, in order: {"class","reason","scope","action","retry_after_s","outage_sensitive"},
or {"error":"..."} for a line it cannot parse.
`)
	}
	if err := parse(fs, args, func() error { return nil }); err != nil {
		return err
	}
	return classify.Stream(ctx, stdin, stdout)
}

// runSim replays a scenario against the health engine; sim.Main sets the
// exit status (1 when an expectation fails, 2 for bad input).
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if code := sim.Main(ctx, args, stdout, stderr); code != 0 {
		return exitCode(code)
	}
	return nil
}

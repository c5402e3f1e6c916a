package main

import (
	"io"
	"testing"
	"time"

	"github.com/holdfast/holdfast/config"
	"github.com/holdfast/holdfast/health"
)

// TestEngineConfig: serve's engine parameters. The defaults give health.DefaultConfig unchanged, and the
// settings land in their fields, ConfirmStep following ConfirmSpan.
func TestEngineConfig(t *testing.T) {
	t.Parallel()
	parse := func(args ...string) config.Config {
		t.Helper()
		var c config.Config
		fs, finish := config.NewFlagSet("serve", config.FlagsStore|config.FlagsServe, &c, func(string) string { return "" }, io.Discard)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := finish(); err != nil {
			t.Fatal(err)
		}
		return c
	}
	def := parse()
	if got, want := health.DefaultConfig().Tune(def.HealthTuning()), health.DefaultConfig(); got != want {
		t.Errorf("Tune(HealthTuning()) with defaults = %+v, want health.DefaultConfig() %+v", got, want)
	}
	tuned := parse("--health-confirm-span", "50s", "--health-notice-grace", "30s", "--health-keepalive", "2m", "--health-bucket", "2s")
	want := health.DefaultConfig()
	want.ConfirmSpan, want.ConfirmStep, want.NoticeGrace, want.KeepAlive, want.Bucket = 50*time.Second, 20*time.Second, 30*time.Second, 2*time.Minute, 2*time.Second
	if got := health.DefaultConfig().Tune(tuned.HealthTuning()); got != want {
		t.Errorf("Tune(HealthTuning()) = %+v, want %+v", got, want)
	}
}

// Package emulatortest runs a provider emulator for Go tests: Start serves
// a new emulator.Emulator on a loopback httptest server that closes at the
// end of the test, and returns it with its base URLs.
//
// The Go API is not stable.
package emulatortest

import (
	"net/http/httptest"
	"testing"

	"github.com/holdfast/holdfast/emulator"
)

// Start serves an emulator with the default configuration for the rest of
// the test.
func Start(t testing.TB) (*emulator.Emulator, emulator.URLs) {
	t.Helper()
	return StartConfig(t, emulator.Config{})
}

// StartConfig serves an emulator configured by cfg for the rest of the
// test.
func StartConfig(t testing.TB, cfg emulator.Config) (*emulator.Emulator, emulator.URLs) {
	t.Helper()
	e := emulator.New(cfg)
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(e.Close) // runs first: stops the traffic generator
	return e, emulator.URLsFor(srv.URL)
}

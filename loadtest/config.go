package loadtest

import (
	"errors"
	"fmt"
	"time"

	"github.com/holdfast/holdfast/cluster"
)

// Config sizes one load test. The zero value of a field means its default
// (see WithDefaults).
type Config struct {
	// Binary is the holdfast binary started as the emulator and the nodes.
	Binary string
	// EmulatorBinary runs `emulator`; Binary when empty.
	EmulatorBinary string
	// EmulatorArgs are added to the emulator's flags.
	EmulatorArgs []string
	// Nodes is K, the number of `holdfast serve` processes.
	Nodes int
	// Inboxes is N, the number of inboxes (and emulator accounts).
	Inboxes int
	// GoogleShare is the share of Google inboxes, from 0 to 1; the rest
	// are Microsoft.
	GoogleShare float64
	// Tenants is the number of domains each provider's accounts are
	// spread over.
	Tenants int
	// Interval is serve's sync interval (HOLDFAST_SYNC_INTERVAL).
	Interval time.Duration
	// Steady, Outage and Recovery are the phases' lengths; Recovery is the
	// longest the test waits for every inbox to be connected again.
	Steady, Outage, Recovery time.Duration
	// KillNode is the index of the node killed (SIGKILL) KillAfter into
	// the outage; -1 kills none.
	KillNode  int
	KillAfter time.Duration
	// MailRate is messages delivered per second; SendRate is sends
	// accepted per second (a third of them scheduled a little ahead).
	MailRate, SendRate float64
	// EmulatorRate is the provider calls per second the emulator is taken
	// to allow the whole fleet, and CallsPerRecovery the calls one inbox
	// needs to come back: together they give the capacity bound.
	EmulatorRate     float64
	CallsPerRecovery float64
	// CapEmulator makes the emulator enforce EmulatorRate from the steady
	// phase on (POST /_emulator/capacity), split between the providers
	// by their share of the inboxes.
	CapEmulator bool
	// LeasePeriod is a partition lease's length (cluster.DefaultLease).
	LeasePeriod time.Duration
	// DatabaseURL is the PostgreSQL database; each run makes a fresh
	// schema in it and drops it after, unless Keep.
	DatabaseURL string
	Keep        bool
	// WorkDir holds the logs; a fresh temporary directory when empty. It
	// is removed after a passing run unless Keep.
	WorkDir string
	// Seed seeds the traffic and the emulator.
	Seed uint64
	// ServeEnv adds environment variables to every node (KEY=VALUE).
	ServeEnv []string
	// Concurrency is the number of API calls in flight while connecting
	// the inboxes.
	Concurrency int
}

// DefaultDatabaseURL is the database used when Config.DatabaseURL is empty.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	deff := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Nodes, 3)
	def(&c.Inboxes, 3000)
	def(&c.Tenants, 100)
	def(&c.Concurrency, 16)
	defd(&c.Interval, 30*time.Second)
	defd(&c.Steady, 2*time.Minute)
	defd(&c.Recovery, 5*time.Minute)
	defd(&c.LeasePeriod, cluster.DefaultLease)
	deff(&c.MailRate, 5)
	deff(&c.SendRate, 1)
	deff(&c.EmulatorRate, 200)
	deff(&c.CallsPerRecovery, 2)
	if c.DatabaseURL == "" {
		c.DatabaseURL = DefaultDatabaseURL
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Binary == "":
		return errors.New("no holdfast binary")
	case c.Nodes < 1:
		return errors.New("nodes must be at least 1")
	case c.Inboxes < 1:
		return errors.New("inboxes must be at least 1")
	case c.GoogleShare < 0 || c.GoogleShare > 1:
		return errors.New("google share must be from 0 to 1")
	case c.Tenants < 1:
		return errors.New("tenants must be at least 1")
	case c.Interval < time.Second:
		return errors.New("interval must be at least 1s")
	case c.Steady < 2*c.Interval:
		return fmt.Errorf("steady phase %v must be at least two intervals (%v)", c.Steady, 2*c.Interval)
	case c.Outage < 0 || c.Recovery <= 0:
		return errors.New("outage must not be negative, recovery must be positive")
	case c.KillNode >= c.Nodes:
		return fmt.Errorf("kill node %d: there are only %d nodes (0 to %d)", c.KillNode, c.Nodes, c.Nodes-1)
	case c.KillNode >= 0 && c.Nodes < 2:
		return errors.New("killing a node needs at least 2 nodes")
	case c.KillNode >= 0 && c.Outage > 0 && c.KillAfter >= c.Outage:
		return fmt.Errorf("kill at %v is after the outage (%v)", c.KillAfter, c.Outage)
	case c.MailRate < 0 || c.SendRate < 0 || c.EmulatorRate <= 0 || c.CallsPerRecovery <= 0:
		return errors.New("rates must not be negative, emulator rate and calls per recovery must be positive")
	}
	return nil
}

// counts returns the number of Microsoft and Google inboxes.
func (c Config) counts() (microsoft, google int) {
	google = int(float64(c.Inboxes)*c.GoogleShare + 0.5)
	return c.Inboxes - google, google
}

package holdfast

import "time"

// HealthTuning is the part of the health engine's parameters an operator
// may tune (holdfast serve's --health-* flags, see docs/operations.md).
// health.Config.Tune applies it; config reads it from flags and the
// environment. It lives here, in the vocabulary, so that config does not
// depend on the health engine.
type HealthTuning struct {
	// ConfirmSpan is the least time permanent-looking failures must span
	// before an inbox needs its owner.
	ConfirmSpan time.Duration
	// NoticeGrace is how long a reconnect notice waits before its
	// re-check and delivery.
	NoticeGrace time.Duration
	// KeepAlive is the longest an inbox goes without a request before a
	// cheap authenticated probe.
	KeepAlive time.Duration
	// Bucket is the outage detector's resolution.
	Bucket time.Duration
	// CloseWindow is how long probes must succeed before an incident
	// closes and recovery starts.
	CloseWindow time.Duration
	// Settle is how long an incident stays open after recovery started
	// (its scope healthy), so that failures that return continue it:
	// a flapping provider is one incident. Zero resolves it at once.
	Settle time.Duration
}

// DefaultHealthTuning returns the tunable parameters holdfast runs with;
// health.DefaultConfig has the same values.
func DefaultHealthTuning() HealthTuning {
	return HealthTuning{
		ConfirmSpan: 10 * time.Minute,
		NoticeGrace: 15 * time.Minute,
		KeepAlive:   20 * time.Minute,
		Bucket:      10 * time.Second,
		CloseWindow: 30 * time.Second,
		Settle:      10 * time.Minute,
	}
}

// HealthShortWindow is the outage detector's short window, in buckets:
// the time it takes to react to an outage is about this many buckets.
const HealthShortWindow = 6

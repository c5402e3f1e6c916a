// Package health is the health engine of holdfast: it decides, for every
// inbox, what each provider outcome means (keep going, retry later, hold,
// pause, ask the owner or an administrator to act), watches the whole fleet
// so that a provider-wide or tenant-wide failure is recognised as such,
// guards destructive actions with a budget, brings paused inboxes back with
// an adaptive ramp when an incident closes, and decides when a "please
// reconnect" notice may go out and when a due send must be held.
//
// The engine is a plain value: it does no I/O, starts no goroutines and
// reads the time only from the injected holdfast.Clock. Inboxes and tenants
// are addressed by dense int32 indices (the service maps its IDs to them) and
// per-inbox state is kept as struct-of-arrays, so the hot path (Observe)
// allocates nothing. Decisions are returned (Decision) or emitted through a
// Sink that the caller persists; Snapshot and Restore save and load the
// whole state.
//
// The engine is not safe for concurrent use: the owner serialises calls.
//
// See docs/health-engine.md for the design, the parameters and why each
// default was chosen. The Go API is not stable.
package health

// Package holdfast is the domain vocabulary of the holdfast mail gateway:
// connected inboxes, their providers and connection states, the inbox event
// log, API keys, the store seam and the typed errors that callers decide on.
//
// It imports nothing from this module. Adapters (store/sqlite,
// store/postgres, httpapi, provider/...) implement or consume the interfaces
// declared here, and cmd/holdfast wires them together.
//
// The Go API is not stable.
package holdfast

// Package loadtest runs a live fleet test of holdfast on one machine: a
// `holdfast emulator` child process holding N provider accounts, K
// `holdfast serve` child processes sharing one PostgreSQL database, mail
// arriving and sends falling due at set rates, and a timeline of phases
// (steady state, a provider outage with the errors of the 2025-03-01
// incident, a node killed mid-outage, recovery). It measures what the
// fleet achieved, checks it against the criteria of issue 13 and reports
// as JSON and as a self-contained HTML page.
//
// Run is the whole test; Evaluate is the criteria math, without I/O.
// `holdfast loadtest` wires the flags to Config.
//
// The Go API of this package is not stable.
package loadtest

package holdfast

import "time"

// Clock tells the time. Services take one so that tests, testing/synctest
// and the simulator can control time.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }

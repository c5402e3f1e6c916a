package emulator

import (
	"context"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// HeaderArrived is the header of a generated message that holds the time
// it arrived at the emulator, in RFC 3339 with nanoseconds. The same time
// is in its subject and, as Unix nanoseconds, in its Message-ID.
const HeaderArrived = "X-Emulator-Arrived"

// trafficTick is how often the generator delivers what is due.
const trafficTick = 10 * time.Millisecond

// maxTrafficRate bounds Traffic.RatePerSec.
const maxTrafficRate = 100_000

// trafficBody is every generated message's text: 200 bytes, shared.
var trafficBody = strings.Repeat("Load test message from the holdfast emulator. ", 5)[:200]

// Traffic describes mail arriving at a steady rate: RatePerSec messages a
// second, each to a mailbox drawn uniformly from Emails (nil: every account,
// including those created later) with a random source seeded by Seed.
type Traffic struct {
	RatePerSec float64  `json:"rate_per_sec"`
	Emails     []string `json:"emails,omitempty"`
	Seed       uint64   `json:"seed"`
}

// TrafficState describes the generator.
type TrafficState struct {
	Running    bool      `json:"running"`
	RatePerSec float64   `json:"rate_per_sec,omitempty"`
	Accounts   int       `json:"accounts,omitempty"` // mailboxes it picks from; 0: all
	Started    time.Time `json:"started,omitzero"`
	Generated  uint64    `json:"generated"` // messages it made since it started
}

// traffic is a running generator, owned by the Emulator: StopTraffic,
// StartTraffic (which replaces it) and Close stop its goroutine.
type traffic struct {
	cfg     Traffic
	targets []*account // nil: e.order
	rng     *mrand.Rand
	started time.Time
	made    uint64 // messages due so far, delivered or dropped
	cancel  context.CancelFunc
	done    chan struct{} // closed when the goroutine ends
}

func (t *traffic) stateLocked() TrafficState {
	return TrafficState{Running: true, RatePerSec: t.cfg.RatePerSec, Accounts: len(t.targets),
		Started: t.started, Generated: t.made}
}

// StartTraffic starts delivering generated messages as t describes,
// replacing the generator that runs, if any. Each message is an inbox
// message from traffic@sender.example whose arrival time is in its
// X-Emulator-Arrived header, its subject ("loadtest N arrived TIME") and
// its Message-ID (<arrived.UNIXNANO.N@emulator.invalid>), with a 200-byte
// text. Which mailbox gets each is random; the pacing follows the
// emulator's clock, in 10 ms steps. It returns an *InvalidError for a rate
// outside (0, 100000] or an address with no account.
func (e *Emulator) StartTraffic(t Traffic) (TrafficState, error) {
	if math.IsNaN(t.RatePerSec) || t.RatePerSec <= 0 || t.RatePerSec > maxTrafficRate {
		return TrafficState{}, invalidf("rate_per_sec", "must be above 0 and at most %d", maxTrafficRate)
	}
	tr := &traffic{cfg: t, rng: mrand.New(mrand.NewPCG(t.Seed, t.Seed^0x6a09e667f3bcc909)), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	tr.cancel = cancel
	e.mu.Lock()
	for _, email := range t.Emails {
		acc := e.accounts[strings.ToLower(strings.TrimSpace(email))]
		if acc == nil {
			e.mu.Unlock()
			cancel()
			return TrafficState{}, invalidf("emails", "no mailbox %s", email)
		}
		tr.targets = append(tr.targets, acc)
	}
	tr.started = e.now()
	old := e.traffic
	e.traffic = tr
	st := tr.stateLocked()
	e.mu.Unlock()
	if old != nil {
		old.stop()
	}
	go e.runTraffic(ctx, tr) // ends when tr.cancel is called: StopTraffic, StartTraffic or Close
	e.cfg.Logger.Info("emulator: traffic started", "rate_per_sec", t.RatePerSec, "accounts", len(tr.targets), "seed", t.Seed)
	return st, nil
}

// StopTraffic stops the generator, if one runs, and waits for it. It
// reports whether one ran.
func (e *Emulator) StopTraffic() bool {
	e.mu.Lock()
	t := e.traffic
	e.traffic = nil
	e.mu.Unlock()
	if t == nil {
		return false
	}
	t.stop()
	e.cfg.Logger.Info("emulator: traffic stopped", "generated", t.made)
	return true
}

func (t *traffic) stop() {
	t.cancel()
	<-t.done
}

// runTraffic delivers tr's messages as they fall due until ctx ends.
func (e *Emulator) runTraffic(ctx context.Context, tr *traffic) {
	defer close(tr.done)
	tick := time.NewTicker(trafficTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		e.mu.Lock()
		if e.traffic == tr {
			e.trafficStepLocked(tr, e.now())
		}
		e.mu.Unlock()
	}
}

// trafficStepLocked delivers the messages due at now. A generator that
// fell behind by more than a second's worth skips the backlog.
func (e *Emulator) trafficStepLocked(tr *traffic, now time.Time) {
	elapsed := now.Sub(tr.started).Seconds()
	if elapsed <= 0 {
		return
	}
	due := uint64(elapsed * tr.cfg.RatePerSec)
	if due <= tr.made {
		return
	}
	if burst := uint64(math.Max(1, tr.cfg.RatePerSec)); due-tr.made > burst {
		tr.made = due - burst
	}
	for ; tr.made < due; tr.made++ {
		targets := tr.targets
		if targets == nil {
			targets = e.order
		}
		if len(targets) == 0 {
			tr.made = due
			return
		}
		acc := targets[tr.rng.IntN(len(targets))]
		e.generateLocked(acc, tr.made+1, now)
	}
}

// generateLocked delivers generated message n to acc, arrived at now.
func (e *Emulator) generateLocked(acc *account, n uint64, now time.Time) {
	seq := strconv.FormatUint(n, 10)
	at := now.UTC().Format(time.RFC3339Nano)
	msg := &message{folder: folderInbox, from: "traffic@sender.example", to: []string{acc.email},
		subject: "loadtest " + seq + " arrived " + at, text: trafficBody, received: now, generated: true,
		messageID: "<arrived." + strconv.FormatInt(now.UnixNano(), 10) + "." + seq + "@emulator.invalid>"}
	if err := e.storeLocked(acc, msg); err != nil {
		e.stats.dropped++
		return
	}
	e.stats.generated++
}

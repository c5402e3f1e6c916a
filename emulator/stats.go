package emulator

import (
	"cmp"
	"math"
	"net/http"
	"slices"
	"time"
)

// defaultDupWindow is the duplicate-sync window until SetDupWindow.
const defaultDupWindow = time.Second

// topDuplicates is how many accounts Stats names in TopDuplicateSyncs.
const topDuplicates = 20

// counters are the emulator's running totals for Stats, guarded by e.mu.
type counters struct {
	dupWindow time.Duration

	delivered     uint64 // messages put into inboxes (control, traffic, sends between accounts)
	generated     uint64 // by the traffic generator
	dropped       uint64 // generated but refused by a full mailbox
	apiRequests   map[Provider]uint64
	syncCalls     uint64
	dupSyncs      uint64
	sends         uint64
	tokenRequests map[Provider]uint64
	faulted       map[Surface]uint64
	throttled     map[Provider]uint64 // 429s of the provider capacity (SetCapacity)
	mailboxLimit  uint64              // 429s of the per-mailbox limit (Config.RateLimit)
}

// count adds one to m[k], making m on first use.
func count[K comparable](m *map[K]uint64, k K) {
	if *m == nil {
		*m = map[K]uint64{}
	}
	(*m)[k]++
}

// Stats is a snapshot of what the emulator has seen, for load tests.
type Stats struct {
	// Accounts counts the accounts by provider.
	Accounts map[Provider]int `json:"accounts"`
	// Delivered counts messages put into inboxes: by the control API, the
	// traffic generator, and sends between accounts here.
	Delivered uint64 `json:"delivered"`
	// Generated counts the traffic generator's messages; Dropped those of
	// them a full mailbox refused (only without Config.KeepMessages).
	Generated uint64       `json:"generated"`
	Dropped   uint64       `json:"dropped"`
	Traffic   TrafficState `json:"traffic"`
	// APIRequests counts Graph and Gmail requests, by provider (answered
	// or not).
	APIRequests map[Provider]uint64 `json:"api_requests"`
	// SyncCalls counts sync calls: the first request of a Graph delta
	// round (no $skiptoken), a Gmail history.list or a messages.list
	// without pageToken and without an rfc822msgid: search.
	SyncCalls uint64 `json:"sync_calls"`
	// DuplicateSyncs counts sync calls that came within DupWindowMS of the
	// same mailbox's previous one; AccountsWithDuplicateSyncs the
	// mailboxes that made at least one.
	DuplicateSyncs             uint64 `json:"duplicate_syncs"`
	AccountsWithDuplicateSyncs int    `json:"accounts_with_duplicate_syncs"`
	DupWindowMS                int64  `json:"dup_window_ms"`
	// TopDuplicateSyncs names the mailboxes with the most duplicate syncs,
	// most first, at most 20.
	TopDuplicateSyncs []AccountSyncs `json:"top_duplicate_syncs"`
	// SendsAccepted counts accepted send calls; DistinctMessageIDs the
	// Internet Message-IDs among them (see SentSummary).
	SendsAccepted      uint64 `json:"sends_accepted"`
	DistinctMessageIDs int    `json:"distinct_message_ids"`
	// TokenRequests counts token-endpoint requests by provider.
	TokenRequests map[Provider]uint64 `json:"token_requests"`
	// Faulted counts requests answered by an injected fault, by surface.
	Faulted map[Surface]uint64 `json:"faulted"`
	// Throttled counts 429s of the provider capacity (SetCapacity), by
	// provider; MailboxThrottled those of Config.RateLimit.
	Throttled        map[Provider]uint64 `json:"throttled"`
	MailboxThrottled uint64              `json:"mailbox_throttled"`
	// Capacity is the configured provider capacity, requests per second.
	Capacity map[Provider]float64 `json:"capacity_per_s"`
}

// AccountSyncs is one mailbox's sync-call record.
type AccountSyncs struct {
	Email          string      `json:"email"`
	SyncCalls      uint32      `json:"sync_calls"`
	DuplicateSyncs uint32      `json:"duplicate_syncs"`
	LastSyncs      []time.Time `json:"last_syncs"` // the last two, latest first
}

// recordSyncLocked notes a sync call by acc now.
func (e *Emulator) recordSyncLocked(acc *account) {
	now := e.now().UnixNano()
	e.stats.syncCalls++
	acc.syncs++
	if last := acc.lastSync[0]; last != 0 && now-last < int64(e.stats.dupWindow) {
		acc.dupSyncs++
		e.stats.dupSyncs++
	}
	acc.lastSync[1], acc.lastSync[0] = acc.lastSync[0], now
}

// SetDupWindow sets how close two sync calls of a mailbox must be to count
// the second as a duplicate (default one second). Earlier counts stay.
func (e *Emulator) SetDupWindow(d time.Duration) error {
	if d < 0 {
		return invalidf("dup_window_ms", "must not be negative")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats.dupWindow = d
	return nil
}

// ResetStats zeroes every counter of Stats and SentSummary, and each
// mailbox's sync record; accounts, messages and settings stay.
func (e *Emulator) ResetStats() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stats = counters{dupWindow: e.stats.dupWindow}
	e.sentIDs = map[string]uint32{}
	for _, acc := range e.order {
		acc.lastSync, acc.syncs, acc.dupSyncs = [2]int64{}, 0, 0
	}
}

// Stats returns a snapshot of the counters. It walks every account, which
// takes a few milliseconds at 100,000.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &e.stats
	s := Stats{
		Accounts: map[Provider]int{Microsoft: 0, Google: 0}, Delivered: c.delivered, Generated: c.generated,
		Dropped: c.dropped, APIRequests: cloneMap(c.apiRequests), SyncCalls: c.syncCalls,
		DuplicateSyncs: c.dupSyncs, DupWindowMS: c.dupWindow.Milliseconds(), SendsAccepted: c.sends,
		DistinctMessageIDs: len(e.sentIDs), TokenRequests: cloneMap(c.tokenRequests), Faulted: cloneMap(c.faulted),
		Throttled: cloneMap(c.throttled), MailboxThrottled: c.mailboxLimit, Capacity: map[Provider]float64{},
		TopDuplicateSyncs: []AccountSyncs{},
	}
	if e.traffic != nil {
		s.Traffic = e.traffic.stateLocked()
	}
	for p, b := range e.capacity {
		s.Capacity[p] = b.rate
	}
	var top []*account
	for _, acc := range e.order {
		s.Accounts[acc.provider]++
		if acc.dupSyncs == 0 {
			continue
		}
		s.AccountsWithDuplicateSyncs++
		top = append(top, acc)
	}
	slices.SortFunc(top, func(a, b *account) int {
		return cmp.Or(cmp.Compare(b.dupSyncs, a.dupSyncs), cmp.Compare(a.email, b.email))
	})
	for _, acc := range top[:min(len(top), topDuplicates)] {
		s.TopDuplicateSyncs = append(s.TopDuplicateSyncs, acc.syncRecord())
	}
	return s
}

func (acc *account) syncRecord() AccountSyncs {
	r := AccountSyncs{Email: acc.email, SyncCalls: acc.syncs, DuplicateSyncs: acc.dupSyncs, LastSyncs: []time.Time{}}
	for _, t := range acc.lastSync {
		if t != 0 {
			r.LastSyncs = append(r.LastSyncs, time.Unix(0, t).UTC())
		}
	}
	return r
}

func cloneMap[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// countSendLocked records an accepted send carrying messageID.
func (e *Emulator) countSendLocked(messageID string) {
	e.stats.sends++
	e.sentIDs[messageID]++
}

// SentSummary counts the accepted sends of every mailbox, so that lost
// and duplicated sends can be computed: Total send calls, the distinct
// Internet Message-IDs among them, and the Message-IDs accepted more than
// once (sorted).
type SentSummary struct {
	Total              uint64   `json:"total"`
	DistinctMessageIDs int      `json:"distinct_message_ids"`
	Duplicates         []string `json:"duplicates"`
}

// SentSummary returns the summary of accepted sends since the start (or
// ResetStats).
func (e *Emulator) SentSummary() SentSummary {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := SentSummary{Total: e.stats.sends, DistinctMessageIDs: len(e.sentIDs), Duplicates: []string{}}
	for id, n := range e.sentIDs {
		if n > 1 {
			s.Duplicates = append(s.Duplicates, id)
		}
	}
	slices.Sort(s.Duplicates)
	return s
}

// bucket is a token bucket holding one second's worth of requests.
type bucket struct {
	rate       float64
	retryAfter float64 // seconds; 0: computed from the rate
	tokens     float64
	filled     time.Time
}

// take takes one token at now; when none is left it returns false and the
// seconds until one is.
func (b *bucket) take(now time.Time) (float64, bool) {
	if now.After(b.filled) {
		b.tokens = math.Min(math.Max(1, b.rate), b.tokens+now.Sub(b.filled).Seconds()*b.rate)
		b.filled = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	if b.retryAfter > 0 {
		return b.retryAfter, false
	}
	return math.Max(1, math.Ceil((1-b.tokens)/b.rate)), false
}

// SetCapacity makes provider p accept at most perSecond requests per
// second in all (Graph or Gmail and its token endpoint together, a bucket
// holding one second's worth); beyond it requests are answered 429 with
// Retry-After: retryAfterS seconds, or when zero the whole seconds until
// the bucket holds a request again. Zero perSecond removes the limit.
func (e *Emulator) SetCapacity(p Provider, perSecond, retryAfterS float64) error {
	if p != Microsoft && p != Google {
		return invalidf("provider", "must be %q or %q", Microsoft, Google)
	}
	if math.IsNaN(perSecond) || perSecond < 0 || math.IsInf(perSecond, 0) {
		return invalidf("capacity_per_s", "must be zero or more")
	}
	if math.IsNaN(retryAfterS) || retryAfterS < 0 || retryAfterS > 3600 {
		return invalidf("retry_after_s", "must be from 0 to 3600 seconds")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if perSecond == 0 {
		delete(e.capacity, p)
	} else {
		e.capacity[p] = &bucket{rate: perSecond, retryAfter: retryAfterS, tokens: math.Max(1, perSecond), filled: e.now()}
	}
	e.cfg.Logger.Info("emulator: provider capacity set", "provider", p, "capacity_per_s", perSecond, "retry_after_s", retryAfterS)
	return nil
}

// admitLocked counts a request to surface s of provider p and takes it
// from the provider's capacity; when over it, it answers the surface's 429
// with Retry-After and returns false.
func (e *Emulator) admitLocked(w http.ResponseWriter, p Provider, s Surface) bool {
	if s == SurfaceToken || s == SurfaceGoogleToken {
		count(&e.stats.tokenRequests, p)
	} else {
		count(&e.stats.apiRequests, p)
	}
	b := e.capacity[p]
	if b == nil {
		return true
	}
	wait, ok := b.take(e.now())
	if ok {
		return true
	}
	count(&e.stats.throttled, p)
	e.injectFault(w, &fault{Fault: Fault{HTTPStatus: http.StatusTooManyRequests, RetryAfterS: wait}}, s)
	return false
}

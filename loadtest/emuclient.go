package loadtest

// The client of the emulator's control API, kept in this one file: the
// bulk, stats and sent-summary endpoints are newer than the others, and
// each has a fallback for an emulator without them.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errMissing is returned by an endpoint the emulator does not have.
var errMissing = errors.New("emulator endpoint missing")

// emuClient calls the emulator's control API under base (…/_emulator).
type emuClient struct {
	base string
	hc   *http.Client
}

func newEmuClient(base string) *emuClient {
	return &emuClient{base: base, hc: &http.Client{Timeout: 2 * time.Minute}}
}

// do sends one request with a JSON body (if in is not nil) and decodes a
// JSON answer into out (if not nil). A 404 or 405 is errMissing.
func (c *emuClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		j, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound && bytes.Contains(raw, []byte("404 page not found")),
		resp.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Errorf("%s %s: %w", method, path, errMissing)
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("%s %s = %d %s", method, path, resp.StatusCode, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// grant is one account and its refresh token.
type grant struct {
	Email        string `json:"email"`
	RefreshToken string `json:"refresh_token"`
}

// accountEmail is the address of account i of a bulk creation.
func accountEmail(prefix string, i, domains int) string {
	return fmt.Sprintf("%s%d@t%d.example", prefix, i, i%domains)
}

// createAccounts makes count accounts of provider, prefix{i}@t{i %
// domains}.example, in one bulk call, or one by one (concurrently) on an
// emulator without the bulk endpoint. done is told the accounts made so
// far.
func (c *emuClient) createAccounts(ctx context.Context, provider, prefix string, domains, count, concurrency int, done func(int)) ([]grant, error) {
	if count == 0 {
		return nil, nil
	}
	var raw json.RawMessage
	req := map[string]any{"provider": provider, "prefix": prefix, "domain_count": domains, "count": count, "start": 0}
	err := c.do(ctx, http.MethodPost, "/accounts/bulk", req, &raw)
	if err == nil {
		// The answer is {"accounts": [...]} (or, as first specified, the
		// list alone).
		var bulk []grant
		var wrapped struct {
			Accounts []grant `json:"accounts"`
		}
		if err := json.Unmarshal(raw, &wrapped); err == nil && wrapped.Accounts != nil {
			bulk = wrapped.Accounts
		} else if err := json.Unmarshal(raw, &bulk); err != nil {
			return nil, fmt.Errorf("bulk accounts: decode answer: %w", err)
		}
		if len(bulk) != count {
			return nil, fmt.Errorf("bulk accounts: asked for %d, got %d", count, len(bulk))
		}
		done(count)
		return bulk, nil
	}
	if !errors.Is(err, errMissing) {
		return nil, err
	}
	out := make([]grant, count)
	var (
		next, made atomic.Int64
		wg         sync.WaitGroup
		mu         sync.Mutex
		first      error
	)
	for range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= count || ctx.Err() != nil {
					return
				}
				email := accountEmail(prefix, i, domains)
				var g grant
				if err := c.do(ctx, http.MethodPost, "/accounts", map[string]any{"provider": provider, "email": email}, &g); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				g.Email = email
				out[i] = g
				done(int(made.Add(1)))
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, first
	}
	return out, ctx.Err()
}

// deliver delivers one message.
func (c *emuClient) deliver(ctx context.Context, to, messageID, subject string) error {
	return c.do(ctx, http.MethodPost, "/mail", map[string]any{"to": to, "from": "sender@loadtest.example",
		"subject": subject, "text": "Load test mail.", "message_id": messageID}, nil)
}

// addFault starts a fault (emulator.Fault's JSON) and returns its ID.
func (c *emuClient) addFault(ctx context.Context, f map[string]any) (string, error) {
	var r struct {
		ID string `json:"id"`
	}
	err := c.do(ctx, http.MethodPost, "/faults", f, &r)
	return r.ID, err
}

// removeFault ends a fault.
func (c *emuClient) removeFault(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/faults/"+url.PathEscape(id), nil, nil)
}

// setDupWindow sets the window of the emulator's duplicate-sync counter;
// errMissing on an emulator without it.
func (c *emuClient) setDupWindow(ctx context.Context, d time.Duration) error {
	return c.do(ctx, http.MethodPost, "/stats/config", map[string]any{"dup_window_ms": d.Milliseconds()}, nil)
}

// emuStats are the emulator's counters that the load test reads.
type emuStats struct {
	SyncCalls      int64
	DuplicateSyncs int64
	HasDuplicates  bool
	// Generated and Dropped count the traffic generator's messages.
	Generated, Dropped int64
	// TopDuplicates describes the accounts with the most duplicate syncs
	// (email and their last two sync times), for the report's notes.
	TopDuplicates []string
}

// stats reads GET /stats; errMissing on an emulator without it. The
// duplicate-sync counter is read from duplicate_syncs (a number, or an
// object of per-account counts, summed).
func (c *emuClient) stats(ctx context.Context) (emuStats, error) {
	var raw map[string]any
	if err := c.do(ctx, http.MethodGet, "/stats", nil, &raw); err != nil {
		return emuStats{}, err
	}
	var s emuStats
	s.SyncCalls = int64(sumJSON(raw["sync_calls"]))
	s.Generated, s.Dropped = int64(sumJSON(raw["generated"])), int64(sumJSON(raw["dropped"]))
	for _, k := range []string{"duplicate_syncs", "dup_syncs"} {
		if v, ok := raw[k]; ok {
			s.DuplicateSyncs, s.HasDuplicates = int64(sumJSON(v)), true
			break
		}
	}
	if top, ok := raw["top_duplicate_syncs"].([]any); ok {
		for _, x := range top {
			if a, ok := x.(map[string]any); ok && len(s.TopDuplicates) < 5 {
				s.TopDuplicates = append(s.TopDuplicates, fmt.Sprintf("%v (%v duplicates, last syncs %v)", a["email"], a["duplicate_syncs"], a["last_syncs"]))
			}
		}
	}
	return s, nil
}

// sumJSON adds up the numbers in v: a number, or an object or list of them.
func sumJSON(v any) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case map[string]any:
		t := 0.0
		for _, x := range v {
			t += sumJSON(x)
		}
		return t
	case []any:
		t := 0.0
		for _, x := range v {
			t += sumJSON(x)
		}
		return t
	}
	return 0
}

// sentSummary is GET /sent/summary.
type sentSummary struct {
	Total              int
	DistinctMessageIDs int
	// Duplicates is the Message-IDs accepted more than once.
	Duplicates int
}

// summary reads GET /sent/summary; errMissing on an emulator without it.
// Its duplicates are a list of Message-IDs, or a count.
func (c *emuClient) summary(ctx context.Context) (sentSummary, error) {
	var raw struct {
		Total              int             `json:"total"`
		DistinctMessageIDs int             `json:"distinct_message_ids"`
		Duplicates         json.RawMessage `json:"duplicates"`
	}
	if err := c.do(ctx, http.MethodGet, "/sent/summary", nil, &raw); err != nil {
		return sentSummary{}, err
	}
	s := sentSummary{Total: raw.Total, DistinctMessageIDs: raw.DistinctMessageIDs}
	var list []json.RawMessage
	if err := json.Unmarshal(raw.Duplicates, &list); err == nil {
		s.Duplicates = len(list)
	} else {
		_ = json.Unmarshal(raw.Duplicates, &s.Duplicates)
	}
	return s, nil
}

// startTraffic starts the emulator's mail generator over every account;
// errMissing on an emulator without it. Its messages carry their arrival
// time in their Message-ID (see arrivalOf).
func (c *emuClient) startTraffic(ctx context.Context, rate float64, seed uint64) error {
	return c.do(ctx, http.MethodPost, "/traffic", map[string]any{"rate_per_sec": rate, "emails": "all", "seed": seed}, nil)
}

// stopTraffic stops the generator.
func (c *emuClient) stopTraffic(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/traffic", nil, nil)
}

// setCapacity caps a provider's requests per second in all (0 removes
// the cap); errMissing on an emulator without it.
func (c *emuClient) setCapacity(ctx context.Context, provider string, perSecond float64) error {
	return c.do(ctx, http.MethodPost, "/capacity", map[string]any{"provider": provider, "capacity_per_s": perSecond}, nil)
}

// generatedSuffix ends the Message-ID of the generator's messages,
// <arrived.UNIXNANO.N@emulator.invalid>.
const generatedSuffix = "@emulator.invalid>"

// arrivalOf returns the arrival time the generator put in a Message-ID.
func arrivalOf(messageID string) (time.Time, bool) {
	rest, ok := strings.CutPrefix(messageID, "<arrived.")
	if !ok || !strings.HasSuffix(rest, generatedSuffix) {
		return time.Time{}, false
	}
	ns, _, ok := strings.Cut(rest, ".")
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n), true
}

// sentMessageIDs lists the Message-IDs of the sends from one mailbox, in
// the order the emulator accepted them, duplicates included.
func (c *emuClient) sentMessageIDs(ctx context.Context, from string) ([]string, error) {
	var r struct {
		Data []struct {
			MessageID string `json:"message_id"`
		} `json:"data"`
	}
	if err := c.do(ctx, http.MethodGet, "/sent?from="+url.QueryEscape(from), nil, &r); err != nil {
		return nil, err
	}
	ids := make([]string, len(r.Data))
	for i, m := range r.Data {
		ids[i] = m.MessageID
	}
	return ids, nil
}

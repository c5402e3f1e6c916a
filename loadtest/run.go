package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holdfast/holdfast/emulator"
)

// The outage's errors, those of the 2025-03-01 incident (classify's
// vectors ms-token-50173 and g-token-expired-or-revoked): answers that
// normally mean the user changed their password or revoked the grant.
const (
	outageBodyMicrosoft = `{"error":"invalid_grant","error_description":"AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password. The grant was issued on '2021-10-29T17:06:26.4084709Z' and the TokensValidFrom date (before which tokens are not valid) for this user is '2021-10-29T17:16:00.0000000Z'.\r\nTrace ID: 47a23f57-3717-4857-8fab-b3485aeba800\r\nCorrelation ID: 14bf0b94-fba8-4d0b-84da-5f1c505531cf\r\nTimestamp: 2021-10-29 17:16:31Z","error_codes":[50173],"timestamp":"2021-10-29 17:16:31Z","trace_id":"47a23f57-3717-4857-8fab-b3485aeba800","correlation_id":"14bf0b94-fba8-4d0b-84da-5f1c505531cf","error_uri":"https://login.microsoftonline.com/error?code=50173","suberror":"bad_token"}`
	outageBodyGoogle    = "{\n  \"error\": \"invalid_grant\",\n  \"error_description\": \"Token has been expired or revoked.\"\n}"
)

// node is one `holdfast serve` of the fleet.
type node struct {
	index       int
	id          string
	api, metric string // base URLs
	proc        *process
	killed      bool
	last        nodeMetrics
}

// inbox is one inbox of the fleet.
type inbox struct {
	id, email, provider string
}

// sendRec is one accepted send.
type sendRec struct {
	id, messageID, from string
}

// fleet is one run in progress.
type fleet struct {
	cfg      Config
	out      io.Writer
	dir      string
	procs    processes
	db       *db
	emu      *emuClient
	relay    *relay
	hooks    *hooks
	api      *api
	nodes    []*node
	inboxes  []inbox
	rng      *mrand.Rand
	rngMu    sync.Mutex
	notes    []string
	t0       time.Time
	mailN    atomic.Int64
	sendsMu  sync.Mutex
	sends    []sendRec
	sendErrs atomic.Int64
	// emuTraffic is true when the emulator generates the mail.
	emuTraffic bool
}

// Run runs one load test and returns its report; the report's Pass says
// whether every criterion passed. An error means the test itself could not
// run. progress receives a progress line every few seconds. The child
// processes are killed when Run returns, also on a panic or when ctx is
// cancelled.
func Run(ctx context.Context, cfg Config, progress io.Writer) (_ *Report, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loadtest: %w", err)
	}
	f := &fleet{cfg: cfg, out: progress, rng: mrand.New(mrand.NewPCG(cfg.Seed, 13))}
	f.dir = cfg.WorkDir
	if f.dir != "" {
		if err := os.MkdirAll(f.dir, 0o700); err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
	} else {
		if f.dir, err = os.MkdirTemp("", "holdfast-loadtest-"); err != nil {
			return nil, fmt.Errorf("loadtest: %w", err)
		}
	}
	defer f.procs.stopAll(10 * time.Second)
	rep, err := f.run(ctx)
	f.procs.stopAll(10 * time.Second)
	if f.relay != nil {
		f.relay.close()
	}
	if f.hooks != nil {
		f.hooks.close()
	}
	if f.db != nil {
		if cerr := f.db.close(cfg.Keep); cerr != nil && err == nil {
			err = cerr
		} else if cerr != nil {
			fmt.Fprintf(progress, "loadtest: %v\n", cerr)
		}
	}
	switch {
	case err == nil && rep.Pass && !cfg.Keep && cfg.WorkDir == "":
		_ = os.RemoveAll(f.dir)
	default:
		if rep != nil {
			rep.LogDir = f.dir
		}
		fmt.Fprintf(progress, "loadtest: logs kept in %s\n", f.dir)
	}
	return rep, err
}

func (f *fleet) logf(format string, args ...any) {
	fmt.Fprintf(f.out, "loadtest: "+format+"\n", args...)
}

func (f *fleet) note(format string, args ...any) {
	f.notes = append(f.notes, fmt.Sprintf(format, args...))
}

func (f *fleet) run(ctx context.Context) (*Report, error) {
	cfg := f.cfg
	var err error
	var note string
	if f.db, note, err = openDB(ctx, cfg.DatabaseURL); err != nil {
		return nil, err
	}
	if note != "" {
		f.note("%s", note)
	}
	if f.relay, err = startRelay(f.dir); err != nil {
		return nil, err
	}
	if f.hooks, err = startHooks(); err != nil {
		return nil, err
	}
	emuEnv, err := f.startEmulator(ctx)
	if err != nil {
		return nil, err
	}
	env := f.serveEnv(emuEnv)
	if _, err := runOnce(ctx, cfg.Binary, []string{"migrate"}, append(env, "HOLDFAST_DATA_DIR="+filepath.Join(f.dir, "admin"))); err != nil {
		return nil, err
	}
	out, err := runOnce(ctx, cfg.Binary, []string{"apikey", "create", "--name", "loadtest"}, append(env, "HOLDFAST_DATA_DIR="+filepath.Join(f.dir, "admin")))
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	key := strings.TrimSpace(lines[len(lines)-1])
	if !strings.HasPrefix(key, "hf_") {
		return nil, errNoKey
	}
	f.api = &api{key: key, hc: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	if err := f.startNodes(ctx, env); err != nil {
		return nil, err
	}
	if _, err := f.api.call(ctx, http.MethodPost, f.nodes[0].api+"/v1/webhooks", map[string]any{"url": f.hooks.url(), "events": []string{"*"}}, nil); err != nil {
		return nil, fmt.Errorf("register webhook: %w", err)
	}
	if err := f.connect(ctx); err != nil {
		return nil, err
	}
	return f.timeline(ctx)
}

// startEmulator starts `holdfast emulator` and returns the environment
// that points the nodes at it.
func (f *fleet) startEmulator(ctx context.Context) (map[string]string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	bin := f.cfg.EmulatorBinary
	if bin == "" {
		bin = f.cfg.Binary
	}
	args := []string{"emulator", "--listen", addr, "--seed", fmt.Sprint(f.cfg.Seed)}
	// An emulator built for fleets holds a bounded number of accounts and
	// can forget old messages; older ones have neither flag.
	if help, _ := runHelp(ctx, bin, "emulator"); strings.Contains(help, "-max-accounts") {
		args = append(args, "--max-accounts", fmt.Sprint(f.cfg.Inboxes+1000), "--keep-messages", "50")
	}
	args = append(args, f.cfg.EmulatorArgs...)
	var lines envLines
	p, err := startProcess(f.dir, "emulator", bin, args, nil, &lines)
	if err != nil {
		return nil, err
	}
	f.procs.add(p)
	control := "http://" + addr + "/_emulator"
	if err := waitHTTP(ctx, p, control+"/health", 30*time.Second); err != nil {
		return nil, err
	}
	f.emu = newEmuClient(control)
	env := lines.parse()
	if len(env) < 4 {
		return nil, fmt.Errorf("emulator printed %d provider URLs, want 4", len(env))
	}
	return env, nil
}

// serveEnv is the environment of every node.
func (f *fleet) serveEnv(emuEnv map[string]string) []string {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	env := []string{
		"HOLDFAST_DATABASE_URL=" + f.db.url,
		"HOLDFAST_SECRET_KEY=" + base64.StdEncoding.EncodeToString(secret),
		"HOLDFAST_SYNC_INTERVAL=" + f.cfg.Interval.String(),
		"HOLDFAST_LOG_LEVEL=info",
		"HOLDFAST_ALLOW_PRIVATE_WEBHOOKS=true",
		"HOLDFAST_NOTIFY_SMTP_URL=" + f.relay.url(),
		"HOLDFAST_NOTIFY_FROM=holdfast <notices@loadtest.example>",
		"HOLDFAST_MAIL_CA_FILE=" + f.relay.caFile,
		"HOLDFAST_MICROSOFT_CLIENT_ID=" + emulator.DefaultClientID, "HOLDFAST_MICROSOFT_CLIENT_SECRET=" + emulator.DefaultClientSecret,
		"HOLDFAST_GOOGLE_CLIENT_ID=" + emulator.DefaultClientID, "HOLDFAST_GOOGLE_CLIENT_SECRET=" + emulator.DefaultClientSecret,
	}
	for k, v := range emuEnv {
		env = append(env, k+"="+v)
	}
	return append(env, f.cfg.ServeEnv...)
}

// startNodes starts the K nodes and waits until each is ready.
func (f *fleet) startNodes(ctx context.Context, env []string) error {
	for i := range f.cfg.Nodes {
		listen, err := freeAddr()
		if err != nil {
			return err
		}
		metrics, err := freeAddr()
		if err != nil {
			return err
		}
		id := fmt.Sprintf("node-%d", i)
		dataDir := filepath.Join(f.dir, id)
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return fmt.Errorf("node data directory: %w", err)
		}
		nenv := append(append([]string(nil), env...), "HOLDFAST_NODE="+id, "HOLDFAST_DATA_DIR="+dataDir)
		p, err := startProcess(f.dir, id, f.cfg.Binary, []string{"serve", "--listen", listen, "--metrics-listen", metrics}, nenv, nil)
		if err != nil {
			return err
		}
		f.procs.add(p)
		f.nodes = append(f.nodes, &node{index: i, id: id, api: "http://" + listen, metric: "http://" + metrics + "/metrics", proc: p})
	}
	for _, n := range f.nodes {
		if err := waitHTTP(ctx, n.proc, n.api+"/readyz", time.Minute); err != nil {
			return err
		}
	}
	f.logf("%d nodes ready", len(f.nodes))
	return nil
}

// live returns the nodes still running.
func (f *fleet) live() []*node {
	var out []*node
	for _, n := range f.nodes {
		if !n.killed && n.proc.alive() {
			out = append(out, n)
		}
	}
	return out
}

// pick returns a random live node.
func (f *fleet) pick() *node {
	l := f.live()
	if len(l) == 0 {
		return f.nodes[0]
	}
	return l[f.intn(len(l))]
}

func (f *fleet) intn(n int) int {
	f.rngMu.Lock()
	defer f.rngMu.Unlock()
	return f.rng.IntN(n)
}

// connect makes the emulator's accounts and connects them as inboxes,
// spread over the nodes, then waits until all are connected.
func (f *fleet) connect(ctx context.Context) error {
	ms, g := f.cfg.counts()
	start := time.Now()
	type batch struct {
		provider, prefix string
		n                int
	}
	var grants []inbox
	tokens := map[string]string{}
	for _, b := range []batch{{"microsoft", "ms", ms}, {"google", "g", g}} {
		last := time.Now()
		gs, err := f.emu.createAccounts(ctx, b.provider, b.prefix, f.cfg.Tenants, b.n, f.cfg.Concurrency, func(done int) {
			if time.Since(last) > 5*time.Second {
				last = time.Now()
				f.logf("setup: %d/%d %s accounts in the emulator", done, b.n, b.provider)
			}
		})
		if err != nil {
			return fmt.Errorf("emulator accounts: %w", err)
		}
		for _, gr := range gs {
			grants = append(grants, inbox{email: gr.Email, provider: b.provider})
			tokens[gr.Email] = gr.RefreshToken
		}
	}
	f.logf("setup: %d accounts in the emulator in %v", len(grants), time.Since(start).Round(time.Second))
	f.inboxes = make([]inbox, len(grants))
	var (
		next, made atomic.Int64
		wg         sync.WaitGroup
		errMu      sync.Mutex
		first      error
		lastLog    atomic.Int64
	)
	for w := range f.cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(grants) || ctx.Err() != nil {
					return
				}
				gr := grants[i]
				n := f.nodes[(i+w)%len(f.nodes)]
				var resp struct {
					ID string `json:"id"`
				}
				_, err := f.api.call(ctx, http.MethodPost, n.api+"/v1/inboxes", map[string]any{
					"provider": gr.provider, "email": gr.email, "refresh_token": tokens[gr.email]}, &resp)
				if err != nil {
					errMu.Lock()
					if first == nil {
						first = err
					}
					errMu.Unlock()
					return
				}
				gr.id = resp.ID
				f.inboxes[i] = gr
				if d := made.Add(1); time.Now().Unix()-lastLog.Load() >= 5 {
					lastLog.Store(time.Now().Unix())
					f.logf("setup: %d/%d inboxes created", d, len(grants))
				}
			}
		})
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("create inboxes: %w", first)
	}
	f.logf("setup: %d inboxes created in %v; waiting for all to be connected", len(f.inboxes), time.Since(start).Round(time.Second))
	deadline := time.Now().Add(max(3*time.Minute, 4*f.cfg.Interval, time.Duration(len(f.inboxes))*10*time.Millisecond))
	for {
		states, err := f.db.states(ctx)
		if err != nil {
			return err
		}
		if states["connected"] == len(f.inboxes) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("setup: not every inbox connected after %v: %v", time.Since(start).Round(time.Second), states)
		}
		f.logf("setup: states %s", fmtStates(states))
		if err := sleep(ctx, 2*time.Second); err != nil {
			return err
		}
	}
	f.logf("setup: %d inboxes connected in %v", len(f.inboxes), time.Since(start).Round(time.Second))
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func fmtStates(s map[string]int) string {
	keys := make([]string, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s:%d", k, s[k])
	}
	return b.String()
}

// mail delivers messages at the configured rate until ctx ends.
func (f *fleet) mail(ctx context.Context) {
	f.paced(ctx, f.cfg.MailRate, func() {
		in := f.inboxes[f.intn(len(f.inboxes))]
		seq := f.mailN.Add(1)
		mid := fmt.Sprintf("<lt-%d-%d@loadtest.example>", seq, time.Now().UnixNano())
		at := time.Now()
		f.hooks.arrived(mid, at)
		if err := f.emu.deliver(ctx, in.email, mid, fmt.Sprintf("loadtest %d", seq)); err != nil {
			f.hooks.mu.Lock()
			delete(f.hooks.arrivals, mid)
			f.hooks.mu.Unlock()
		}
	})
}

// send makes sends at the configured rate until ctx ends, a third of them
// scheduled a little ahead.
func (f *fleet) send(ctx context.Context) {
	ahead := min(f.cfg.Interval, 15*time.Second)
	var n int
	f.paced(ctx, f.cfg.SendRate, func() {
		n++
		in := f.inboxes[f.intn(len(f.inboxes))]
		req := map[string]any{"to": []string{"someone@elsewhere.example"}, "subject": fmt.Sprintf("loadtest send %d", n), "text": "Load test send."}
		if n%3 == 0 {
			req["send_at"] = time.Now().Add(ahead).UTC().Format(time.RFC3339Nano)
		}
		var resp struct {
			ID        string `json:"id"`
			MessageID string `json:"message_id"`
		}
		if _, err := f.api.call(ctx, http.MethodPost, f.pick().api+"/v1/inboxes/"+in.id+"/send", req, &resp); err != nil {
			f.sendErrs.Add(1)
			return
		}
		f.sendsMu.Lock()
		f.sends = append(f.sends, sendRec{id: resp.ID, messageID: resp.MessageID, from: in.email})
		f.sendsMu.Unlock()
	})
}

// paced calls do rate times a second until ctx ends.
func (f *fleet) paced(ctx context.Context, rate float64, do func()) {
	if rate <= 0 {
		return
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	done := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for due := int(time.Since(start).Seconds() * rate); done < due && ctx.Err() == nil; done++ {
			do()
		}
	}
}

package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// process is one child process of the test, in its own process group,
// logging to a file.
type process struct {
	name   string
	cmd    *exec.Cmd
	log    *os.File
	exited chan struct{}
	err    error // after exited
}

// startProcess starts binary with args and env (added to this process's
// environment), logging stdout and stderr to dir/name.log. stdout, when
// not nil, also receives the child's standard output.
func startProcess(dir, name, binary string, args, env []string, stdout io.Writer) (*process, error) {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = f
	cmd.Stdout = f
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(f, stdout)
	}
	setProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: f, exited: make(chan struct{})}
	go func() { // owned by p: ends when the child exits
		p.err = cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	return p, nil
}

// alive reports whether p has not exited.
func (p *process) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// kill kills p's process group with SIGKILL and waits for p to exit.
func (p *process) kill() {
	if p.alive() {
		killGroup(p.cmd)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

// stop asks p to stop (SIGTERM), and kills it after grace.
func (p *process) stop(grace time.Duration) {
	if !p.alive() {
		return
	}
	termGroup(p.cmd)
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.kill()
	}
}

// processes are the children of one run, killed together.
type processes struct {
	mu   sync.Mutex
	list []*process
}

func (ps *processes) add(p *process) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.list = append(ps.list, p)
}

// stopAll stops every child, the last started first.
func (ps *processes) stopAll(grace time.Duration) {
	ps.mu.Lock()
	list := append([]*process(nil), ps.list...)
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Go(func() { p.stop(grace) })
	}
	wg.Wait()
}

// freeAddr returns a free 127.0.0.1 address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free address: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitHTTP polls url until it answers 200, p exits or timeout passes.
func waitHTTP(ctx context.Context, p *process, url string, timeout time.Duration) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return fmt.Errorf("%s exited early (%v); see %s", p.name, p.err, p.log.Name())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready at %s after %v; see %s", p.name, url, timeout, p.log.Name())
}

// envLines collects the NAME=value lines a child prints.
type envLines struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (e *envLines) Write(b []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.buf.Write(b)
}

// parse returns the NAME=value pairs written so far.
func (e *envLines) parse() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(e.buf.String()))
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok && strings.HasPrefix(k, "HOLDFAST_") {
			out[k] = v
		}
	}
	return out
}

// runOnce runs binary to completion and returns its standard output.
func runOnce(ctx context.Context, binary string, args, env []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("holdfast %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// runHelp returns what `binary command -h` prints.
func runHelp(ctx context.Context, binary, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, command, "-h").CombinedOutput()
	return string(out), err
}

var errNoKey = errors.New("apikey create printed no key")

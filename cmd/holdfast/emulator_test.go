package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestEmulatorFlagsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-accounts", "0"}, "--max-accounts"},
		{[]string{"--keep-messages", "-1"}, "--keep-messages"},
		{[]string{"--accounts", "-5"}, "--accounts"},
		{[]string{"--listen", "127.0.0.1:0", "--accounts", "3", "--accounts-provider", "yahoo"}, "provider"},
		{[]string{"--listen", "127.0.0.1:0", "--accounts", "20", "--max-accounts", "10"}, "storage limit"},
	} {
		var stderr bytes.Buffer
		err := runEmulator(context.Background(), tc.args, io.Discard, &stderr)
		var ec exitCode
		if !errors.As(err, &ec) || ec != 2 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: err %v, stderr %q; want exit 2 naming %s", tc.args, err, stderr.String(), tc.want)
		}
	}
}

// TestEmulatorPreload starts `holdfast emulator --accounts 5` in-process
// and reads the accounts back from its stats.
func TestEmulatorPreload(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- runEmulator(ctx, []string{"--listen", "127.0.0.1:0", "--accounts", "5", "--accounts-provider", "google"}, pw, io.Discard)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("emulator: %v", err)
		}
	})
	var base string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "HOLDFAST_GMAIL_URL="); ok {
			base = strings.TrimSuffix(u, "/gmail")
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(base + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Accounts map[string]int `json:"accounts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Accounts["google"] != 5 {
		t.Fatalf("accounts %v; want 5 google", st.Accounts)
	}
}

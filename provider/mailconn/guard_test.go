package mailconn_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holdfast/holdfast"
	"github.com/holdfast/holdfast/provider/mailconn"
)

// TestDialRefusesInternalAddresses shows the mail dial guarded (issue 12,
// point 9): without AllowPrivate, an internal address is refused before
// any connection is made, so the error for an open port and for a closed
// one is the same and tells nothing about the port.
func TestDialRefusesInternalAddresses(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			_ = c.Close()
		}
	}()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	_ = closed.Close()
	openPort := l.Addr().(*net.TCPAddr).Port
	o := mailconn.Options{Protocol: "imap", DialTimeout: time.Second,
		Classify: func(provider string, err error) error { return &classified{provider, err} }}
	var msgs []string
	for _, port := range []int{openPort, closedPort} {
		c, err := mailconn.Dial(t.Context(), &holdfast.ServerConfig{Host: "127.0.0.1", Port: port, Security: holdfast.SecurityNone}, o)
		if err == nil {
			c.Close()
			t.Fatalf("Dial(127.0.0.1:%d) without AllowPrivate succeeded; want refused", port)
		}
		pe, ok := errors.AsType[*holdfast.ProviderError](err)
		if !ok {
			t.Fatalf("Dial(127.0.0.1:%d) = %v; want a *holdfast.ProviderError", port, err)
		}
		msgs = append(msgs, string(pe.Reason)+" "+strings.ReplaceAll(err.Error(), strconv.Itoa(port), "PORT"))
	}
	if msgs[0] != msgs[1] {
		t.Errorf("refusals differ between an open and a closed port:\n open:   %s\n closed: %s", msgs[0], msgs[1])
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("the refused dial reached the listener %d times; want never", n)
	}
}

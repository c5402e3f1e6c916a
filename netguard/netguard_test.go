package netguard_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/holdfast/holdfast/netguard"
)

func TestBlocked(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip   string
		want string // empty: allowed
	}{
		{"93.184.215.14", ""},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", ""},
		{"127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.9", "private"},
		{"192.168.1.20", "private"},
		{"169.254.169.254", "link-local"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "this network"},
		{"224.0.0.1", "multicast"},
		{"255.255.255.255", "reserved or broadcast"},
		{"::1", "loopback"},
		{"::", "unspecified"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::7f00:1", "IPv4-compatible"},
		{"::ffff:0:7f00:1", "IPv4-translated"},
		{"::ffff:0:5db8:d70e", "IPv4-translated"}, // any IPv4 address, through a SIIT translator
		{"fd00::1", "private"},
		{"fe80::1", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"64:ff9b::a00:1", "NAT64"},
		{"2002:7f00:1::1", "6to4 loopback"},
		{"2002:a9fe:a9fe::1", "6to4 link-local"},
		{"2002:c0a8:101::1", "6to4 private"},
		{"2002:5db8:d70e::1", ""}, // 6to4 around a public address
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo loopback"},
		{"2001:0:4136:e378:8000:63bf:f5ff:fffe", "Teredo private"},
		{"2001:0:4136:e378:8000:63bf:a247:28f1", ""}, // Teredo around 93.184.215.14
	}
	for _, tt := range tests {
		what, blocked := netguard.Blocked(netip.MustParseAddr(tt.ip))
		if blocked != (tt.want != "") || !strings.Contains(what, tt.want) {
			t.Errorf("Blocked(%s) = %q, %v; want %q", tt.ip, what, blocked, tt.want)
		}
	}
}

func TestCheckHost(t *testing.T) {
	t.Parallel()
	g := &netguard.Guard{}
	for _, tt := range []struct {
		host    string
		refused bool
	}{
		{"93.184.215.14", false},
		{"127.0.0.1", true},
		{"2002:7f00:1::1", true},
		{"localhost", true},
		{"no-such-host.invalid", false}, // the dial says what it finds
	} {
		err := g.CheckHost(t.Context(), tt.host)
		if errors.Is(err, netguard.ErrRefused) != tt.refused {
			t.Errorf("CheckHost(%q) = %v; want refused %v", tt.host, err, tt.refused)
		}
		if err != nil && tt.host == "localhost" && (strings.Contains(err.Error(), "127.") || strings.Contains(err.Error(), "::1")) {
			t.Errorf("CheckHost(localhost) = %v; it tells what the name resolves to", err)
		}
	}
	if err := (&netguard.Guard{AllowPrivate: true}).CheckHost(t.Context(), "127.0.0.1"); err != nil {
		t.Errorf("CheckHost(127.0.0.1) with AllowPrivate = %v; want accepted", err)
	}
}

func TestControl(t *testing.T) {
	t.Parallel()
	g := &netguard.Guard{}
	for _, addr := range []string{"127.0.0.1:143", "[::1]:993", "[2002:7f00:1::1]:25", "169.254.169.254:80"} {
		err := g.Control("tcp", addr, nil)
		if !errors.Is(err, netguard.ErrRefused) {
			t.Errorf("Control(%s) = %v; want ErrRefused", addr, err)
		} else if strings.Contains(err.Error(), strings.Trim(addr[:strings.LastIndexByte(addr, ':')], "[]")) {
			t.Errorf("Control(%s) = %v; it names the address", addr, err)
		}
	}
	if err := g.Control("tcp", "93.184.215.14:993", nil); err != nil {
		t.Errorf("Control(public) = %v; want nil", err)
	}
}

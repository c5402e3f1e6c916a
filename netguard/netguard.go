// Package netguard decides which network addresses holdfast may connect to
// on behalf of what a client gave it (a webhook URL, an inbox's IMAP and
// SMTP hosts): not loopback, private, link-local (cloud metadata services
// live there) or other internal ranges, in any of their IPv4 or IPv6
// forms. It is the one place that rule is written; package webhook and
// provider/mailconn apply it.
//
// A name is judged by what it resolves to, and again at the address
// actually dialled (Guard.Control), so a DNS answer that changes between
// the check and the dial (DNS rebinding) cannot bypass it.
//
// The Go API of this package is not stable.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// ErrRefused marks an address refused because it is, or a name refused
// because it resolves to, an internal address.
var ErrRefused = errors.New("refused address")

// blockedPrefixes are the ranges refused besides those netip.Addr's
// methods name (loopback, private, link-local, multicast, unspecified).
var blockedPrefixes = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "\"this network\""},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT (shared)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignments"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved or broadcast"},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated"},
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

// The IPv6 tunnels that carry an IPv4 address inside the IPv6 one.
var (
	sixToFour = netip.MustParsePrefix("2002::/16")
	teredo    = netip.MustParsePrefix("2001::/32")
)

// Blocked reports whether ip is an address holdfast must not reach for a
// client, and what kind it is: loopback, private (RFC 1918, fc00::/7),
// link-local, multicast, unspecified, carrier-grade NAT, reserved, NAT64
// and IPv4-compatible and IPv4-translated IPv6 (which may lead to any
// IPv4 address). IPv4-
// mapped addresses are judged as IPv4, and 6to4 (2002::/16) and Teredo
// (2001::/32) addresses by the IPv4 address they carry.
func Blocked(ip netip.Addr) (what string, blocked bool) {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "invalid", true
	case ip.IsLoopback():
		return "loopback", true
	case ip.IsPrivate():
		return "private", true
	case ip.IsMulticast():
		return "multicast", true
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		return "link-local", true
	case ip.IsUnspecified():
		return "unspecified", true
	}
	for _, b := range blockedPrefixes {
		if b.prefix.Contains(ip) {
			return b.what, true
		}
	}
	b := ip.As16()
	switch {
	case sixToFour.Contains(ip):
		// 2002:AABB:CCDD::/48 is the 6to4 site of AA.BB.CC.DD.
		if what, bad := Blocked(netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})); bad {
			return "6to4 " + what, true
		}
	case teredo.Contains(ip):
		// The last 32 bits are the client's IPv4 address, inverted.
		if what, bad := Blocked(netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})); bad {
			return "Teredo " + what, true
		}
	}
	return "", false
}

// Guard applies Blocked to the hosts a client names and to the addresses
// dialled for them. The zero value refuses internal addresses and
// resolves with net.DefaultResolver.
type Guard struct {
	// AllowPrivate lets any address through (--allow-private-webhooks,
	// --allow-private-mail-hosts): for servers on the same host or a
	// private network.
	AllowPrivate bool
	// Resolver resolves host names for CheckHost; nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
}

// CheckHost checks a host a client gave (an IP address or a name) before
// it is stored: an internal address, or a name with an internal address
// among its answers, is refused with an error wrapping ErrRefused. The
// error names the host as given but never what a name resolves to, so
// that it tells the client nothing about the internal network. A name
// that does not resolve (now) is not refused: the dial says what it finds
// then, and Control judges the address it dials.
func (g *Guard) CheckHost(ctx context.Context, host string) error {
	if g.AllowPrivate {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if what, bad := Blocked(ip); bad {
			return fmt.Errorf("%w: %s is a %s address", ErrRefused, host, what)
		}
		return nil
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if _, bad := Blocked(ip); bad {
			return fmt.Errorf("%w: %s resolves to an internal address", ErrRefused, host)
		}
	}
	return nil
}

// Control is a net.Dialer Control hook that refuses to connect to an
// internal address (unless AllowPrivate). It sees the address actually
// dialled, after name resolution, and runs before the connection is
// attempted: a refused address is never connected to, so the refusal
// says nothing about whether anything listens there. Its error names
// the kind of address, not the address.
func (g *Guard) Control(_, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse the dialled address", ErrRefused)
	}
	if what, bad := Blocked(ap.Addr()); bad {
		return fmt.Errorf("%w: the dialled address is a %s address", ErrRefused, what)
	}
	return nil
}

package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// ErrRefusedAddress marks an endpoint refused because it is, or resolves
// to, an internal address.
var ErrRefusedAddress = errors.New("refused address")

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
	{netip.MustParsePrefix("64:ff9b::/96"), "NAT64"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64"},
}

// Blocked reports whether ip is an address webhooks must not reach, and
// what kind it is: loopback, private (RFC 1918, fc00::/7), link-local
// (cloud metadata services live there), multicast, unspecified, carrier-
// grade NAT, reserved, and NAT64 (which may lead to any IPv4 address).
// IPv4-mapped IPv6 addresses are judged as IPv4.
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
	case ip.IsLinkLocalUnicast():
		return "link-local", true
	case ip.IsUnspecified():
		return "unspecified", true
	}
	for _, b := range blockedPrefixes {
		if b.prefix.Contains(ip) {
			return b.what, true
		}
	}
	return "", false
}

// Guard decides which endpoints webhooks may reach. The zero value refuses
// internal addresses and resolves with net.DefaultResolver.
type Guard struct {
	// AllowPrivate lets webhooks reach any address (--allow-private-
	// webhooks): for receivers on the same host or network.
	AllowPrivate bool
	// Resolver resolves host names for CheckURL; nil means
	// net.DefaultResolver.
	Resolver *net.Resolver
}

// CheckURL checks a webhook's URL when it is registered: an absolute http
// or https URL with a host, no user information and no fragment, whose
// host is not, and does not resolve to, a refused address (unless
// AllowPrivate). Errors are safe to show to the API's client; a refused
// address wraps ErrRefusedAddress.
func (g *Guard) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, errors.New("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return nil, errors.New("must name a host")
	case u.User != nil:
		return nil, errors.New("must not carry a user name or password; use the signing secret to authenticate holdfast")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return nil, errors.New("must not have a fragment")
	case len(raw) > 2048:
		return nil, errors.New("is longer than 2048 characters")
	}
	if g.AllowPrivate {
		return u, nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if what, bad := Blocked(ip); bad {
			return nil, fmt.Errorf("%w: %s is a %s address", ErrRefusedAddress, ip, what)
		}
		return u, nil
	}
	r := g.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	ips, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("host %s does not resolve", host)
	}
	for _, ip := range ips {
		if what, bad := Blocked(ip); bad {
			return nil, fmt.Errorf("%w: %s resolves to %s, a %s address", ErrRefusedAddress, host, ip.Unmap(), what)
		}
	}
	return u, nil
}

// Control is a net.Dialer Control hook that refuses to connect to a
// refused address (unless AllowPrivate). It sees the address actually
// dialled, after name resolution, so a DNS answer that changed since
// CheckURL cannot bypass it.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrRefusedAddress, address)
	}
	if what, bad := Blocked(ap.Addr()); bad {
		return fmt.Errorf("%w: %s is a %s address", ErrRefusedAddress, ap.Addr().Unmap(), what)
	}
	return nil
}

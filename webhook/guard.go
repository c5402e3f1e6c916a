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

	"github.com/holdfast/holdfast/netguard"
)

// ErrRefusedAddress marks an endpoint refused because it is, or resolves
// to, an internal address (see package netguard, which holds the rule).
var ErrRefusedAddress = netguard.ErrRefused

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
		if what, bad := netguard.Blocked(ip); bad {
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
		if what, bad := netguard.Blocked(ip); bad {
			return nil, fmt.Errorf("%w: %s resolves to a %s address", ErrRefusedAddress, host, what)
		}
	}
	return u, nil
}

// Control is a net.Dialer Control hook that refuses to connect to a
// refused address (unless AllowPrivate). It sees the address actually
// dialled, after name resolution, so a DNS answer that changed since
// CheckURL cannot bypass it.
func (g *Guard) Control(network, address string, c syscall.RawConn) error {
	return (&netguard.Guard{AllowPrivate: g.AllowPrivate}).Control(network, address, c)
}

package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/punchcard/punchcard/protocol"
)

// The webhook URL guard (server-side request forgery): an admin key must
// not make the hub call its own network. Unless Options.AllowPrivate
// (hub flag -webhook-allow-private), an endpoint's URL may not name or
// resolve to a forbidden address (ForbiddenAddr) when it is created or
// changed, and every delivery checks the address it actually dials
// (net.Dialer.Control), so a name that resolves to a public address at
// creation and to a private one later (DNS rebinding) is refused at the
// dial. Deliveries then use no HTTP proxy (a proxy would be the address
// dialled) and follow no redirect.

// reserved are ranges beyond netip's own tests that no webhook receiver
// lives in: "this network", shared carrier-grade NAT space, IETF protocol
// assignments, benchmarking, the documentation ranges, 240/4 (future use
// and the limited broadcast); and the IPv6 IPv4-compatible, IPv4-translated,
// discard-only, documentation and ORCHID ranges.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/96"), // IPv4-compatible (deprecated), after :: and ::1
	netip.MustParsePrefix("::ffff:0:0:0/96"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2001:10::/28"),
	netip.MustParsePrefix("2001:20::/28"),
}

// embedding are IPv6 ranges that carry an IPv4 address in their last
// (NAT64) or second-to-third (6to4) 32 bits: the IPv4 address decides.
var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	nat64L  = netip.MustParsePrefix("64:ff9b:1::/48")
	sixTo4  = netip.MustParsePrefix("2002::/16")
	teredo  = netip.MustParsePrefix("2001::/32")
	siteLoc = netip.MustParsePrefix("fec0::/10") // deprecated site-local
)

// ForbiddenAddr reports why a webhook may not be delivered to ip ("" when
// it may): loopback, private (RFC 1918, unique local fc00::/7), link-local,
// multicast, unspecified, or another reserved range; an IPv4 address
// inside IPv6 (mapped ::ffff:0:0/96, NAT64, 6to4) is judged as IPv4.
func ForbiddenAddr(ip netip.Addr) string {
	if !ip.IsValid() {
		return "not an IP address"
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip) || nat64L.Contains(ip):
			return embedded(netip.AddrFrom4([4]byte(b[12:16])))
		case sixTo4.Contains(ip):
			return embedded(netip.AddrFrom4([4]byte(b[2:6])))
		case teredo.Contains(ip):
			return "a Teredo address"
		case siteLoc.Contains(ip):
			return "a site-local address"
		}
	}
	switch {
	case ip.IsUnspecified():
		return "the unspecified address"
	case ip.IsLoopback():
		return "a loopback address"
	case ip.IsPrivate():
		return "a private address"
	case ip.IsLinkLocalUnicast():
		return "a link-local address"
	case ip.IsMulticast() || ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, p := range reserved {
		if p.Contains(ip) {
			return "a reserved address"
		}
	}
	return ""
}

func embedded(v4 netip.Addr) string {
	if why := ForbiddenAddr(v4); why != "" {
		return why + " (inside IPv6)"
	}
	return ""
}

// errForbidden is the reason code of a refused URL or dial.
func errForbidden(host string, ip netip.Addr, why string) *protocol.Error {
	if host == ip.String() {
		return &protocol.Error{Code: protocol.CodeWebhookURLForbidden, Field: "url",
			Message: fmt.Sprintf("%s is %s; the hub calls public addresses only (hub flag -webhook-allow-private)", ip, why)}
	}
	return &protocol.Error{Code: protocol.CodeWebhookURLForbidden, Field: "url",
		Message: fmt.Sprintf("%s resolves to %s, %s; the hub calls public addresses only (hub flag -webhook-allow-private)", host, ip, why)}
}

// resolveTimeout bounds checkURL's name lookup.
const resolveTimeout = 5 * time.Second

// checkURL refuses a URL whose host is, or resolves to, a forbidden
// address. A name that does not resolve (now) passes: the dial checks
// again at every delivery. Reason codes: webhook_url_forbidden.
func checkURL(ctx context.Context, resolver *net.Resolver, raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return protocol.FieldError("url", "url must be an absolute http or https URL")
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := ForbiddenAddr(ip); why != "" {
			return errForbidden(host, ip.Unmap(), why)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	ips, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil // the dial guard decides at delivery
	}
	for _, ip := range ips {
		if why := ForbiddenAddr(ip); why != "" {
			return errForbidden(host, ip.Unmap(), why)
		}
	}
	return nil
}

// errDialForbidden marks a delivery refused by the dial guard.
var errDialForbidden = errors.New(string(protocol.CodeWebhookURLForbidden))

// guardControl is the net.Dialer.Control of guarded deliveries: it sees
// the address actually dialled, after name resolution.
func guardControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot check the address %q", errDialForbidden, address)
	}
	if why := ForbiddenAddr(ap.Addr()); why != "" {
		return fmt.Errorf("%w: %s is %s", errDialForbidden, ap.Addr().Unmap(), why)
	}
	return nil
}

// newClient is the deliveries' HTTP client: redirects are not followed;
// guarded, it dials through guardControl and uses no proxy.
func newClient(timeout time.Duration, allowPrivate bool) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if !allowPrivate {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: guardControl}
		tr.DialContext = d.DialContext
		tr.Proxy = nil
	}
	return &http.Client{Timeout: timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

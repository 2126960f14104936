package httpx

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// TrustedProxies are the networks of the reverse proxies and load balancers in front of dgov.
// Only a peer inside them may tell us, through X-Forwarded-For and X-Forwarded-Proto, who the
// client is and whether it spoke HTTPS. The zero value trusts nobody.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies reads CIDRs ("10.0.0.0/8") or single addresses ("192.0.2.7").
func ParseTrustedProxies(list ...string) (TrustedProxies, error) {
	var tp TrustedProxies
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
			}
			tp = append(tp, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", s, err)
		}
		a = a.Unmap()
		tp = append(tp, netip.PrefixFrom(a, a.BitLen()))
	}
	return tp, nil
}

// Contains reports whether a is one of the trusted proxies.
func (tp TrustedProxies) Contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range tp {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is the address of the client. It is the TCP peer unless the peer is a trusted proxy;
// then X-Forwarded-For is read from the right (the entries our own proxies appended) and the
// first address that is not a trusted proxy is the client. Entries left of it were written by
// the client and are not believed. It returns the zero Addr when the peer has no IP address
// (a Unix socket, a test pipe).
func ClientIP(r *http.Request, proxies TrustedProxies) netip.Addr {
	peer := remoteAddr(r)
	if len(proxies) == 0 || !proxies.Contains(peer) {
		return peer
	}
	client := peer
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		parts := strings.Split(values[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, ok := parseForwardedAddr(parts[j])
			if !ok {
				// Garbage from (or before) the last proxy we trust: stop at what it vouched for.
				return client
			}
			client = a
			if !proxies.Contains(a) {
				return a
			}
		}
	}
	return client
}

// IsHTTPS reports whether the client spoke TLS: to us directly, or to a trusted proxy that
// says so in X-Forwarded-Proto.
func IsHTTPS(r *http.Request, proxies TrustedProxies) bool {
	if r.TLS != nil {
		return true
	}
	if len(proxies) == 0 || !proxies.Contains(remoteAddr(r)) {
		return false
	}
	proto := r.Header.Get("X-Forwarded-Proto")
	if i := strings.LastIndexByte(proto, ','); i >= 0 {
		proto = proto[i+1:] // the proxy next to us appended last
	}
	return strings.EqualFold(strings.TrimSpace(proto), "https")
}

func remoteAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		host = h
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

func parseForwardedAddr(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	// Some proxies append the port: "192.0.2.1:4711", "[2001:db8::1]:4711".
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

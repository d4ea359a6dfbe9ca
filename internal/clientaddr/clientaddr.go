// Package clientaddr says which address a request came from: the peer's,
// or, when the peer is one of the operator's trusted reverse proxies, the
// client named in X-Forwarded-For. A header from anyone else is ignored, so
// a client cannot pick the address its limits are counted under.
package clientaddr

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds a request's client address. The zero value and nil trust
// no proxy: the peer is the client.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver that trusts X-Forwarded-For from peers in the given
// networks: CIDRs ("10.0.0.0/8", "fd00::/8") or single addresses.
func New(trusted []string) (*Resolver, error) {
	nets, err := ParseNetworks(trusted)
	if err != nil {
		return nil, fmt.Errorf("trusted proxy %w", err)
	}
	return &Resolver{trusted: nets}, nil
}

// ParseNetworks reads networks: CIDRs or single addresses (blank entries
// are skipped), IPv4-mapped ones as IPv4.
func ParseNetworks(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not an address or a CIDR", s)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0))
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// In says whether a is in one of nets.
func In(a netip.Addr, nets []netip.Prefix) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Addr is the request's client address, for logs and audit trails: the
// peer, or when the peer is a trusted proxy, the right-most address in
// X-Forwarded-For that is not a trusted proxy (each proxy appends the
// address it was reached from, so the ones to its left are the client's
// word). It is the zero Addr when the peer address cannot be parsed.
func (r *Resolver) Addr(req *http.Request) netip.Addr {
	peer := peerAddr(req)
	if !r.isTrusted(peer) {
		return peer
	}
	hops := req.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		list := hops[i]
		for list != "" {
			var hop string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				hop, list = list[j+1:], list[:j]
			} else {
				hop, list = list, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(hop))
			if err != nil {
				// A trusted proxy writes addresses: what is not one came
				// from further left, so the last hop read is as far as
				// the chain can be believed.
				return client
			}
			client = a.Unmap().WithZone("")
			if !r.isTrusted(client) {
				return client
			}
		}
	}
	return client
}

// Key is the request's client as limits count it: an IPv4 address (a /32),
// or an IPv6 client's /64 (one subscriber usually holds a whole /64, so
// keying on the full address would give them 2^64 buckets). It is a value,
// comparable and allocation-free, to key maps with.
func (r *Resolver) Key(req *http.Request) netip.Prefix {
	return KeyOf(r.Addr(req))
}

// KeyOf is Key for an address already found.
func KeyOf(a netip.Addr) netip.Prefix {
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// UntrustedForward says whether the request carries a forwarding header
// (X-Forwarded-For, X-Real-Ip, Forwarded) from a peer that is not a trusted
// proxy: it was relayed by something that is not known, so its peer is not
// its client, and the client is not known.
func (r *Resolver) UntrustedForward(req *http.Request) bool {
	h := req.Header
	if h.Get("X-Forwarded-For") == "" && h.Get("X-Real-Ip") == "" && h.Get("Forwarded") == "" {
		return false
	}
	return !r.isTrusted(peerAddr(req))
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	return r != nil && a.IsValid() && In(a, r.trusted)
}

func peerAddr(req *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(req.RemoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	a, _ := netip.ParseAddr(req.RemoteAddr)
	return a.Unmap().WithZone("")
}

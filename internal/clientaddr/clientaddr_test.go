package clientaddr

import (
	"net/http/httptest"
	"testing"
)

func TestAddr(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "fd00::/8", "192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no header", "203.0.113.5:4000", nil, "203.0.113.5"},
		{"untrusted peer: header ignored", "203.0.113.5:4000", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted peer", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"single trusted address", "192.0.2.7:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed left entries are skipped", "10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"trusted hops skipped right to left", "10.1.2.3:4000", []string{"198.51.100.1, 10.9.9.9, 10.8.8.8"}, "198.51.100.1"},
		{"several header lines", "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.1", "10.9.9.9"}, "198.51.100.1"},
		{"all trusted: the left-most", "10.1.2.3:4000", []string{"10.9.9.9, 10.8.8.8"}, "10.9.9.9"},
		{"junk stops the walk", "10.1.2.3:4000", []string{"198.51.100.1, junk, 10.8.8.8"}, "10.8.8.8"},
		{"trusted peer without header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"ipv6 through ipv6 proxy", "[fd00::1]:4000", []string{"2001:db8::1"}, "2001:db8::1"},
		{"mapped ipv4 peer", "[::ffff:10.1.2.3]:4000", []string{"::ffff:198.51.100.1"}, "198.51.100.1"},
		{"zone dropped", "[fe80::1%eth0]:4000", nil, "fe80::1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := r.Addr(req).String(); got != tc.want {
				t.Errorf("Addr = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestNilTrustsNoOne(t *testing.T) {
	var r *Resolver
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := r.Addr(req).String(); got != "127.0.0.1" {
		t.Errorf("Addr = %s", got)
	}
	if !r.UntrustedForward(req) {
		t.Error("a forwarded request from an untrusted peer not reported")
	}
}

func TestKeyIPv6Slash64(t *testing.T) {
	var r *Resolver
	key := func(peer string) string {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = peer
		return r.Key(req).String()
	}
	a, b, c := key("[2001:db8:1:2::1]:1"), key("[2001:db8:1:2:ffff:ffff:ffff:ffff]:1"), key("[2001:db8:1:3::1]:1")
	if a != b || a != "2001:db8:1:2::/64" {
		t.Errorf("two addresses of one /64: %q and %q", a, b)
	}
	if a == c {
		t.Error("another /64 shares the bucket")
	}
	if k1, k2 := key("192.0.2.1:1"), key("192.0.2.2:1"); k1 == k2 || k1 != "192.0.2.1/32" {
		t.Errorf("IPv4 keys %q %q", k1, k2)
	}
}

func TestUntrustedForward(t *testing.T) {
	r, _ := New([]string{"10.0.0.0/8"})
	for _, tc := range []struct {
		peer, header string
		want         bool
	}{
		{"127.0.0.1:1", "", false},
		{"127.0.0.1:1", "X-Forwarded-For", true},
		{"127.0.0.1:1", "Forwarded", true},
		{"127.0.0.1:1", "X-Real-Ip", true},
		{"10.0.0.1:1", "X-Forwarded-For", false},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = tc.peer
		if tc.header != "" {
			req.Header.Set(tc.header, "198.51.100.1")
		}
		if got := r.UntrustedForward(req); got != tc.want {
			t.Errorf("%s with %q: %v, want %v", tc.peer, tc.header, got, tc.want)
		}
	}
}

func TestNewRefusesJunk(t *testing.T) {
	if _, err := New([]string{"10.0.0.0/33"}); err == nil {
		t.Error("bad CIDR accepted")
	}
	r, err := New([]string{"::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "10.2.3.4:1"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := r.Addr(req).String(); got != "198.51.100.1" {
		t.Errorf("mapped CIDR not applied to IPv4 peers: %s", got)
	}
}

func BenchmarkKey(b *testing.B) {
	var r *Resolver
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "192.0.2.1:4000"
	for b.Loop() {
		r.Key(req)
	}
}

package imbee_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/imbee/imbee"
)

// TestCheckWebhookURL: local and reserved hosts are refused in every
// spelling unless private targets are allowed; public names and addresses
// pass; the error names the webhook URL.
func TestCheckWebhookURL(t *testing.T) {
	refusedAlways := []string{
		"ftp://example.com/hook", "not a url", "http://", "/relative", "example.com/hook", "http://:80/x",
		"http://example.com/" + strings.Repeat("a", 2000),
		"http://169.254.169.254/latest/meta-data/", "http://[fe80::1]/", "http://[fe80::1%25eth0]/",
		"http://0.0.0.0:8080/", "http://[::]/", "http://224.0.0.1/", "http://255.255.255.255/", "http://[ff02::1]/",
		"http://127.1/", "http://2130706433/", "http://0x7f.0.0.1/", "http://017700000001/",
		"http://[::ffff:169.254.169.254]/",
	}
	refusedUnlessAllowed := []string{
		"http://127.0.0.1:8080/hook", "https://127.0.0.2/", "http://localhost:8080/", "http://LOCALHOST./",
		"http://api.localhost/", "http://[::1]:9/", "http://[::ffff:127.0.0.1]:8080/", "http://[::ffff:7f00:1]/",
		"http://[::127.0.0.1]/", "http://[64:ff9b::7f00:1]/", "http://[64:ff9b::a00:1]/", "http://[2002:7f00:1::]/",
		"http://10.1.2.3/", "http://172.16.0.1/", "http://192.168.1.1/", "http://100.64.0.1/", "http://[fd00::1]/",
		"http://[::ffff:10.0.0.1]/",
	}
	accepted := []string{"https://example.com/hook", "http://hooks.example.com:8443/a?b=c", "https://93.184.216.34/x", "https://[2606:4700::1111]/", " https://example.com/padded "}

	for _, allow := range []bool{false, true} {
		for _, u := range refusedAlways {
			if _, err := imbee.CheckWebhookURL(u, allow); !isWebhookURLError(err) {
				t.Errorf("allowPrivate %v: %q gave %v, want a webhook URL error", allow, u, err)
			}
		}
		for _, u := range accepted {
			got, err := imbee.CheckWebhookURL(u, allow)
			if err != nil || got != strings.TrimSpace(u) {
				t.Errorf("allowPrivate %v: %q = %q, %v; want it accepted", allow, u, got, err)
			}
		}
	}
	for _, u := range refusedUnlessAllowed {
		if _, err := imbee.CheckWebhookURL(u, false); !isWebhookURLError(err) {
			t.Errorf("%q gave %v, want a webhook URL error", u, err)
		}
	}
	// With the operator's allowance, the IPv4 and IPv6 private forms a
	// lab uses pass; the IPv6 spellings of IPv4 ones do not need to.
	for _, u := range []string{"http://127.0.0.1:8080/hook", "http://localhost:8080/", "http://[::1]:9/", "http://10.1.2.3/", "http://[fd00::1]/"} {
		if _, err := imbee.CheckWebhookURL(u, true); err != nil {
			t.Errorf("allowed private: %q gave %v", u, err)
		}
	}
	if got, err := imbee.CheckWebhookURL("  ", false); got != "" || err != nil {
		t.Errorf("blank = %q, %v; want \"\" (removal)", got, err)
	}
}

func isWebhookURLError(err error) bool {
	var e *imbee.Error
	return errors.As(err, &e) && e.Code == imbee.CodeParam && e.Field == imbee.SubjectWebhookURL
}

// TestWebhookGuard: the dial-time check refuses each spelling of a local
// or reserved address (the IPv6 forms that embed an IPv4 one included)
// and lets public ones through; the operator's allowance opens loopback and
// private ranges but never link-local (the metadata address).
func TestWebhookGuard(t *testing.T) {
	strict, lab := imbee.WebhookGuard(false), imbee.WebhookGuard(true)
	for _, tc := range []struct {
		addr   string
		strict bool // allowed without the allowance
		lab    bool // allowed with it
	}{
		{"127.0.0.1", false, true},
		{"127.255.0.1", false, true},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, false},                     // IPv4-mapped: Go dials these as IPv4
		{"::127.0.0.1", false, false},                          // IPv4-compatible
		{"64:ff9b::7f00:1", false, false},                      // NAT64 of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false, false},                   // NAT64 of 169.254.169.254
		{"2002:a9fe:a9fe::", false, false},                     // 6to4 of 169.254.169.254
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false, false}, // Teredo
		{"10.0.0.1", false, true},
		{"172.31.255.255", false, true},
		{"192.168.0.1", false, true},
		{"100.64.0.1", false, true},
		{"fd12:3456::1", false, true},
		{"169.254.169.254", false, false},
		{"fe80::1", false, false},
		{"0.0.0.0", false, false},
		{"::", false, false},
		{"224.0.0.1", false, false},
		{"ff02::1", false, false},
		{"255.255.255.255", false, false},
		{"93.184.216.34", true, true},
		{"2606:4700::1111", true, true},
	} {
		a := netip.MustParseAddr(tc.addr)
		if got := strict.SafeAddr(a) == nil; got != tc.strict {
			t.Errorf("%s allowed = %v, want %v", tc.addr, got, tc.strict)
		}
		if got := lab.SafeAddr(a) == nil; got != tc.lab {
			t.Errorf("%s with private targets allowed: allowed = %v, want %v", tc.addr, got, tc.lab)
		}
		// Safe is what the dialer calls, with the port.
		if got := strict.Safe("tcp6", netip.AddrPortFrom(a, 8443).String(), nil) == nil; a.Is6() && got != tc.strict {
			t.Errorf("Safe(tcp6, %s) allowed = %v", tc.addr, got)
		}
	}
}

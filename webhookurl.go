package imbee

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"code.dny.dev/ssrf"
)

// MaxWebhookURL is the longest webhook URL accepted, in bytes.
const MaxWebhookURL = 2000

// SubjectWebhookURL is the Field of the errors CheckWebhookURL returns: the
// domain's name for it, which each entry point maps to its own (the API's
// field "url", the CLI's flag --url).
const SubjectWebhookURL = "webhook URL"

// CheckWebhookURL is the rule for a bot's webhook URL, set through the API
// or the CLI: an absolute http or https URL of at most MaxWebhookURL bytes
// whose host is not localhost (or a name under .localhost) nor an address
// literal that WebhookGuard refuses (with allowPrivate, localhost and the
// private ranges are allowed). Names are not resolved here: the
// address is checked again when it is dialled. It returns the URL trimmed,
// "" (removing the webhook) for a blank one, or a CodeParam error with
// Field SubjectWebhookURL.
func CheckWebhookURL(raw string, allowPrivate bool) (string, error) {
	hook := strings.TrimSpace(raw)
	if hook == "" {
		return "", nil
	}
	u, err := url.Parse(hook)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Hostname() == "" || len(hook) > MaxWebhookURL {
		return "", ParamError(SubjectWebhookURL, "the webhook URL must be an http or https URL of at most %d bytes", MaxWebhookURL)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if !allowPrivate && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		return "", ParamError(SubjectWebhookURL, "the webhook URL must not point at this machine (localhost)")
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		if !numericIPv4(host) {
			return hook, nil
		}
		// 127.1, 2130706433, 0x7f.0.0.1: some resolvers read these as
		// addresses; none is a name anyone registers.
		return "", ParamError(SubjectWebhookURL, "the webhook URL's host must be a name or an address in the usual form")
	}
	if WebhookGuard(allowPrivate).SafeAddr(addr) != nil {
		return "", ParamError(SubjectWebhookURL, "the webhook URL must not point at a loopback, private, link-local or other reserved address")
	}
	return hook, nil
}

// numericIPv4 says whether every dot-separated part of host is a number
// (decimal, octal with a leading 0, or hex with 0x): the legacy forms of
// an IPv4 address that inet_aton accepts.
func numericIPv4(host string) bool {
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.ParseUint(p, 0, 32); err != nil {
			return false
		}
	}
	return true
}

// privateV4 and privateV6 are what --allow-private-webhooks lets webhooks
// reach: loopback, RFC 1918, shared (100.64/10) and ULA. Link-local (and
// with it the cloud metadata address), unspecified, multicast and the other
// reserved ranges stay refused.
var (
	privateV4 = []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("172.16.0.0/12"),
		netip.MustParsePrefix("192.168.0.0/16"),
		netip.MustParsePrefix("100.64.0.0/10"),
	}
	privateV6 = []netip.Prefix{
		netip.MustParsePrefix("::1/128"),
		netip.MustParsePrefix("fc00::/7"),
	}
)

// WebhookGuard is the check of every address a webhook is sent to, made on
// the address actually dialled (its Safe method is a net.Dialer's
// Control): the IANA special-purpose ranges are refused, IPv4 and IPv6 in
// every spelling (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo), as
// is anything outside IPv6 global unicast. Any port may be used. With
// allowPrivate, loopback and private ranges are allowed (labs and tests).
func WebhookGuard(allowPrivate bool) *ssrf.Guardian {
	opts := []ssrf.Option{ssrf.WithAnyPort()}
	if allowPrivate {
		opts = append(opts, ssrf.WithAllowedV4Prefixes(privateV4...), ssrf.WithAllowedV6Prefixes(privateV6...))
	}
	return ssrf.New(opts...)
}

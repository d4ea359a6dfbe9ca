package linkpage

import (
	"net/http/httptest"
	"testing"
)

func TestCrossSite(t *testing.T) {
	h := &Handler{origin: origin("https://Chat.Example.com:443/base/")}
	cases := []struct {
		name    string
		headers map[string]string
		cross   bool
	}{
		{"no headers (old browser, script)", nil, false},
		{"same-origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "https://chat.example.com"}, false},
		{"typed in (none)", map[string]string{"Sec-Fetch-Site": "none"}, false},
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, true},
		{"same-site is another origin", map[string]string{"Sec-Fetch-Site": "same-site"}, true},
		{"evil origin", map[string]string{"Origin": "https://evil.example"}, true},
		{"opaque origin", map[string]string{"Origin": "null"}, true},
		{"empty origin", map[string]string{"Origin": ""}, true},
		{"other scheme", map[string]string{"Origin": "http://chat.example.com"}, true},
		{"other port", map[string]string{"Origin": "https://chat.example.com:8443"}, true},
		{"origin with the default port", map[string]string{"Origin": "https://chat.example.com:443"}, false},
		{"same origin header, cross fetch", map[string]string{"Origin": "https://chat.example.com", "Sec-Fetch-Site": "cross-site"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/l/x", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			if got := h.crossSite(r); got != tc.cross {
				t.Errorf("crossSite = %v, want %v", got, tc.cross)
			}
		})
	}
}

func TestOriginIPv6DefaultPort(t *testing.T) {
	if got := origin("http://[::1]:80/x"); got != "http://[::1]" {
		t.Errorf("origin = %q", got)
	}
	if got := origin("http://127.0.0.1:8080"); got != "http://127.0.0.1:8080" {
		t.Errorf("origin = %q", got)
	}
}

package delivery

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"code.dny.dev/ssrf"
)

// TestWebhookClientGuard: the client for tenants' URLs refuses, before
// connecting, a name that resolves to loopback and the IPv6 spellings of
// a loopback address; follows no redirect; uses no proxy. With private
// targets allowed it reaches loopback.
func TestWebhookClientGuard(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port

	strict := WebhookClient(5*time.Second, false)
	if tr := strict.Transport.(*http.Transport); tr.Proxy != nil {
		t.Error("the webhook client takes a proxy from the environment")
	}
	// localhost is resolved by the system (the hosts file), as any name
	// that a tenant's DNS points at 127.0.0.1 would be.
	for _, u := range []string{
		fmt.Sprintf("http://localhost:%d/", port),
		srv.URL + "/",
		fmt.Sprintf("http://[::ffff:127.0.0.1]:%d/", port),
	} {
		resp, err := strict.Post(u, "application/json", bytes.NewReader([]byte("{}")))
		if err == nil {
			resp.Body.Close()
			t.Errorf("POST %s: %s, want the address refused", u, resp.Status)
		} else if !errors.Is(err, ssrf.ErrProhibitedIP) {
			t.Errorf("POST %s: %v, want ssrf.ErrProhibitedIP", u, err)
		}
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the refused requests opened %d connections", n)
	}

	lab := WebhookClient(5*time.Second, true)
	resp, err := lab.Post(srv.URL+"/redirect", "application/json", bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("redirect: %s, want the 302 itself", resp.Status)
	}
	if err := postJSON(lab, mustRequest(t, srv.URL+"/redirect"), &struct{}{}); err == nil {
		t.Error("a 302 counts as delivered")
	}
}

func mustRequest(t *testing.T, url string) *http.Request {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	return req
}

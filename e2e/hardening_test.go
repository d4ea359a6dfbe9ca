package e2e

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSlowClients: a hundred clients that send half a request and stop do
// not hold the server: others are answered at once, and the slow ones are
// cut off after --read-header-timeout.
func TestSlowClients(t *testing.T) {
	s := startServer(t, "--read-header-timeout", "1s")
	c := s.demo()
	addr := strings.TrimPrefix(s.URL, "http://")
	var conns []net.Conn
	for range 100 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		if _, err := conn.Write([]byte("POST /third_parties/user/new HTTP/1.1\r\nHost: x\r\nContent-Type: appl")); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
	}
	start := time.Now()
	expect(t, s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "busy"}), 200, 0)
	if d := time.Since(start); d > time.Second {
		t.Errorf("a normal request took %v beside 100 slow clients", d)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	open := 0
	for _, conn := range conns {
		wg.Go(func() {
			conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			// The server answers 408 or just closes: either way the read
			// ends well before our 5 s deadline.
			_, err := bufio.NewReader(conn).ReadString('\n')
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				mu.Lock()
				open++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if open > 0 {
		t.Errorf("%d slow connections were still open after 5 s", open)
	}
}

// TestRequestLimits: oversized headers are refused, every answer carries a
// request id (a client's own well-formed id is kept), and pages carry their
// security headers.
func TestRequestLimits(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	req, _ := http.NewRequest("POST", s.URL+"/third_parties/user/new", strings.NewReader(`{"uniqueIdSha":"a"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Big", strings.Repeat("x", 70<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("70 KiB of headers: %d, want 431", resp.StatusCode)
	}

	e := s.call(t, "POST", "/third_parties/user/new", map[string]string{"Authorization": c.auth, "X-WOOS-KEY": c.token,
		"Content-Type": "application/json", "X-Request-Id": "trace-123"}, `{"uniqueIdSha":"a"}`)
	if e.Header.Get("X-Request-Id") != "trace-123" {
		t.Errorf("X-Request-Id = %q, want the client's", e.Header.Get("X-Request-Id"))
	}
	e = s.call(t, "POST", "/nowhere", map[string]string{"X-Request-Id": "bad id with spaces"}, "")
	if id := e.Header.Get("X-Request-Id"); id == "" || strings.Contains(id, " ") {
		t.Errorf("X-Request-Id = %q, want a fresh one", id)
	}

	link := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "a@example.com"})
	expect(t, link, 200, 0)
	resp, err = (&http.Client{Transport: validated(t, http.DefaultTransport)}).Get(link.str("url"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for h, want := range map[string]string{
		"Content-Security-Policy": "default-src 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	} {
		if !strings.Contains(resp.Header.Get(h), want) {
			t.Errorf("%s = %q, want %q", h, resp.Header.Get(h), want)
		}
	}
}

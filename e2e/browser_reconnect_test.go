package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee/client"
)

// TestBrowserReconnect: the network between a signed-in person's chat and
// the server goes down while messages keep arriving. The page says the
// connection is lost, and once the network is back it reconnects by
// itself and catches up over its socket: every message missed, in order,
// each once, without a reload, and the next one live.
func TestBrowserReconnect(t *testing.T) {
	chrome := needChromium(t, "the chat's reconnection")
	testCtx, cancelTest := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancelTest()

	// The browser reaches the server only through a proxy that can cut
	// its connections, as a lost network would.
	p := newCutProxy(t)
	s := startServer(t, "--public-url", p.URL)
	p.to(strings.TrimPrefix(s.URL, "http://"))
	c := s.demo()
	pia, bea := s.newUser(t, c, "pia"), s.newUser(t, c, "bea")
	conv := s.createChat(t, c, bea, client.Contact{IDSha: pia.idsha})
	send := func(text string) {
		t.Helper()
		expect(t, s.post(t, "/chat/message/send", c.auth, bea.apikey, map[string]any{"conversationId": conv, "text": text}), 200, 0)
	}

	b := newBrowser(t, testCtx, chrome)
	b.navigate(p.URL + "/app")
	if st := b.signIn(pia.idsha, pia.pass); st != http.StatusOK {
		t.Fatalf("sign in: HTTP %d", st)
	}
	b.navigate(p.URL + "/app/c/" + conv)
	b.waitFrame(`the socket's "ready"`, 1, func(f socketFrame) bool { return f.Type == "ready" })
	b.eval("set the no-reload mark", `window.__imbeeNoReload = "yes"`)

	p.cut()
	b.poll("the page says the connection is lost", `document.getElementById("status").textContent === document.getElementById("chat").dataset.lost && document.getElementById("status").textContent !== ""`)
	for i := 1; i <= 3; i++ {
		send(fmt.Sprintf("missed %d", i))
	}
	if n := b.eval("bubbles while the network is down", `String(document.querySelectorAll("#log li").length)`); n != "0" {
		t.Fatalf("the page shows %s messages while cut off from the server", n)
	}

	p.restore()
	b.waitFrame(`a second "ready" after reconnecting`, 2, func(f socketFrame) bool { return f.Type == "ready" })
	for i := 1; i <= 3; i++ {
		text := fmt.Sprintf("missed %d", i)
		b.waitFrame(text+" caught up over the socket", 1, func(f socketFrame) bool {
			return f.Type == "message" && f.Message != nil && f.Message.Text == text
		})
	}
	send("live")
	b.waitFrame("the next message live", 1, func(f socketFrame) bool {
		return f.Type == "message" && f.Message != nil && f.Message.Text == "live"
	})
	b.poll("the page shows it", `document.getElementById("log").textContent.includes("live")`)
	want := []chatBubble{{"theirs", "missed 1"}, {"theirs", "missed 2"}, {"theirs", "missed 3"}, {"theirs", "live"}}
	if got := b.log(); !equalBubbles(got, want) {
		t.Errorf("#log after reconnecting = %+v, want %+v (each once, in order)", got, want)
	}
	if st := b.text("the status line", "#status"); st != "" {
		t.Errorf("the status line still says %q after reconnecting", st)
	}
	if mark := b.eval("read the no-reload mark", `String(window.__imbeeNoReload)`); mark != "yes" {
		t.Errorf("the page was reloaded to catch up (mark = %q)", mark)
	}
	if p.cuts() == 0 {
		t.Fatal("the proxy cut no connection: the test proved nothing")
	}
	b.checkConsole()
}

// cutProxy forwards TCP connections to a server. cut closes every one of
// them and refuses new ones, as a lost network would, until restore.
type cutProxy struct {
	URL string
	ln  net.Listener

	mu     sync.Mutex
	target string
	down   bool
	conns  map[net.Conn]bool
	cutN   int
}

func newCutProxy(t *testing.T) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{URL: "http://" + ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

func (p *cutProxy) to(addr string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = addr
}

func (p *cutProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(in)
	}
}

func (p *cutProxy) forward(in net.Conn) {
	p.mu.Lock()
	down, target := p.down, p.target
	p.mu.Unlock()
	if down || target == "" {
		in.Close()
		return
	}
	out, err := net.Dial("tcp", target)
	if err != nil {
		in.Close()
		return
	}
	p.mu.Lock()
	if p.down { // cut while dialling
		p.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	p.conns[in], p.conns[out] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	in.Close()
	out.Close()
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		c.Close()
		p.cutN++
	}
	clear(p.conns)
}

func (p *cutProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

func (p *cutProxy) cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cutN
}

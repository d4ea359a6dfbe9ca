package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// imbeeBinary builds ./cmd/imbee once per test run.
func imbeeBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imbee-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "imbee")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/imbee").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startProcess runs "imbee serve" as a separate process on d, with args
// after the defaults.
func startProcess(t *testing.T, d dbSpec, args ...string) *server {
	t.Helper()
	s := &server{t: t, dbSpec: d, stdout: &syncBuffer{}, logs: &syncBuffer{}}
	argv := append(append([]string{"serve", "--addr", "127.0.0.1:0", "--rate-limit", "0", "--recipient-limit", "0", "--probe-limit", "0", "--auth-fail-limit", "0", "--web-send-limit", "0"}, d.flags()...), args...)
	cmd := exec.Command(imbeeBinary(t), argv...)
	cmd.Stdout, cmd.Stderr = s.stdout, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	s.stop = func() error {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			return waitErr
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("server did not stop")
		}
	}
	s.kill = func() {
		cmd.Process.Kill()
		<-exited
	}
	t.Cleanup(func() { s.stop() })
	re := regexp.MustCompile(`imbee listening on (http://\S+)`)
	deadline := time.Now().Add(30 * time.Second)
	for s.URL == "" {
		if m := re.FindStringSubmatch(s.stdout.String()); m != nil {
			s.URL = m[1]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s %s", s.stdout.String(), s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.auth = field(s.stdout.String(), "Authorization:")
	s.token = field(s.stdout.String(), "X-WOOS-KEY:")
	s.bot = field(s.stdout.String(), "bot_idsha:")
	return s
}

// TestMultiServer runs two imbee processes on one PostgreSQL database and
// spreads concurrent requests over both: the results are as exactly-once
// as on one server, and a rotation or revocation made through one is
// refused by the other on its next request.
func TestMultiServer(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		d := newDB(t)
		// Both start together: migrations run once (under an advisory
		// lock) and only one of them bootstraps the demo corporate.
		var a, b *server
		var wg sync.WaitGroup
		wg.Go(func() { a = startProcess(t, d) })
		wg.Go(func() { b = startProcess(t, d) })
		wg.Wait()
		if (a.auth == "") == (b.auth == "") {
			t.Fatalf("exactly one server should bootstrap: %q and %q", a.auth, b.auth)
		}
		if a.auth == "" {
			a, b = b, a
		}
		c := a.demo()
		servers := []*server{a, b}
		on := func(i int) *server { return servers[i%2] }

		res := concurrently(50, func(i int) envelope {
			return on(i).post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "everywhere"})
		})
		created := 0
		for _, e := range res {
			expect(t, e, 200, 0)
			if e.str("apikey") != res[0].str("apikey") {
				t.Fatal("two users for one uniqueIdSha")
			}
			if e.Body["previously_registered"] == false {
				created++
			}
		}
		if created != 1 {
			t.Errorf("%d servers' answers say the user is new, want 1", created)
		}

		x, y := a.newUser(t, c, "x"), a.newUser(t, c, "y")
		chats := concurrently(50, func(i int) envelope {
			from, to := x, y
			if i%4 >= 2 {
				from, to = y, x
			}
			return on(i).post(t, "/chat/create", c.auth, from.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": to.idsha}}})
		})
		created = 0
		for _, e := range chats {
			expect(t, e, 200, 0)
			if e.str("conversationId") != chats[0].str("conversationId") {
				t.Fatal("two conversations for one pair")
			}
			if e.Body["previously_created"] == false {
				created++
			}
		}
		if created != 1 {
			t.Errorf("%d answers say the chat is new, want 1", created)
		}

		link := a.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "x", "bot_idsha": c.bot, "mail": "x@example.com", "max_retries": 5})
		expect(t, link, 200, 0)
		path := link.str("url")[len(a.URL):]
		codes := concurrently(50, func(i int) int {
			code, _, _ := page(t, browser(t), "POST", on(i).URL+path)
			return code
		})
		spent := 0
		for _, code := range codes {
			if code == 303 {
				spent++
			} else if code != 410 {
				t.Errorf("status %d", code)
			}
		}
		if spent != 5 {
			t.Errorf("%d uses spent across two servers, want 5", spent)
		}

		other := a.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "y", "bot_idsha": c.bot, "mail": "y@example.com"})
		if code, _, _ := page(t, browser(t), "GET", b.URL+other.str("url")[len(a.URL):]); code != 200 {
			t.Fatalf("link on the other server: %d", code)
		}
		if out, err := a.imbee("link", "revoke", "--url", other.str("url")); err != nil {
			t.Fatal(out, err)
		}
		if code, _, _ := page(t, browser(t), "GET", b.URL+other.str("url")[len(a.URL):]); code != 410 {
			t.Errorf("a revoked link still opens on the other server: %d", code)
		}
		if out, err := a.imbee("corporate", "rotate", "--id", "1"); err != nil {
			t.Fatal(out, err)
		}
		for _, s := range servers {
			expect(t, s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "z"}), 401, 2)
		}
	})
}

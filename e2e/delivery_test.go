package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/cli"
	"github.com/imbee/imbee/internal/testkit"
)

var linkInText = regexp.MustCompile(`https?://[^\s"<>]+/l/[A-Za-z0-9_\-]+`)

// linkStatus is POST /token/status for url.
func (s *server) linkStatus(t testing.TB, c corporate, url string) envelope {
	t.Helper()
	e := s.post(t, "/token/status", c.auth, c.token, map[string]string{"url": url})
	expect(t, e, 200, 0)
	return e
}

// deliveries returns the ledger rows of a /token/status answer.
func (e envelope) deliveries() []map[string]any {
	list, _ := e.Body["deliveries"].([]any)
	out := make([]map[string]any, 0, len(list))
	for _, d := range list {
		if m, ok := d.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// waitDelivery waits until the link's delivery on channel has status, and
// returns it.
func (s *server) waitDelivery(t testing.TB, c corporate, url, channel, status string, within time.Duration) map[string]any {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var last []map[string]any
		for _, d := range s.linkStatus(t, c, url).deliveries() {
			if d["channel"] == channel && d["status"] == status {
				return d
			}
			last = append(last, d)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s delivery %s within %v: %v", channel, status, within, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// TestMailDelivery: a link requested by mail goes through a real SMTP
// conversation (AUTH PLAIN) as multipart text and HTML carrying the link and
// the names, in the corporate's language and from its sender name; the link
// taken out of the mail opens; the ledger shows it sent.
func TestMailDelivery(t *testing.T) { testkit.ForEachBackend(t, testMailDelivery) }

func testMailDelivery(t *testing.T) {
	box := newMailbox(t, "imbee", "smtp-secret-pass")
	box.Up()
	s := startServer(t, box.flags()...)
	c := s.newCorporate(t, "Acme Health")
	if _, err := s.imbee("corporate", "update", "--id", fmt.Sprint(c.id), "--sender-name", "Acme Care Team"); err != nil {
		t.Fatal(err)
	}
	e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com"})
	expect(t, e, 200, 0)
	url := e.str("url")

	mails := box.WaitFor(t, 1, 10*time.Second)
	if len(mails[0].To) != 1 || mails[0].To[0] != "ana@example.com" || mails[0].From != "links@imbee.test" {
		t.Errorf("envelope: MAIL FROM %q RCPT TO %v", mails[0].From, mails[0].To)
	}
	m := mails[0].Parse(t)
	if m.From.Name != "Acme Care Team" || m.From.Address != "links@imbee.test" {
		t.Errorf("From = %v, want Acme Care Team <links@imbee.test>", m.From)
	}
	if !strings.Contains(m.To, "ana@example.com") {
		t.Errorf("To = %q", m.To)
	}
	if subj := m.Subject; !strings.Contains(subj, "Acme Health Bot") {
		t.Errorf("Subject %q does not name the bot", subj)
	}
	for part, body := range map[string]string{"text": m.Text, "html": m.HTML} {
		for _, want := range []string{url, "Acme Health Bot", "Acme Health"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s part lacks %q:\n%s", part, want, body)
			}
		}
	}
	if got := linkInText.FindString(m.Text); got != url {
		t.Fatalf("link in the mail = %q, want %q", got, url)
	}
	resp, err := (&http.Client{Transport: validated(t, http.DefaultTransport)}).Get(linkInText.FindString(m.Text))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Acme Health Bot") {
		t.Errorf("opening the mailed link: %d\n%s", resp.StatusCode, page)
	}

	d := s.waitDelivery(t, c, url, "mail", "sent", 5*time.Second)
	if id, _ := d["provider_id"].(string); id == "" || id != m.Header.Get("Message-Id") {
		t.Errorf("provider_id %q, want the mail's Message-ID %q", id, m.Header.Get("Message-Id"))
	}
	if num(d["attempts"]) != 1 || d["to"] != "ana@example.com" {
		t.Errorf("delivery = %v", d)
	}

	// A corporate writing in Spanish.
	es := s.newCorporate(t, "Clínica Sol")
	if _, err := s.imbee("corporate", "update", "--id", fmt.Sprint(es.id), "--language", "es"); err != nil {
		t.Fatal(err)
	}
	expect(t, s.post(t, "/token/new", es.auth, es.token, map[string]any{"virtual_user": "bea", "bot_idsha": es.bot, "mail": "bea@example.com"}), 200, 0)
	mails = box.WaitFor(t, 2, 10*time.Second)
	m = mails[1].Parse(t)
	if subj := m.Subject; !strings.Contains(subj, "te espera") || !strings.Contains(m.Text, "Hola") || !strings.Contains(m.HTML, "Abrir el chat") {
		t.Errorf("Spanish mail: subject %q\n%s", subj, m.Text)
	}
	if m.From.Name != "Clínica Sol" {
		t.Errorf("From name %q, want the corporate's name", m.From.Name)
	}

	for _, secret := range []string{"smtp-secret-pass", url[strings.LastIndex(url, "/")+1:]} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("the logs contain a secret (%q)", secret[:8])
		}
	}
}

// TestMailTemplates: files in --templates replace the built-in ones; a
// broken template stops the server at start.
func TestMailTemplates(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "en"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "en", "subject.txt"), []byte("Your {{.BotName}} link from {{.SenderName}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	box := newMailbox(t, "", "")
	box.Up()
	s := startServer(t, append(box.flags(), "--templates", dir)...)
	c := s.demo()
	expect(t, s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com"}), 200, 0)
	m := box.WaitFor(t, 1, 10*time.Second)[0].Parse(t)
	if got := m.Subject; got != "Your Demo Bot link from Demo Corporate" {
		t.Errorf("Subject = %q, want the override's", got)
	}
	if !strings.Contains(m.Text, "invites you to chat") {
		t.Errorf("the text part should stay built-in:\n%s", m.Text)
	}

	if err := os.WriteFile(filepath.Join(dir, "en", "sms.txt"), []byte("{{.Nope}"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := newDB(t)
	err := cli.Run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0", "--templates", dir}, d.flags()...), noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "sms.txt") {
		t.Errorf("serve with a broken template: %v, want an error naming it", err)
	}
}

// TestSMSDelivery: a link requested by SMS reaches a local server that
// speaks the Twilio Messages API (path, basic auth, form fields checked).
func TestSMSDelivery(t *testing.T) { testkit.ForEachBackend(t, testSMSDelivery) }

func testSMSDelivery(t *testing.T) {
	p := newSMSProvider(t)
	s := startServer(t, p.flags()...)
	c := s.demo()
	e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "celullar": "0034 612 345 678"})
	expect(t, e, 200, 0)
	d := s.waitDelivery(t, c, e.str("url"), "sms", "sent", 10*time.Second)
	accepted, tries, bad := p.sent()
	if len(bad) > 0 {
		t.Fatalf("malformed requests to the provider: %v", bad)
	}
	if len(accepted) != 1 || len(tries) != 1 {
		t.Fatalf("provider got %d tries, accepted %d; want 1", len(tries), len(accepted))
	}
	f := accepted[0]
	if f.Get("To") != "+34612345678" || f.Get("From") != "+15005550006" {
		t.Errorf("To %q From %q", f.Get("To"), f.Get("From"))
	}
	if !strings.Contains(f.Get("Body"), e.str("url")) || !strings.Contains(f.Get("Body"), "Demo Bot") {
		t.Errorf("Body %q lacks the link or the bot", f.Get("Body"))
	}
	if id, _ := d["provider_id"].(string); !strings.HasPrefix(id, "SM") {
		t.Errorf("provider_id %q, want the Twilio SID", id)
	}
	if strings.Contains(s.logs.String(), p.token) {
		t.Error("the logs contain the SMS token")
	}
}

// TestDeliveryFaults: the provider outages of the issue, on both backends.
func TestDeliveryFaults(t *testing.T) { testkit.ForEachBackend(t, testDeliveryFaults) }

func testDeliveryFaults(t *testing.T) {
	fast := []string{"--delivery-first-retry", "200ms", "--delivery-max-retry", "2s"}

	t.Run("MailServerDownThenUp", func(t *testing.T) {
		t.Parallel()
		box := newMailbox(t, "", "")
		// Tries about every 2 s: the 10 s outage uses about 6 of 12.
		s := startServer(t, append(box.flags(), "--delivery-first-retry", "1s", "--delivery-max-retry", "2s", "--delivery-attempts", "12")...)
		c := s.demo()
		asked := time.Now()
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com"})
		expect(t, e, 200, 0)
		failed := s.waitDelivery(t, c, e.str("url"), "mail", "failed", 5*time.Second)
		if failed["last_error"] == "" || failed["next_attempt_at"] == nil {
			t.Errorf("failed delivery without its error or next try: %v", failed)
		}
		time.Sleep(time.Until(asked.Add(10 * time.Second)))
		box.Up()
		box.WaitFor(t, 1, 15*time.Second)
		s.waitDelivery(t, c, e.str("url"), "mail", "sent", 5*time.Second)
		time.Sleep(3 * time.Second) // anything more would arrive by now
		if n := len(box.Received()); n != 1 {
			t.Errorf("%d mails arrived, want exactly 1", n)
		}
	})

	t.Run("SMSServerErrorsThenAccepted", func(t *testing.T) {
		t.Parallel()
		p := newSMSProvider(t, smsAnswer{status: 500}, smsAnswer{status: 500})
		s := startServer(t, append(p.flags(), fast...)...)
		c := s.demo()
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "celullar": "+34612345678"})
		expect(t, e, 200, 0)
		d := s.waitDelivery(t, c, e.str("url"), "sms", "sent", 15*time.Second)
		time.Sleep(2 * time.Second)
		accepted, tries, _ := p.sent()
		if len(accepted) != 1 || len(tries) != 3 || num(d["attempts"]) != 3 {
			t.Errorf("accepted %d of %d tries, ledger attempts %v; want 1 SMS after 3 tries", len(accepted), len(tries), d["attempts"])
		}
	})

	t.Run("SMSRefusedIsDeadMailStillSent", func(t *testing.T) {
		t.Parallel()
		p := newSMSProvider(t, smsAnswer{status: 400})
		box := newMailbox(t, "", "")
		box.Up()
		s := startServer(t, append(append(p.flags(), box.flags()...), fast...)...)
		c := s.demo()
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com", "celullar": "+34612345678"})
		expect(t, e, 200, 0)
		dead := s.waitDelivery(t, c, e.str("url"), "sms", "dead", 10*time.Second)
		s.waitDelivery(t, c, e.str("url"), "mail", "sent", 10*time.Second)
		box.WaitFor(t, 1, 5*time.Second)
		time.Sleep(time.Second)
		if _, tries, _ := p.sent(); len(tries) != 1 || num(dead["attempts"]) != 1 {
			t.Errorf("a refused SMS was tried %d times (ledger %v), want once", len(tries), dead["attempts"])
		}
		if msg, _ := dead["last_error"].(string); !strings.Contains(msg, "400") {
			t.Errorf("last_error %q does not say what the provider answered", msg)
		}
	})

	t.Run("SMSRetryAfterHonoured", func(t *testing.T) {
		t.Parallel()
		p := newSMSProvider(t, smsAnswer{status: 429, retryAfter: "3"})
		s := startServer(t, append(p.flags(), "--delivery-first-retry", "100ms")...)
		c := s.demo()
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "celullar": "+34612345678"})
		expect(t, e, 200, 0)
		s.waitDelivery(t, c, e.str("url"), "sms", "sent", 15*time.Second)
		_, tries, _ := p.sent()
		if len(tries) != 2 {
			t.Fatalf("%d tries, want 2", len(tries))
		}
		if gap := tries[1].Sub(tries[0]); gap < 2900*time.Millisecond {
			t.Errorf("the retry came %v after the 429, want at least its Retry-After of 3 s", gap)
		}
	})
}

// TestDeliveryCrash: with deliveries pending (the mail server down), the
// server is SIGKILLed; after a restart every one goes out, none lost, none
// twice.
func TestDeliveryCrash(t *testing.T) { testkit.ForEachBackend(t, testDeliveryCrash) }

func testDeliveryCrash(t *testing.T) {
	box := newMailbox(t, "", "")
	d := newDB(t)
	args := append(box.flags(), "--delivery-first-retry", "300ms", "--delivery-max-retry", "1s", "--delivery-timeout", "1s")
	s := startProcess(t, d, args...)
	c := s.demo()
	const n = 20
	for i := range n {
		expect(t, s.post(t, "/token/new", c.auth, c.token, map[string]any{
			"virtual_user": fmt.Sprint("u", i), "bot_idsha": c.bot, "mail": fmt.Sprintf("u%d@example.com", i)}), 200, 0)
	}
	time.Sleep(500 * time.Millisecond) // let some fail and some be claimed
	s.kill()

	box.Up()
	startProcess(t, d, args...)
	mails := box.WaitFor(t, n, 30*time.Second)
	time.Sleep(3 * time.Second)
	mails = box.Received()
	got := map[string]int{}
	for _, m := range mails {
		got[strings.Join(m.To, ",")]++
	}
	for i := range n {
		if addr := fmt.Sprintf("u%d@example.com", i); got[addr] != 1 {
			t.Errorf("%s got %d mails, want 1", addr, got[addr])
		}
	}
	if len(mails) != n {
		t.Errorf("%d mails, want %d", len(mails), n)
	}
}

// TestRecipientLimit: one corporate may send a documented number of links
// an hour to one address; beyond it code 8 with Retry-After, and nothing is
// created. Other addresses and other corporates are not held back.
func TestRecipientLimit(t *testing.T) { testkit.ForEachBackend(t, testRecipientLimit) }

func testRecipientLimit(t *testing.T) {
	s := startServer(t, "--recipient-limit", "3")
	c := s.demo()
	other := s.newCorporate(t, "Neighbour")
	req := func(user, mail string) map[string]any {
		return map[string]any{"virtual_user": user, "bot_idsha": c.bot, "mail": mail}
	}
	for i := range 3 {
		expect(t, s.post(t, "/token/new", c.auth, c.token, req(fmt.Sprint("u", i), "busy@example.com")), 200, 0)
	}
	e := s.post(t, "/token/new", c.auth, c.token, req("fresh-user", "busy@example.com"))
	expect(t, e, 429, 8)
	if n, err := strconv.Atoi(e.Header.Get("Retry-After")); err != nil || n < 3000 || n > 3600 {
		t.Errorf("Retry-After = %q, want about an hour", e.Header.Get("Retry-After"))
	}
	if e.str("field") != "mail" {
		t.Errorf("field = %q, want mail", e.str("field"))
	}
	// Nothing was created: the refused user does not exist yet.
	if got := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "fresh-user"}); got.Body["previously_registered"] != false {
		t.Errorf("the refused request created its user: %s", got.Raw)
	}
	expect(t, s.post(t, "/token/new", c.auth, c.token, req("u9", "calm@example.com")), 200, 0)
	expect(t, s.post(t, "/token/new", other.auth, other.token, map[string]any{"virtual_user": "x", "bot_idsha": other.bot, "mail": "busy@example.com"}), 200, 0)
}

// TestLinkStatusAndRevoke: /token/status shows a link and its ledger to its
// corporate only; /token/revoke ends it at once, twice without error.
func TestLinkStatusAndRevoke(t *testing.T) { testkit.ForEachBackend(t, testLinkStatusAndRevoke) }

func testLinkStatusAndRevoke(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	other := s.newCorporate(t, "Neighbour")
	e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com", "celullar": "+34612345678", "max_retries": 3})
	expect(t, e, 200, 0)
	url := e.str("url")
	st := s.linkStatus(t, c, url)
	want := map[string]any{"url": url, "user_idsha": e.str("user_idsha"), "bot_idsha": c.bot, "state": "active",
		"max_retries": 3.0, "uses": 0.0, "uses_left": 3.0, "date_limit": e.str("date_limit"), "revoked": false}
	for k, v := range want {
		if st.Body[k] != v {
			t.Errorf("status %s = %v, want %v", k, st.Body[k], v)
		}
	}
	if ds := st.deliveries(); len(ds) != 2 || ds[0]["channel"] != "mail" || ds[1]["channel"] != "sms" || ds[1]["to"] != "+34612345678" {
		t.Errorf("deliveries = %v", ds)
	}
	// The token alone works too; another corporate learns nothing.
	expect(t, s.post(t, "/token/status", c.auth, c.token, map[string]string{"url": url[strings.LastIndex(url, "/")+1:]}), 200, 0)
	e = s.post(t, "/token/status", other.auth, other.token, map[string]string{"url": url})
	expect(t, e, 404, 7)
	expect(t, s.post(t, "/token/revoke", other.auth, other.token, map[string]string{"url": url}), 404, 7)
	expect(t, s.post(t, "/token/status", c.auth, c.token, map[string]string{}), 400, 6)
	expect(t, s.post(t, "/token/status", c.auth, c.token, map[string]string{"url": s.URL + "/l/imbl_nope"}), 404, 7)

	// Spending shows in the status.
	if resp, err := (&http.Client{Transport: validated(t, http.DefaultTransport)}).Post(url, "application/x-www-form-urlencoded", nil); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	if st := s.linkStatus(t, c, url); st.Body["uses"] != 1.0 || st.Body["uses_left"] != 2.0 {
		t.Errorf("after one use: uses %v, left %v", st.Body["uses"], st.Body["uses_left"])
	}

	r := s.post(t, "/token/revoke", c.auth, c.token, map[string]string{"url": url})
	expect(t, r, 200, 0)
	if r.Body["state"] != "revoked" || r.Body["revoked"] != true || r.Body["previously_revoked"] != false {
		t.Errorf("revoke = %s", r.Raw)
	}
	resp, err := (&http.Client{Transport: validated(t, http.DefaultTransport)}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone {
		t.Errorf("revoked link answers %d, want 410", resp.StatusCode)
	}
	r = s.post(t, "/token/revoke", c.auth, c.token, map[string]string{"url": url})
	expect(t, r, 200, 0)
	if r.Body["previously_revoked"] != true {
		t.Errorf("second revoke: previously_revoked %v", r.Body["previously_revoked"])
	}
	// The next /token/new makes a new link.
	e = s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com"})
	expect(t, e, 200, 0)
	if e.str("url") == url || e.Body["previously_created"] != false {
		t.Errorf("after revoking, /token/new returned %s", e.Raw)
	}
}

// TestDeliveriesCLI: a dead delivery is listed by the operator's CLI and
// sent when queued again.
func TestDeliveriesCLI(t *testing.T) {
	p := newSMSProvider(t, smsAnswer{status: 400})
	s := startServer(t, p.flags()...)
	c := s.demo()
	e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "celullar": "+34612345678"})
	expect(t, e, 200, 0)
	dead := s.waitDelivery(t, c, e.str("url"), "sms", "dead", 10*time.Second)

	out, err := s.imbee("deliveries", "list", "--status", "dead")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "dead") || !strings.Contains(out, "+34*******78") || strings.Contains(out, "+34612345678") {
		t.Errorf("deliveries list (addresses masked):\n%s", out)
	}
	out, err = s.imbee("deliveries", "list", "--json")
	if err != nil || !strings.Contains(out, `"to": "+34612345678"`) {
		t.Errorf("deliveries list --json: %v\n%s", err, out)
	}
	if _, err := s.imbee("deliveries", "retry"); err == nil {
		t.Error("deliveries retry without --id or --all should fail")
	}
	out, err = s.imbee("deliveries", "retry", "--id", fmt.Sprint(num(dead["id"])))
	if err != nil || !strings.Contains(out, "1 deliveries queued again") {
		t.Fatalf("retry: %v %s", err, out)
	}
	d := s.waitDelivery(t, c, e.str("url"), "sms", "sent", 10*time.Second)
	if num(d["attempts"]) != 1 {
		t.Errorf("a retried delivery starts a fresh set of attempts: %v", d["attempts"])
	}
	if accepted, _, _ := p.sent(); len(accepted) != 1 {
		t.Errorf("%d SMS accepted after the retry, want 1", len(accepted))
	}
}

package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// mailbox is the shared SMTP server (internal/testkit) that serve's mail
// flags point at.
type mailbox struct {
	*testkit.MailServer
	user, pass string // AUTH PLAIN is required when user is set
}

// newMailbox reserves a loopback port for a mail server; start it with Up.
func newMailbox(t testing.TB, user, pass string) *mailbox {
	t.Helper()
	return &mailbox{MailServer: testkit.NewMailServer(t, testkit.MailOptions{User: user, Pass: pass}), user: user, pass: pass}
}

// smsProvider is a local HTTP server that speaks the Twilio Messages API:
// it checks the path, basic auth and form, and answers with the statuses it
// is given, in order (201 once they run out).
type smsProvider struct {
	*httptest.Server
	account, token string

	mu       sync.Mutex
	answers  []smsAnswer
	accepted []url.Values // the forms answered 201
	tries    []time.Time  // every request, well-formed or not
	bad      []string     // what was wrong with malformed requests
}

type smsAnswer struct {
	status     int
	retryAfter string
}

func newSMSProvider(t testing.TB, answers ...smsAnswer) *smsProvider {
	t.Helper()
	p := &smsProvider{account: "AC0123456789abcdef", token: "twilio-test-token", answers: answers}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *smsProvider) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tries = append(p.tries, time.Now())
	user, pass, ok := r.BasicAuth()
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/2010-04-01/Accounts/"+p.account+"/Messages.json":
		p.bad = append(p.bad, r.Method+" "+r.URL.Path)
		http.NotFound(w, r)
		return
	case !ok || user != p.account || pass != p.token:
		p.bad = append(p.bad, "basic auth "+user)
		w.WriteHeader(http.StatusUnauthorized)
		return
	case r.ParseForm() != nil || r.PostForm.Get("To") == "" || r.PostForm.Get("From") == "" || r.PostForm.Get("Body") == "":
		p.bad = append(p.bad, "form "+r.PostForm.Encode())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	a := smsAnswer{status: http.StatusCreated}
	if len(p.answers) > 0 {
		a, p.answers = p.answers[0], p.answers[1:]
	}
	w.Header().Set("Content-Type", "application/json")
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
	if a.status == http.StatusCreated {
		p.accepted = append(p.accepted, r.PostForm)
		io.WriteString(w, `{"sid": "SM`+strings.Repeat("0", 30)+string(rune('a'+len(p.accepted)%26))+`", "status": "queued"}`)
		return
	}
	io.WriteString(w, `{"code": 21211, "message": "The 'To' number is not a valid phone number.", "status": 400}`)
}

// sent returns the forms of the messages accepted so far, and every try.
func (p *smsProvider) sent() (accepted []url.Values, tries []time.Time, bad []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]url.Values(nil), p.accepted...), append([]time.Time(nil), p.tries...), append([]string(nil), p.bad...)
}

// flags are the serve flags that send SMS through this provider.
func (p *smsProvider) flags() []string {
	return []string{"--sms-provider", "twilio", "--sms-url", p.URL, "--sms-account", p.account, "--sms-token", p.token, "--sms-from", "+15005550006"}
}

// flags are the serve flags that send mail through this server.
func (m *mailbox) flags() []string {
	f := []string{"--smtp-addr", m.Addr, "--smtp-tls", "none", "--mail-from", "links@imbee.test"}
	if m.user != "" {
		f = append(f, "--smtp-user", m.user, "--smtp-password", m.pass)
	}
	return f
}

package e2e

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// mailbox is a real SMTP server (go-smtp) on loopback that keeps every mail
// it accepts. It can be stopped and started again on the same address, to
// play a mail server that is down for a while.
type mailbox struct {
	t          testing.TB
	addr       string
	user, pass string // AUTH PLAIN is required when user is set

	mu     sync.Mutex
	mails  []receivedMail
	server *smtp.Server
}

// receivedMail is one mail as the SMTP server got it.
type receivedMail struct {
	From string   // MAIL FROM
	To   []string // RCPT TO
	Data []byte   // the whole message
}

// newMailbox reserves a loopback port for a mail server; start it with up.
func newMailbox(t testing.TB, user, pass string) *mailbox {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := &mailbox{t: t, addr: addr, user: user, pass: pass}
	t.Cleanup(m.down)
	return m
}

// up starts (or restarts) the server on its address.
func (m *mailbox) up() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.server != nil {
		return
	}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{box: m}, nil }))
	s.Domain = "mail.test"
	s.AllowInsecureAuth = true
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	var ln net.Listener
	var err error
	for range 50 { // the port was just freed by down: it may take a moment
		if ln, err = net.Listen("tcp", m.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		m.t.Fatalf("mail server: %v", err)
	}
	go s.Serve(ln)
	m.server = s
}

// down stops the server: connections are refused until up.
func (m *mailbox) down() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.server != nil {
		m.server.Close()
		m.server = nil
	}
}

// received returns the mails so far.
func (m *mailbox) received() []receivedMail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]receivedMail(nil), m.mails...)
}

// waitFor waits until n mails have arrived and returns them.
func (m *mailbox) waitFor(t testing.TB, n int, within time.Duration) []receivedMail {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := m.received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mails arrived within %v, want %d", len(got), within, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type smtpSession struct {
	box    *mailbox
	authed bool
	from   string
	to     []string
}

func (s *smtpSession) AuthMechanisms() []string {
	if s.box.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.box.user || pass != s.box.pass {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.box.user != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.box.mu.Lock()
	s.box.mails = append(s.box.mails, receivedMail{From: s.from, To: s.to, Data: b})
	s.box.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.from, s.to = "", nil }
func (s *smtpSession) Logout() error { return nil }

// parsedMail is a received mail taken apart.
type parsedMail struct {
	Header mail.Header
	From   *mail.Address
	To     string
	Text   string // the text/plain part, decoded
	HTML   string // the text/html part, decoded
}

// parse takes a multipart/alternative mail apart and decodes its parts.
func (r receivedMail) parse(t testing.TB) parsedMail {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		t.Fatalf("parse mail: %v\n%s", err, r.Data)
	}
	p := parsedMail{Header: msg.Header, To: msg.Header.Get("To")}
	if p.From, err = mail.ParseAddress(msg.Header.Get("From")); err != nil {
		t.Fatalf("From %q: %v", msg.Header.Get("From"), err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q: want multipart/alternative", msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("mail part: %v", err)
		}
		body := decodePart(t, part)
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			p.Text = body
		case "text/html":
			p.HTML = body
		}
	}
	if p.Text == "" || p.HTML == "" {
		t.Fatalf("mail lacks a text or an HTML part:\n%s", r.Data)
	}
	return p
}

func decodePart(t testing.TB, part *multipart.Part) string {
	t.Helper()
	// multipart.Reader already undoes quoted-printable (and drops the
	// header); base64 is left to us.
	var r io.Reader = part
	switch strings.ToLower(part.Header.Get("Content-Transfer-Encoding")) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, part)
	case "quoted-printable":
		r = quotedprintable.NewReader(part)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decode part: %v", err)
	}
	return string(b)
}

// subject decodes the mail's Subject (RFC 2047).
func (p parsedMail) subject(t testing.TB) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(p.Header.Get("Subject"))
	if err != nil {
		t.Fatalf("Subject: %v", err)
	}
	return s
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
	f := []string{"--smtp-addr", m.addr, "--smtp-tls", "none", "--mail-from", "links@imbee.test"}
	if m.user != "" {
		f = append(f, "--smtp-user", m.user, "--smtp-password", m.pass)
	}
	return f
}

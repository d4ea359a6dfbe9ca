package testkit

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// MailOptions is how a MailServer answers.
type MailOptions struct {
	User, Pass  string      // AUTH PLAIN is required when User is set
	StartTLS    *tls.Config // offer STARTTLS with this configuration
	ImplicitTLS *tls.Config // speak TLS from the first byte
	// RcptErr and DataErr, when set, are the answers to RCPT TO and to
	// DATA instead of accepting.
	RcptErr, DataErr error
	// Hold, when set, is called with each mail once its data has arrived:
	// the mail is kept, and answered 250, when Hold calls accept.
	Hold func(accept func())
}

// Mail is one mail as the server got it.
type Mail struct {
	From     string   // MAIL FROM
	To       []string // RCPT TO
	Data     []byte   // the whole message
	TLS      bool     // the session ran over TLS
	AuthUser string   // the user the session authenticated as
}

// MailServer is a real SMTP server (go-smtp) on loopback that keeps every
// mail it accepts. It can be stopped and started again on the same
// address, to play a mail server that is down for a while.
type MailServer struct {
	Addr string
	tb   testing.TB
	opts MailOptions

	mu        sync.Mutex
	mails     []Mail
	authTries int
	server    *smtp.Server
}

// NewMailServer reserves a loopback address for a mail server that is
// down until Up; it stops with the test.
func NewMailServer(tb testing.TB, opts MailOptions) *MailServer {
	tb.Helper()
	m, ln := listenMail(tb, opts)
	ln.Close()
	return m
}

// StartMailServer starts a mail server on a free loopback address; it
// stops with the test.
func StartMailServer(tb testing.TB, opts MailOptions) *MailServer {
	tb.Helper()
	m, ln := listenMail(tb, opts)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.serve(ln)
	return m
}

// listenMail makes a mail server at a free loopback address, and the
// listener that holds the address.
func listenMail(tb testing.TB, opts MailOptions) (*MailServer, net.Listener) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	m := &MailServer{Addr: ln.Addr().String(), tb: tb, opts: opts}
	tb.Cleanup(m.Down)
	return m, ln
}

// Up starts (or restarts) the server on its address.
func (m *MailServer) Up() {
	m.tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.server != nil {
		return
	}
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for { // the port was just freed by Down: it may take a moment
		if ln, err = net.Listen("tcp", m.Addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		m.tb.Fatalf("mail server: %v", err)
	}
	m.serve(ln)
}

// serve runs the server on ln; m.mu is held.
func (m *MailServer) serve(ln net.Listener) {
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &mailSession{box: m, tls: isTLS}, nil
	}))
	s.Domain = "mail.test"
	s.AllowInsecureAuth = true // AUTH without TLS is a supported setup
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	if m.opts.ImplicitTLS != nil {
		ln = tls.NewListener(ln, m.opts.ImplicitTLS)
	} else {
		s.TLSConfig = m.opts.StartTLS
	}
	go s.Serve(ln)
	m.server = s
}

// Down stops the server: connections are refused until Up.
func (m *MailServer) Down() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.server != nil {
		m.server.Close()
		m.server = nil
	}
}

// Received returns the mails so far.
func (m *MailServer) Received() []Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Mail(nil), m.mails...)
}

// AuthAttempts counts the AUTH commands so far, right or wrong.
func (m *MailServer) AuthAttempts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.authTries
}

// WaitFor waits until n mails have arrived and returns them.
func (m *MailServer) WaitFor(tb testing.TB, n int, within time.Duration) []Mail {
	tb.Helper()
	deadline := time.Now().Add(within)
	for {
		got := m.Received()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d mails arrived within %v, want %d", len(got), within, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type mailSession struct {
	box      *MailServer
	tls      bool
	authUser string
	from     string
	to       []string
}

func (s *mailSession) AuthMechanisms() []string {
	if s.box.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *mailSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		s.box.mu.Lock()
		s.box.authTries++
		s.box.mu.Unlock()
		if user != s.box.opts.User || pass != s.box.opts.Pass {
			return smtp.ErrAuthFailed // 535 5.7.8, as real servers answer
		}
		s.authUser = user
		return nil
	}), nil
}

func (s *mailSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.box.opts.User != "" && s.authUser == "" {
		return smtp.ErrAuthRequired
	}
	s.from = from
	return nil
}

func (s *mailSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.box.opts.RcptErr != nil {
		return s.box.opts.RcptErr
	}
	s.to = append(s.to, to)
	return nil
}

func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if s.box.opts.DataErr != nil {
		return s.box.opts.DataErr
	}
	accept := func() {
		s.box.mu.Lock()
		s.box.mails = append(s.box.mails, Mail{From: s.from, To: s.to, Data: b, TLS: s.tls, AuthUser: s.authUser})
		s.box.mu.Unlock()
	}
	if s.box.opts.Hold != nil {
		s.box.opts.Hold(accept)
	} else {
		accept()
	}
	return nil
}

func (s *mailSession) Reset()        { s.from, s.to = "", nil }
func (s *mailSession) Logout() error { return nil }

// ParsedMail is a received mail taken apart.
type ParsedMail struct {
	Header  mail.Header
	From    *mail.Address
	To      string // the To header
	Subject string // decoded (RFC 2047)
	Text    string // the text/plain part, decoded
	HTML    string // the text/html part, decoded
}

// Parse takes a multipart/alternative mail apart and decodes its parts; it
// fails the test unless the mail has one From, a subject, a text part and
// an HTML part, and no other.
func (r Mail) Parse(tb testing.TB) ParsedMail {
	tb.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(r.Data))
	if err != nil {
		tb.Fatalf("parse mail: %v\n%s", err, r.Data)
	}
	p := ParsedMail{Header: msg.Header, To: msg.Header.Get("To")}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 {
		tb.Fatalf("From %q: %v", msg.Header.Get("From"), err)
	}
	p.From = from[0]
	if p.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		tb.Fatalf("Subject: %v", err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		tb.Fatalf("Content-Type %q, want multipart/alternative", msg.Header.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatalf("mail part: %v", err)
		}
		body := decodePart(tb, part)
		ct, _, _ := mime.ParseMediaType(part.Header.Get("Content-Type"))
		switch ct {
		case "text/plain":
			p.Text = body
		case "text/html":
			p.HTML = body
		default:
			tb.Errorf("unexpected part %s", ct)
		}
	}
	if p.Text == "" || p.HTML == "" {
		tb.Fatalf("mail lacks a text or an HTML part:\n%s", r.Data)
	}
	return p
}

func decodePart(tb testing.TB, part *multipart.Part) string {
	tb.Helper()
	// multipart.Reader undoes quoted-printable itself (and drops the
	// header) when the part says so plainly; the rest is left to us.
	var r io.Reader = part
	switch strings.ToLower(part.Header.Get("Content-Transfer-Encoding")) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, part)
	case "quoted-printable":
		r = quotedprintable.NewReader(part)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		tb.Fatalf("decode part: %v", err)
	}
	return string(b)
}

package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
)

// SMTPConfig is how to reach the mail server.
type SMTPConfig struct {
	Addr     string // host:port
	User     string // AUTH is used when set
	Password string
	// TLS is "starttls" (the default: STARTTLS required), "tls" (implicit
	// TLS, usually port 465) or "none" (plain text, for a local relay).
	TLS  string
	From string // the envelope and header sender address
	// TLSConfig overrides the TLS settings (tests trust their own CA).
	TLSConfig *tls.Config
}

// SMTPSender sends links by e-mail, multipart text and HTML, over SMTP.
type SMTPSender struct {
	cfg       SMTPConfig
	host      string
	port      int
	templates *Templates
}

// NewSMTPSender checks cfg and returns a sender that renders with t.
func NewSMTPSender(cfg SMTPConfig, t *Templates) (*SMTPSender, error) {
	host, p, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("--smtp-addr must be host:port: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("--smtp-addr: bad port %q", p)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = "starttls"
	case "starttls", "tls", "none":
	default:
		return nil, fmt.Errorf("--smtp-tls must be none, starttls or tls, not %q", cfg.TLS)
	}
	if cfg.From == "" {
		return nil, errors.New("--mail-from is required with --smtp-addr")
	}
	if err := mail.NewMsg().From(cfg.From); err != nil {
		return nil, fmt.Errorf("--mail-from: %w", err)
	}
	return &SMTPSender{cfg: cfg, host: host, port: port, templates: t}, nil
}

// Describe says where mail goes, without secrets, for the start-up message.
func (s *SMTPSender) Describe() string {
	auth := "no AUTH"
	if s.cfg.User != "" {
		auth = "AUTH as " + s.cfg.User
	}
	return fmt.Sprintf("SMTP %s (%s, %s) from %s", s.cfg.Addr, s.cfg.TLS, auth, s.cfg.From)
}

// Send renders m in its language and hands it to the SMTP server. A 5xx
// answer is permanent; anything else (4xx, the server unreachable) is
// retried.
func (s *SMTPSender) Send(ctx context.Context, m Message) (string, error) {
	r, err := s.templates.Render(m.Language, TemplateData{URL: m.URL, BotName: m.BotName, CorporateName: m.CorporateName, SenderName: m.SenderName})
	if err != nil {
		return "", Permanent(renderError{err})
	}
	msg := mail.NewMsg()
	name := m.SenderName
	if name == "" {
		name = m.CorporateName
	}
	if err := msg.FromFormat(name, s.cfg.From); err != nil {
		return "", Permanent(err)
	}
	if err := msg.To(m.Recipient.Address); err != nil {
		return "", Permanent(err)
	}
	msg.Subject(r.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(mail.TypeTextPlain, r.Text)
	msg.AddAlternativeString(mail.TypeTextHTML, r.HTML)

	opts := []mail.Option{mail.WithPort(s.port), mail.WithTimeout(20 * time.Second)}
	switch s.cfg.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	opts = append(opts, mail.WithTLSConfig(s.tlsConfig()))
	if s.cfg.User != "" {
		// PLAIN refuses to send the password unencrypted; with --smtp-tls
		// none the operator has chosen that (a relay on the same host).
		auth := mail.SMTPAuthPlain
		if s.cfg.TLS == "none" {
			auth = mail.SMTPAuthPlainNoEnc
		}
		opts = append(opts, mail.WithSMTPAuth(auth), mail.WithUsername(s.cfg.User), mail.WithPassword(s.cfg.Password))
	}
	// go-mail bounds only the dial by ctx, then each command by its own
	// timeout: a server that stalls would hold the send past ctx, past the
	// worker's lease, while another server claims the delivery and sends
	// it again. The connection is closed when ctx ends.
	var release func() bool
	defer func() {
		if release != nil {
			release()
		}
	}()
	opts = append(opts, mail.WithDialContextFunc(func(dialCtx context.Context, network, addr string) (net.Conn, error) {
		conn, err := new(net.Dialer).DialContext(dialCtx, network, addr)
		if err != nil {
			return nil, err
		}
		if s.cfg.TLS == "tls" { // go-mail leaves implicit TLS to a dialer of ours
			tc := tls.Client(conn, s.tlsConfig())
			if err := tc.HandshakeContext(dialCtx); err != nil {
				conn.Close()
				return nil, err
			}
			conn = tc
		}
		release = context.AfterFunc(ctx, func() { conn.Close() })
		return conn, nil
	}))
	c, err := mail.NewClient(s.host, opts...)
	if err != nil {
		return "", Permanent(err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		var se *mail.SendError
		if errors.As(err, &se) && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
			return "", Permanent(err)
		}
		// A 5xx before the mail transaction (AUTH's 535, a 554 greeting)
		// is no SendError: go-mail returns the server's reply as is.
		var te *textproto.Error
		if errors.As(err, &te) && te.Code >= 500 && te.Code < 600 {
			return "", Permanent(err)
		}
		if ctx.Err() != nil { // the connection was closed under it
			return "", fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return "", err
	}
	return msg.GetMessageID(), nil
}

// tlsConfig is the TLS configuration of STARTTLS and implicit TLS: the
// operator's, or go-mail's default (the system roots, the server's name).
func (s *SMTPSender) tlsConfig() *tls.Config {
	if s.cfg.TLSConfig != nil {
		return s.cfg.TLSConfig
	}
	return &tls.Config{ServerName: s.host, MinVersion: mail.DefaultTLSMinVersion}
}

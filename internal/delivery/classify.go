package delivery

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"os"

	"code.dny.dev/ssrf"
	"github.com/wneessen/go-mail"
)

// StatusError is an HTTP provider's answer other than 2xx.
type StatusError struct {
	Code   int
	Status string // e.g. "503 Service Unavailable"
}

func (e *StatusError) Error() string { return "provider answered " + e.Status }

// Reason says why a send failed in words a tenant may read: a class of
// failure and the provider's status or reply code, never the provider's
// URL, host, path, query, account or what it said (the full error is for
// the operator: the log and the ledger's last_error). It classifies by
// the error's types, not its text.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var (
		status  *StatusError
		send    *mail.SendError
		reply   *textproto.Error
		cert    *tls.CertificateVerificationError
		unknown x509.UnknownAuthorityError
		hostErr x509.HostnameError
		dnsErr  *net.DNSError
		opErr   *net.OpError
		netErr  net.Error
		render  renderError
	)
	switch {
	case errors.As(err, &render):
		return "could not render the message"
	case errors.Is(err, errNoTransport):
		return "no transport for this channel"
	case errors.Is(err, errNoWebhook):
		return "the bot has no webhook"
	case errors.Is(err, errNoBuiltin):
		return "the built-in bot is not running"
	case errors.Is(err, errCircuitOpen):
		return "not tried: the target failed repeatedly, waiting before trying again"
	case errors.Is(err, ssrf.ErrProhibitedIP), errors.Is(err, ssrf.ErrProhibitedPort), errors.Is(err, ssrf.ErrProhibitedNetwork):
		return "address not allowed"
	case errors.As(err, &status):
		return fmt.Sprintf("refused by the provider: HTTP %d", status.Code)
	case errors.As(err, &send) && send.ErrorCode() > 0:
		if send.Reason == mail.ErrSMTPRcptTo {
			return fmt.Sprintf("address refused by the mail server: %d", send.ErrorCode())
		}
		return fmt.Sprintf("refused by the mail server: %d", send.ErrorCode())
	case errors.As(err, &reply):
		return fmt.Sprintf("refused by the mail server: %d", reply.Code)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "timed out"
	case errors.As(err, &cert), errors.As(err, &unknown), errors.As(err, &hostErr):
		return "could not connect securely: certificate not trusted"
	case errors.As(err, &opErr) && opErr.Op != "dial":
		return "connection lost"
	case errors.As(err, &dnsErr), errors.As(err, &opErr):
		return "could not connect"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the provider"
	}
	return "could not send"
}

// errNoTransport, errNoWebhook and errNoBuiltin are failures of the installation, not of
// a provider.
var (
	errCircuitOpen = errors.New("circuit open")
	errNoTransport = errors.New("no transport for this channel")
	errNoWebhook   = errors.New("the bot has no webhook any more")
	errNoBuiltin   = errors.New("the built-in demo bot is not running on this server")
)

// renderError is a template that failed to render.
type renderError struct{ err error }

func (e renderError) Error() string { return "render: " + e.err.Error() }
func (e renderError) Unwrap() error { return e.err }

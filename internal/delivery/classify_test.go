package delivery

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/imbee/imbee/internal/testkit"
)

// TestReason: real failures of the SMS and mail senders, classified by
// their types for the tenant, carry the class and the status or reply code
// and nothing of the provider's address, path, query or account.
func TestReason(t *testing.T) {
	const path, query, account = "/hooks/SECRETPATH", "key=SECRETKEY", "ACSECRETACCOUNT"
	hang := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/503/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/hang/", func(http.ResponseWriter, *http.Request) { <-hang })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(hang) // before Close, which waits for the handlers
	twilio := func(base string) Sender {
		s, err := NewSMSSender(SMSConfig{Provider: "twilio", URL: base, Account: account, Token: "tok", From: "+15005550006"}, builtinTemplates(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	gateway := func(base string) Sender {
		s, err := NewSMSSender(SMSConfig{Provider: "webhook", URL: base + path + "?" + query, Token: "tok"}, builtinTemplates(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		t.Cleanup(cancel)
		return ctx
	}
	for _, tc := range []struct {
		name string
		send func() error
		want string
	}{
		{"twilio 503", func() error { _, err := twilio(srv.URL+"/503").Send(quickCtx(t), smsMessage("en")); return err }, "refused by the provider: HTTP 503"},
		{"gateway 503", func() error { _, err := gateway(srv.URL+"/503").Send(quickCtx(t), smsMessage("en")); return err }, "refused by the provider: HTTP 503"},
		{"gateway refused connection", func() error { _, err := gateway("http://"+freeAddr(t)).Send(quickCtx(t), smsMessage("en")); return err }, "could not connect"},
		{"twilio timeout", func() error { _, err := twilio(srv.URL+"/hang").Send(short(), smsMessage("en")); return err }, "timed out"},
		{"gateway timeout", func() error { _, err := gateway(srv.URL+"/hang").Send(short(), smsMessage("en")); return err }, "timed out"},
		{"mail 550 at RCPT", func() error {
			box := testkit.StartMailServer(t, testkit.MailOptions{RcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}})
			_, err := newSMTP(t, SMTPConfig{Addr: box.Addr, TLS: "none"}).Send(quickCtx(t), mailMessage(""))
			return err
		}, "address refused by the mail server: 550"},
		{"mail 554 after DATA", func() error {
			box := testkit.StartMailServer(t, testkit.MailOptions{DataErr: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected as spam"}})
			_, err := newSMTP(t, SMTPConfig{Addr: box.Addr, TLS: "none"}).Send(quickCtx(t), mailMessage(""))
			return err
		}, "refused by the mail server: 554"},
		{"mail 554 greeting", func() error {
			_, err := newSMTP(t, SMTPConfig{Addr: greetingServer(t, "554 5.7.1 no service for you"), TLS: "none"}).Send(quickCtx(t), mailMessage(""))
			return err
		}, "refused by the mail server: 554"},
		{"mail server down", func() error {
			_, err := newSMTP(t, SMTPConfig{Addr: freeAddr(t), TLS: "none"}).Send(quickCtx(t), mailMessage(""))
			return err
		}, "could not connect"},
		{"mail untrusted certificate", func() error {
			box := testkit.StartMailServer(t, testkit.MailOptions{StartTLS: serverTLS()})
			_, err := newSMTP(t, SMTPConfig{Addr: box.Addr, TLS: "starttls"}).Send(quickCtx(t), mailMessage(""))
			return err
		}, "could not connect securely: certificate not trusted"},
		{"no transport", func() error { return Permanent(errNoTransport) }, "no transport for this channel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.send()
			if err == nil {
				t.Fatal("the send succeeded")
			}
			got := Reason(err)
			if got != tc.want {
				t.Errorf("Reason(%v) = %q, want %q", err, got, tc.want)
			}
			host := strings.TrimPrefix(srv.URL, "http://")
			for _, secret := range []string{"SECRET", host, "127.0.0.1", smsTo, mailTo} {
				if strings.Contains(got, secret) {
					t.Errorf("Reason %q shows %q", got, secret)
				}
			}
		})
	}
	if Reason(nil) != "" || Reason(errors.New("something new")) != "could not send" {
		t.Error("Reason of nil or of an unknown error")
	}
}

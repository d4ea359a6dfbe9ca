package testkit

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

const testMail = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nhello\r\n"

// send sends testMail over plain SMTP, after AUTH PLAIN as mailer when
// pass is set.
func send(addr, pass string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if pass != "" {
		if err := c.Auth(sasl.NewPlainClient("", "mailer", pass)); err != nil {
			return err
		}
	}
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(testMail)); err != nil {
		return err
	}
	return c.Quit()
}

// TestMailServerDownAndUp: the server keeps what an authenticated session
// sends, refuses a wrong password (535) and, once down, every connection;
// up again on the same address, it keeps the earlier mails and takes more.
func TestMailServerDownAndUp(t *testing.T) {
	box := StartMailServer(t, MailOptions{User: "mailer", Pass: "s3cret"})
	if err := send(box.Addr, "s3cret"); err != nil {
		t.Fatal(err)
	}
	if err := send(box.Addr, "wrong"); err == nil || !strings.Contains(err.Error(), "535") {
		t.Errorf("wrong password: %v, want 535", err)
	}
	if n := box.AuthAttempts(); n != 2 {
		t.Errorf("%d AUTH attempts, want 2", n)
	}
	got := box.Received()
	if len(got) != 1 || got[0].From != "a@example.com" || len(got[0].To) != 1 || got[0].To[0] != "b@example.com" || got[0].AuthUser != "mailer" || got[0].TLS {
		t.Fatalf("received %+v", got)
	}

	box.Down()
	if err := send(box.Addr, "s3cret"); err == nil {
		t.Fatal("sent to a server that is down")
	}
	box.Up()
	if err := send(box.Addr, "s3cret"); err != nil {
		t.Fatal(err)
	}
	if got := box.WaitFor(t, 2, 5*time.Second); len(got) != 2 {
		t.Errorf("%d mails, want 2", len(got))
	}
}

// TestMailServerHold: a held mail is not kept, nor answered, until Hold
// accepts it.
func TestMailServerHold(t *testing.T) {
	held, release := make(chan struct{}), make(chan struct{})
	box := StartMailServer(t, MailOptions{Hold: func(accept func()) {
		close(held)
		<-release
		accept()
	}})
	sent := make(chan error, 1)
	go func() {
		sent <- send(box.Addr, "")
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the mail was not held")
	}
	if n := len(box.Received()); n != 0 {
		t.Errorf("%d mails kept while held", n)
	}
	select {
	case err := <-sent:
		t.Fatalf("answered while held: %v", err)
	default:
	}
	close(release)
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if n := len(box.Received()); n != 1 {
		t.Errorf("%d mails kept once accepted, want 1", n)
	}
}

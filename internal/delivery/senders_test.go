package delivery

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

// ---------------------------------------------------------------------------
// Helpers shared by the sender tests.

func builtinTemplates(t testing.TB) *Templates {
	t.Helper()
	tpl, err := LoadTemplates("")
	if err != nil {
		t.Fatalf("LoadTemplates(\"\"): %v", err)
	}
	return tpl
}

// isPermanent says whether err is marked Permanent anywhere in its chain.
func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// retryAfterOf returns the wait a RetryAfter error asks for.
func retryAfterOf(err error) (time.Duration, bool) {
	var ra retryAfterError
	if errors.As(err, &ra) {
		return ra.after, true
	}
	return 0, false
}

// wantRetryable fails unless err is an error the worker retries with its
// backoff: neither Permanent nor RetryAfter.
func wantRetryable(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want a retryable error")
	}
	if isPermanent(err) {
		t.Errorf("err %q is Permanent, want retryable", err)
	}
	if d, ok := retryAfterOf(err); ok {
		t.Errorf("err %q is RetryAfter(%v), want a plain retryable error", err, d)
	}
}

func wantPermanent(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("err = nil, want a Permanent error")
	}
	if !isPermanent(err) {
		t.Errorf("err %q is not Permanent", err)
	}
	if d, ok := retryAfterOf(err); ok {
		t.Errorf("err %q is also RetryAfter(%v)", err, d)
	}
}

// quickCtx bounds one send in a test.
func quickCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

const (
	testURL  = "https://imbee.test/l/imbl_Tok3n-Value_42"
	testBot  = "Bob the Bot"
	testCorp = "Acme Corp"
)

// ---------------------------------------------------------------------------
// Templates

func TestTemplatesBuiltin(t *testing.T) {
	tpl := builtinTemplates(t)
	for _, tc := range []struct {
		lang, subject, sms, htmlLang string
	}{
		{"en", testBot + " is waiting for you: your link to chat", testCorp + ": chat with " + testBot + " here: " + testURL, `<html lang="en">`},
		{"es", testBot + " te espera: tu enlace para chatear", testCorp + ": chatea con " + testBot + " aquí: " + testURL, `<html lang="es">`},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			// No sender name: the corporate's name signs the mail.
			r, err := tpl.Render(tc.lang, TemplateData{URL: testURL, BotName: testBot, CorporateName: testCorp})
			if err != nil {
				t.Fatal(err)
			}
			if r.Subject != tc.subject {
				t.Errorf("Subject = %q, want %q", r.Subject, tc.subject)
			}
			if strings.ContainsAny(r.Subject, "\r\n") {
				t.Errorf("Subject %q is not one line", r.Subject)
			}
			if r.SMS != tc.sms {
				t.Errorf("SMS = %q, want %q (trimmed)", r.SMS, tc.sms)
			}
			for name, body := range map[string]string{"text": r.Text, "html": r.HTML, "sms": r.SMS} {
				for _, want := range []string{testURL, testBot, testCorp} {
					if !strings.Contains(body, want) {
						t.Errorf("%s lacks %q:\n%s", name, want, body)
					}
				}
			}
			if !strings.Contains(r.HTML, `href="`+testURL+`"`) {
				t.Errorf("html has no link to %s:\n%s", testURL, r.HTML)
			}
			if !strings.Contains(r.HTML, tc.htmlLang) {
				t.Errorf("html is not in %s:\n%s", tc.lang, r.HTML)
			}
			if !strings.Contains(r.Text, "-- \n"+testCorp) || !strings.Contains(r.HTML, "<p>"+testCorp+"</p>") {
				t.Errorf("without a sender name the mail is not signed by %q:\n%s\n%s", testCorp, r.Text, r.HTML)
			}

			// A sender name signs the mail instead.
			r, err = tpl.Render(tc.lang, TemplateData{URL: testURL, BotName: testBot, CorporateName: testCorp, SenderName: "Acme Support"})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.Text, "-- \nAcme Support") || !strings.Contains(r.HTML, "<p>Acme Support</p>") {
				t.Errorf("the mail is not signed by the sender name:\n%s\n%s", r.Text, r.HTML)
			}
		})
	}
}

func TestTemplatesUnknownLanguageFallsBackToEnglish(t *testing.T) {
	tpl := builtinTemplates(t)
	d := TemplateData{URL: testURL, BotName: testBot, CorporateName: testCorp}
	en, err := tpl.Render("en", d)
	if err != nil {
		t.Fatal(err)
	}
	es, err := tpl.Render("es", d)
	if err != nil {
		t.Fatal(err)
	}
	if en == es {
		t.Fatal("en and es render the same: the fallback check would prove nothing")
	}
	for _, lang := range []string{"fr", "", "EN", "es-ES"} {
		got, err := tpl.Render(lang, d)
		if err != nil {
			t.Fatalf("Render(%q): %v", lang, err)
		}
		if got != en {
			t.Errorf("Render(%q) = %+v, want the English rendering", lang, got)
		}
	}
}

func writeOverride(t *testing.T, dir, lang, name, src string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, lang), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, lang, name), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTemplatesOverrideReplacesOnlyThatFile(t *testing.T) {
	dir := t.TempDir()
	writeOverride(t, dir, "en", "subject.txt", "  Your {{.BotName}} link\nfrom {{.CorporateName}}\n\n")
	tpl, err := LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	base := builtinTemplates(t)
	d := TemplateData{URL: testURL, BotName: testBot, CorporateName: testCorp}

	got, err := tpl.Render("en", d)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := base.Render("en", d)
	if wantSubject := "Your " + testBot + " link from " + testCorp; got.Subject != wantSubject {
		t.Errorf("overridden Subject = %q, want %q (one line)", got.Subject, wantSubject)
	}
	if got.Text != want.Text || got.HTML != want.HTML || got.SMS != want.SMS {
		t.Errorf("overriding en/subject.txt changed another en file:\ngot  %+v\nwant %+v", got, want)
	}
	gotES, _ := tpl.Render("es", d)
	wantES, _ := base.Render("es", d)
	if gotES != wantES {
		t.Errorf("overriding en/subject.txt changed es:\ngot  %+v\nwant %+v", gotES, wantES)
	}
}

func TestTemplatesBrokenOverrideFailsLoad(t *testing.T) {
	for _, tc := range []struct {
		name, lang, file, src string
		why                   string // what the error must also say
	}{
		// Parse errors.
		{"unclosed action", "en", "subject.txt", "{{.Nope}", "subject.txt"},
		{"unknown function", "es", "sms.txt", "{{nope .URL}}", `"nope" not defined`},
		{"html parse error", "en", "mail.html", "<p>{{if .URL}}</p>", "mail.html"},
		// An unknown field parses, and fails when executed: TemplateData is
		// a struct, so missingkey=error does not apply, but text/template
		// and html/template refuse a field the struct lacks. LoadTemplates
		// renders once, so the mistake shows at start.
		{"unknown field in text", "en", "mail.txt", "Hi {{.Nope}}", "can't evaluate field Nope"},
		{"unknown field in html", "es", "mail.html", "<p>{{.Nope}}</p>", "can't evaluate field Nope"},
		{"unknown field in sms", "es", "sms.txt", "{{.URL}} {{.Recipient}}", "can't evaluate field Recipient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeOverride(t, dir, tc.lang, tc.file, tc.src)
			tpl, err := LoadTemplates(dir)
			if err == nil {
				t.Fatalf("LoadTemplates accepted %s/%s = %q", tc.lang, tc.file, tc.src)
			}
			if tpl != nil {
				t.Errorf("LoadTemplates returned templates along with %v", err)
			}
			for _, want := range []string{tc.lang + "/" + tc.file, tc.why} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}

	t.Run("unreadable override", func(t *testing.T) {
		dir := t.TempDir()
		// A directory where the file should be: it exists but cannot be
		// read, which must not silently fall back to the built-in file.
		if err := os.MkdirAll(filepath.Join(dir, "en", "sms.txt"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := LoadTemplates(dir)
		if err == nil {
			t.Fatal("LoadTemplates ignored an unreadable en/sms.txt")
		}
		if !strings.Contains(err.Error(), filepath.Join("en", "sms.txt")) {
			t.Errorf("error %q does not name the file", err)
		}
	})
}

func TestTemplatesHTMLEscaping(t *testing.T) {
	tpl := builtinTemplates(t)
	const bot = `<b>Bob</b>`
	const corp = `Smith & Sons`
	r, err := tpl.Render("en", TemplateData{URL: testURL, BotName: bot, CorporateName: corp})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(r.HTML, bot) {
		t.Errorf("html carries the bot name unescaped:\n%s", r.HTML)
	}
	if !strings.Contains(r.HTML, "&lt;b&gt;Bob&lt;/b&gt;") {
		t.Errorf("html lacks the escaped bot name:\n%s", r.HTML)
	}
	if strings.Contains(r.HTML, corp) || !strings.Contains(r.HTML, "Smith &amp; Sons") {
		t.Errorf("html does not escape %q:\n%s", corp, r.HTML)
	}
	for name, body := range map[string]string{"text": r.Text, "subject": r.Subject, "sms": r.SMS} {
		// The subject names only the bot.
		if !strings.Contains(body, bot) || name != "subject" && !strings.Contains(body, corp) {
			t.Errorf("%s does not carry the names verbatim:\n%s", name, body)
		}
		if strings.Contains(body, "&lt;") || strings.Contains(body, "&amp;") {
			t.Errorf("%s is HTML-escaped:\n%s", name, body)
		}
	}
}

// ---------------------------------------------------------------------------
// Twilio

const (
	twAccount = "AC0123456789"
	twToken   = "tw-secret-token"
	twFrom    = "+15005550006"
	smsTo     = "+34600111222"
)

// twilioServer is a local server speaking the Twilio Messages API. It checks
// every request and answers with answer.
func twilioServer(t *testing.T, wantBody string, answer http.HandlerFunc) (srv *httptest.Server, hits func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		if r.Method != http.MethodPost {
			t.Errorf("method %s, want POST", r.Method)
		}
		if want := "/2010-04-01/Accounts/" + twAccount + "/Messages.json"; r.URL.Path != want {
			t.Errorf("path %s, want %s", r.URL.Path, want)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != twAccount || p != twToken {
			t.Errorf("basic auth %q:%q (%v), want the account and token", u, p, ok)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
			t.Errorf("Content-Type %q", ct)
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("form: %v", err)
		}
		if got := r.PostForm.Get("To"); got != smsTo {
			t.Errorf("To = %q, want %q", got, smsTo)
		}
		if got := r.PostForm.Get("From"); got != twFrom {
			t.Errorf("From = %q, want %q", got, twFrom)
		}
		if got := r.PostForm.Get("Body"); got != wantBody {
			t.Errorf("Body = %q, want %q", got, wantBody)
		}
		if len(r.PostForm) != 3 {
			t.Errorf("form fields %v, want To, From and Body", r.PostForm)
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func smsMessage(lang string) Message {
	return Message{
		Recipient:     imbee.Recipient{Channel: imbee.ChannelSMS, Address: smsTo},
		URL:           testURL,
		BotName:       testBot,
		CorporateName: testCorp,
		Language:      lang,
		DeliveryID:    42,
	}
}

func newTwilio(t *testing.T, url string) Sender {
	t.Helper()
	s, err := NewSMSSender(SMSConfig{Provider: "twilio", URL: url, Account: twAccount, Token: twToken, From: twFrom}, builtinTemplates(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func answer(status int, body string, header ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestTwilioSend(t *testing.T) {
	tpl := builtinTemplates(t)
	m := smsMessage("es")
	r, err := tpl.Render("es", TemplateData{URL: m.URL, BotName: m.BotName, CorporateName: m.CorporateName})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.SMS, "chatea con") || !strings.Contains(r.SMS, testURL) {
		t.Fatalf("unexpected Spanish SMS %q", r.SMS)
	}
	const twilioError = `{"code": 21211, "message": "The 'To' number +34600111222 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`
	httpDate := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }

	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		check  func(t *testing.T, id string, err error)
	}{
		{"201 created", answer(http.StatusCreated, `{"sid": "SM123", "status": "queued"}`), func(t *testing.T, id string, err error) {
			if err != nil || id != "SM123" {
				t.Errorf("Send = %q, %v; want SM123, nil", id, err)
			}
		}},
		{"400 refused number", answer(http.StatusBadRequest, twilioError), func(t *testing.T, id string, err error) {
			wantPermanent(t, err)
			for _, want := range []string{"400", "21211", "not a valid phone number"} {
				if err != nil && !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		}},
		{"401 bad credentials", answer(http.StatusUnauthorized, `{"code": 20003, "message": "Authenticate", "status": 401}`), func(t *testing.T, id string, err error) {
			wantPermanent(t, err)
			if err != nil && !strings.Contains(err.Error(), "20003") {
				t.Errorf("error %q does not mention the Twilio code", err)
			}
		}},
		{"500", answer(http.StatusInternalServerError, ""), func(t *testing.T, id string, err error) {
			wantRetryable(t, err)
			if err != nil && !strings.Contains(err.Error(), "500") {
				t.Errorf("error %q does not mention the status", err)
			}
		}},
		{"503 with error JSON", answer(http.StatusServiceUnavailable, `{"code": 20503, "message": "Service unavailable"}`), func(t *testing.T, id string, err error) {
			wantRetryable(t, err)
			if err != nil && !strings.Contains(err.Error(), "Service unavailable") {
				t.Errorf("error %q does not carry Twilio's message", err)
			}
		}},
		{"408", answer(http.StatusRequestTimeout, ""), func(t *testing.T, id string, err error) {
			wantRetryable(t, err)
		}},
		{"429 Retry-After seconds", answer(http.StatusTooManyRequests, `{"code": 20429, "message": "Too Many Requests"}`, "Retry-After", "7"), func(t *testing.T, id string, err error) {
			d, ok := retryAfterOf(err)
			if !ok || d != 7*time.Second {
				t.Errorf("err %v: RetryAfter %v (%v), want 7s", err, d, ok)
			}
			if isPermanent(err) {
				t.Errorf("429 is Permanent")
			}
		}},
		{"429 Retry-After HTTP date", answer(http.StatusTooManyRequests, "", "Retry-After", httpDate(5*time.Second)), func(t *testing.T, id string, err error) {
			// The date has whole seconds: 5s ahead is 4 to 5 s from now.
			d, ok := retryAfterOf(err)
			if !ok || d < 3*time.Second || d > 5*time.Second {
				t.Errorf("err %v: RetryAfter %v (%v), want about 5s", err, d, ok)
			}
		}},
		{"429 without Retry-After", answer(http.StatusTooManyRequests, ""), func(t *testing.T, id string, err error) {
			// RetryAfter(0): the worker's backoff applies.
			d, ok := retryAfterOf(err)
			if !ok || d != 0 || isPermanent(err) {
				t.Errorf("err %v: RetryAfter %v (%v), want RetryAfter 0", err, d, ok)
			}
		}},
		{"429 Retry-After in the past", answer(http.StatusTooManyRequests, "", "Retry-After", httpDate(-time.Hour)), func(t *testing.T, id string, err error) {
			d, ok := retryAfterOf(err)
			if !ok || d != 0 {
				t.Errorf("err %v: RetryAfter %v (%v), want RetryAfter 0", err, d, ok)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, hits := twilioServer(t, r.SMS, tc.answer)
			id, err := newTwilio(t, srv.URL+"/").Send(quickCtx(t), m)
			if err != nil && id != "" {
				t.Errorf("Send failed (%v) yet returned id %q", err, id)
			}
			tc.check(t, id, err)
			if n := hits(); n != 1 {
				t.Errorf("the provider got %d requests, want 1 (the worker retries, not the sender)", n)
			}
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		id, err := newTwilio(t, "http://"+freeAddr(t)).Send(quickCtx(t), m)
		if id != "" {
			t.Errorf("id %q", id)
		}
		wantRetryable(t, err)
	})

	t.Run("no answer before the deadline", func(t *testing.T) {
		srv, _ := twilioServer(t, r.SMS, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, err := newTwilio(t, srv.URL).Send(ctx, m)
		wantRetryable(t, err)
	})
}

func TestNewSMSSenderValidation(t *testing.T) {
	tpl := builtinTemplates(t)
	tw := SMSConfig{Provider: "twilio", Account: twAccount, Token: twToken, From: twFrom}
	wh := SMSConfig{Provider: "webhook", URL: "https://gw.example.test/sms", Token: "wh-secret", From: "Acme"}
	with := func(c SMSConfig, f func(*SMSConfig)) SMSConfig { f(&c); return c }

	for _, tc := range []struct {
		name string
		cfg  SMSConfig
		want string // in the error
	}{
		{"twilio without account", with(tw, func(c *SMSConfig) { c.Account = "" }), "--sms-account"},
		{"twilio without token", with(tw, func(c *SMSConfig) { c.Token = "" }), "--sms-token"},
		{"twilio without from", with(tw, func(c *SMSConfig) { c.From = "" }), "--sms-from"},
		{"twilio with a bad URL", with(tw, func(c *SMSConfig) { c.URL = "not a url" }), "--sms-url"},
		{"webhook without URL", with(wh, func(c *SMSConfig) { c.URL = "" }), "--sms-url"},
		{"webhook without secret", with(wh, func(c *SMSConfig) { c.Token = "" }), "--sms-token"},
		{"webhook with a bad URL", with(wh, func(c *SMSConfig) { c.URL = "gw.example.test/sms" }), "--sms-url"},
		{"unknown provider", with(tw, func(c *SMSConfig) { c.Provider = "sns" }), `"sns"`},
		{"no provider", with(tw, func(c *SMSConfig) { c.Provider = "" }), "--sms-provider"},
		{"provider in capitals", with(tw, func(c *SMSConfig) { c.Provider = "Twilio" }), "--sms-provider"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSMSSender(tc.cfg, tpl, nil)
			if err == nil {
				t.Fatalf("NewSMSSender(%+v) = %T, want an error", tc.cfg, s)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %s", err, tc.want)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		s, err := NewSMSSender(tw, tpl, nil)
		if err != nil {
			t.Fatal(err)
		}
		ts, ok := s.(*TwilioSender)
		if !ok {
			t.Fatalf("twilio gives a %T", s)
		}
		if d := ts.Describe(); !strings.Contains(d, DefaultTwilioURL) || !strings.Contains(d, twAccount) || strings.Contains(d, twToken) {
			t.Errorf("Describe() = %q: want the default URL and account, never the token", d)
		}
		if ts.client == nil || ts.client.Timeout <= 0 {
			t.Errorf("a nil client gives %+v, want a client with a timeout", ts.client)
		}

		client := &http.Client{Timeout: time.Second}
		s, err = NewSMSSender(wh, tpl, client)
		if err != nil {
			t.Fatal(err)
		}
		ws, ok := s.(*WebhookSender)
		if !ok {
			t.Fatalf("webhook gives a %T", s)
		}
		if ws.client != client {
			t.Error("the given client is not used")
		}
		if d := ws.Describe(); !strings.Contains(d, wh.URL) || strings.Contains(d, wh.Token) {
			t.Errorf("Describe() = %q: want the URL, never the secret", d)
		}
	})
}

// ---------------------------------------------------------------------------
// Webhook

func TestWebhookSignature(t *testing.T) {
	// Computed independently of WebhookSignature, so that the webhook test
	// below (which verifies with WebhookSignature) rests on a checked
	// function.
	secret := []byte("whsec-test")
	body := []byte(`{"type":"sms"}`)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("dlv_7.1700000000." + string(body)))
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	if got := WebhookSignature(secret, "dlv_7", "1700000000", body); got != want {
		t.Errorf("WebhookSignature = %q, want %q", got, want)
	}
	h := http.Header{}
	SignWebhook(h, secret, "dlv_7", time.Unix(1700000000, 0), body)
	if h.Get("webhook-id") != "dlv_7" || h.Get("webhook-timestamp") != "1700000000" || h.Get("webhook-signature") != "v1,"+want {
		t.Errorf("SignWebhook headers %v", h)
	}
	if WebhookSignature([]byte("other"), "dlv_7", "1700000000", body) == want {
		t.Error("the signature does not depend on the secret")
	}
}

type webhookHit struct {
	id, timestamp string
	payload       WebhookPayload
}

// webhookGateway is the operator's gateway: it verifies each request's
// signature with the shared secret and answers with answer.
func webhookGateway(t *testing.T, secret string, answer http.HandlerFunc) (srv *httptest.Server, hits func() []webhookHit) {
	t.Helper()
	var mu sync.Mutex
	var got []webhookHit
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("method %s, want POST", r.Method)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("body: %v", err)
		}
		id, ts, sig := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), r.Header.Get("webhook-signature")
		if id == "" || ts == "" || sig == "" {
			t.Errorf("missing Standard Webhooks headers: %v", r.Header)
		}
		if _, err := strconv.ParseInt(ts, 10, 64); err != nil {
			t.Errorf("webhook-timestamp %q is not Unix seconds", ts)
		}
		if want := "v1," + WebhookSignature([]byte(secret), id, ts, body); sig != want {
			t.Errorf("webhook-signature %q, want %q", sig, want)
		}
		var p WebhookPayload
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			t.Errorf("body %s: %v", body, err)
		}
		mu.Lock()
		got = append(got, webhookHit{id, ts, p})
		mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []webhookHit { mu.Lock(); defer mu.Unlock(); return append([]webhookHit(nil), got...) }
}

func newWebhook(t *testing.T, url, secret string) *WebhookSender {
	t.Helper()
	s, err := NewSMSSender(SMSConfig{Provider: "webhook", URL: url, Token: secret, From: "Acme"}, builtinTemplates(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*WebhookSender)
}

func TestWebhookSend(t *testing.T) {
	const secret = "wh-signing-secret"
	m := smsMessage("en")

	t.Run("signed payload, stable id", func(t *testing.T) {
		srv, hits := webhookGateway(t, secret, answer(http.StatusOK, ""))
		s := newWebhook(t, srv.URL, secret)
		at := time.Unix(1700000000, 0)
		s.now = func() time.Time { return at }

		id1, err := s.Send(quickCtx(t), m)
		if err != nil {
			t.Fatal(err)
		}
		at = at.Add(90 * time.Second) // a retry, later
		id2, err := s.Send(quickCtx(t), m)
		if err != nil {
			t.Fatal(err)
		}
		other := m
		other.DeliveryID = 43
		id3, err := s.Send(quickCtx(t), other)
		if err != nil {
			t.Fatal(err)
		}
		// An empty answer: the provider id is the webhook id.
		if id1 != "dlv_42" || id2 != "dlv_42" || id3 != "dlv_43" {
			t.Errorf("provider ids %q, %q, %q; want dlv_42, dlv_42, dlv_43", id1, id2, id3)
		}
		got := hits()
		if len(got) != 3 {
			t.Fatalf("the gateway got %d requests, want 3", len(got))
		}
		if got[0].id != "dlv_42" || got[1].id != got[0].id || got[2].id != "dlv_43" {
			t.Errorf("webhook ids %q, %q, %q; want the delivery's, the same on a retry", got[0].id, got[1].id, got[2].id)
		}
		if got[0].timestamp != "1700000000" || got[1].timestamp != "1700000090" {
			t.Errorf("timestamps %q, %q; want the send times", got[0].timestamp, got[1].timestamp)
		}
		p := got[0].payload
		if p.Type != "sms" || p.To != smsTo || p.From != "Acme" {
			t.Errorf("payload %+v", p)
		}
		want := testCorp + ": chat with " + testBot + " here: " + testURL
		if p.Body != want {
			t.Errorf("body %q, want %q", p.Body, want)
		}
	})

	t.Run("gateway id", func(t *testing.T) {
		srv, hits := webhookGateway(t, secret, answer(http.StatusAccepted, `{"id": "gw-1"}`))
		id, err := newWebhook(t, srv.URL, secret).Send(quickCtx(t), m)
		if err != nil || id != "gw-1" {
			t.Errorf("Send = %q, %v; want gw-1, nil", id, err)
		}
		if len(hits()) != 1 {
			t.Errorf("%d requests, want 1", len(hits()))
		}
	})

	t.Run("wrong secret is detected", func(t *testing.T) {
		// The gateway check above can fail: a sender with another secret
		// produces a signature the gateway's recomputation rejects.
		var sig, want string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			sig = r.Header.Get("webhook-signature")
			want = "v1," + WebhookSignature([]byte(secret), r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp"), body)
		}))
		defer srv.Close()
		if _, err := newWebhook(t, srv.URL, "another-secret").Send(quickCtx(t), m); err != nil {
			t.Fatal(err)
		}
		if sig == "" || sig == want {
			t.Errorf("signature %q with the wrong secret matches %q", sig, want)
		}
	})

	// The webhook shares the Twilio sender's classification of answers.
	for _, tc := range []struct {
		name   string
		answer http.HandlerFunc
		check  func(t *testing.T, err error)
	}{
		{"400", answer(http.StatusBadRequest, `{"error": "bad number"}`), func(t *testing.T, err error) { wantPermanent(t, err) }},
		{"502", answer(http.StatusBadGateway, ""), func(t *testing.T, err error) { wantRetryable(t, err) }},
		{"429", answer(http.StatusTooManyRequests, "", "Retry-After", "3"), func(t *testing.T, err error) {
			if d, ok := retryAfterOf(err); !ok || d != 3*time.Second {
				t.Errorf("err %v: RetryAfter %v (%v), want 3s", err, d, ok)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := webhookGateway(t, secret, tc.answer)
			id, err := newWebhook(t, srv.URL, secret).Send(quickCtx(t), m)
			if id != "" {
				t.Errorf("failed send returned id %q", id)
			}
			tc.check(t, err)
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		_, err := newWebhook(t, "http://"+freeAddr(t)+"/sms", secret).Send(quickCtx(t), m)
		wantRetryable(t, err)
	})
}

// ---------------------------------------------------------------------------
// SMTP

// testCert is a self-signed certificate for 127.0.0.1 and a pool trusting it.
var testCert = sync.OnceValues(func() (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imbee test SMTP"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
})

func serverTLS() *tls.Config {
	cert, _ := testCert()
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

func clientTLS() *tls.Config {
	_, pool := testCert()
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

const (
	mailFrom = "links@imbee.test"
	mailTo   = "ana.lopez@example.com"
)

func mailMessage(sender string) Message {
	return Message{
		Recipient:     imbee.Recipient{Channel: imbee.ChannelMail, Address: mailTo},
		URL:           testURL,
		BotName:       testBot,
		CorporateName: testCorp,
		SenderName:    sender,
		Language:      "es",
		DeliveryID:    7,
	}
}

func newSMTP(t *testing.T, cfg SMTPConfig) *SMTPSender {
	t.Helper()
	if cfg.From == "" {
		cfg.From = mailFrom
	}
	s, err := NewSMTPSender(cfg, builtinTemplates(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTPDelivers(t *testing.T) {
	tpl := builtinTemplates(t)
	for _, tc := range []struct {
		name       string
		server     testkit.MailOptions
		cfg        SMTPConfig
		senderName string
		wantFrom   string // the From display name
		wantTLS    bool
	}{
		{
			// "none" never upgrades, even when the server offers STARTTLS.
			name:       "none with AUTH",
			server:     testkit.MailOptions{User: "mailer", Pass: "s3cret", StartTLS: serverTLS()},
			cfg:        SMTPConfig{TLS: "none", User: "mailer", Password: "s3cret"},
			senderName: "Acme Support", wantFrom: "Acme Support",
		},
		{
			name:     "none without AUTH, corporate name as sender",
			server:   testkit.MailOptions{},
			cfg:      SMTPConfig{TLS: "none"},
			wantFrom: testCorp,
		},
		{
			name:       "starttls with AUTH",
			server:     testkit.MailOptions{User: "mailer", Pass: "s3cret", StartTLS: serverTLS()},
			cfg:        SMTPConfig{TLS: "starttls", User: "mailer", Password: "s3cret", TLSConfig: clientTLS()},
			senderName: "Acme Support", wantFrom: "Acme Support", wantTLS: true,
		},
		{
			name:     "default TLS mode is starttls",
			server:   testkit.MailOptions{StartTLS: serverTLS()},
			cfg:      SMTPConfig{TLSConfig: clientTLS()},
			wantFrom: testCorp, wantTLS: true,
		},
		{
			name:       "implicit tls with AUTH",
			server:     testkit.MailOptions{User: "mailer", Pass: "s3cret", ImplicitTLS: serverTLS()},
			cfg:        SMTPConfig{TLS: "tls", User: "mailer", Password: "s3cret", TLSConfig: clientTLS()},
			senderName: "Acme Support", wantFrom: "Acme Support", wantTLS: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			box := testkit.StartMailServer(t, tc.server)
			tc.cfg.Addr = box.Addr
			m := mailMessage(tc.senderName)
			id, err := newSMTP(t, tc.cfg).Send(quickCtx(t), m)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			got := box.Received()
			if len(got) != 1 {
				t.Fatalf("%d mails arrived, want 1", len(got))
			}
			g := got[0]
			if g.TLS != tc.wantTLS {
				t.Errorf("session over TLS = %v, want %v", g.TLS, tc.wantTLS)
			}
			if g.AuthUser != tc.cfg.User {
				t.Errorf("authenticated as %q, want %q", g.AuthUser, tc.cfg.User)
			}
			if g.From != mailFrom || len(g.To) != 1 || g.To[0] != mailTo {
				t.Errorf("envelope %q → %q, want %q → %q", g.From, g.To, mailFrom, mailTo)
			}

			p := g.Parse(t)
			if p.From.Name != tc.wantFrom || p.From.Address != mailFrom {
				t.Errorf("From = %q <%s>, want %q <%s>", p.From.Name, p.From.Address, tc.wantFrom, mailFrom)
			}
			if to := p.Header.Get("To"); !strings.Contains(to, mailTo) {
				t.Errorf("To = %q", to)
			}
			if id == "" || p.Header.Get("Message-ID") != id {
				t.Errorf("provider id %q, Message-ID %q: want equal", id, p.Header.Get("Message-ID"))
			}
			if _, err := p.Header.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
			want, _ := tpl.Render("es", TemplateData{URL: m.URL, BotName: m.BotName, CorporateName: m.CorporateName, SenderName: m.SenderName})
			if p.Subject != want.Subject {
				t.Errorf("Subject = %q, want %q", p.Subject, want.Subject)
			}
			if !strings.Contains(p.Text, testURL) || !strings.Contains(p.Text, "chatear con "+testBot) {
				t.Errorf("text part lacks the link or is not the Spanish text:\n%s", p.Text)
			}
			if !strings.Contains(p.HTML, `href="`+testURL+`"`) {
				t.Errorf("html part lacks the link:\n%s", p.HTML)
			}
			if !strings.Contains(p.Text, "-- \n"+tc.wantFrom) && !strings.Contains(p.Text, "-- \r\n"+tc.wantFrom) {
				t.Errorf("text part not signed by %q:\n%q", tc.wantFrom, p.Text)
			}
		})
	}
}

func TestSMTPFailures(t *testing.T) {
	t.Run("starttls required, server without it", func(t *testing.T) {
		box := testkit.StartMailServer(t, testkit.MailOptions{User: "mailer", Pass: "s3cret"})
		_, err := newSMTP(t, SMTPConfig{Addr: box.Addr, TLS: "starttls", User: "mailer", Password: "s3cret", TLSConfig: clientTLS()}).Send(quickCtx(t), mailMessage(""))
		// Retryable, and that is right: the server did not refuse the
		// message with a 5xx, it lacks a capability we require. That is
		// the operator's configuration or the server's state, not
		// something wrong with this recipient; once fixed (or the server's
		// STARTTLS is back) the delivery goes through, and until then the
		// worker's attempts run out and the delivery dies anyway.
		wantRetryable(t, err)
		if err != nil && !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("error %q does not say STARTTLS is missing", err)
		}
		if n := box.AuthAttempts(); n != 0 {
			t.Errorf("the password was sent in clear text (%d AUTH attempts)", n)
		}
		if n := len(box.Received()); n != 0 {
			t.Errorf("%d mails delivered in clear text", n)
		}
	})

	t.Run("starttls with an untrusted certificate", func(t *testing.T) {
		box := testkit.StartMailServer(t, testkit.MailOptions{StartTLS: serverTLS()})
		// The system roots do not trust the test certificate.
		_, err := newSMTP(t, SMTPConfig{Addr: box.Addr, TLS: "starttls", TLSConfig: &tls.Config{ServerName: "127.0.0.1"}}).Send(quickCtx(t), mailMessage(""))
		wantRetryable(t, err)
		var verr *tls.CertificateVerificationError
		if !errors.As(err, &verr) {
			t.Errorf("err %v, want a certificate verification error", err)
		}
		if n := len(box.Received()); n != 0 {
			t.Errorf("%d mails delivered", n)
		}
	})

	t.Run("550 no such user", func(t *testing.T) {
		box := testkit.StartMailServer(t, testkit.MailOptions{RcptErr: &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}})
		id, err := newSMTP(t, SMTPConfig{Addr: box.Addr, TLS: "none"}).Send(quickCtx(t), mailMessage(""))
		wantPermanent(t, err)
		if id != "" {
			t.Errorf("id %q for a refused mail", id)
		}
		if err != nil && (!strings.Contains(err.Error(), "550") || !strings.Contains(err.Error(), "no such user")) {
			t.Errorf("error %q does not carry the server's answer", err)
		}
		if n := len(box.Received()); n != 0 {
			t.Errorf("%d mails delivered", n)
		}
	})

	t.Run("451 try later", func(t *testing.T) {
		box := testkit.StartMailServer(t, testkit.MailOptions{RcptErr: &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "greylisted"}})
		_, err := newSMTP(t, SMTPConfig{Addr: box.Addr, TLS: "none"}).Send(quickCtx(t), mailMessage(""))
		wantRetryable(t, err)
		if err != nil && !strings.Contains(err.Error(), "451") {
			t.Errorf("error %q does not carry the server's answer", err)
		}
	})

	t.Run("554 after DATA", func(t *testing.T) {
		box := testkit.StartMailServer(t, testkit.MailOptions{DataErr: &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 7, 1}, Message: "rejected as spam"}})
		_, err := newSMTP(t, SMTPConfig{Addr: box.Addr, TLS: "none"}).Send(quickCtx(t), mailMessage(""))
		wantPermanent(t, err)
	})

	t.Run("nothing listening", func(t *testing.T) {
		_, err := newSMTP(t, SMTPConfig{Addr: freeAddr(t), TLS: "none"}).Send(quickCtx(t), mailMessage(""))
		wantRetryable(t, err)
	})

	t.Run("wrong AUTH password", func(t *testing.T) {
		box := testkit.StartMailServer(t, testkit.MailOptions{User: "mailer", Pass: "s3cret"})
		_, err := newSMTP(t, SMTPConfig{Addr: box.Addr, TLS: "none", User: "mailer", Password: "wrong"}).Send(quickCtx(t), mailMessage(""))
		// The server answers 535 5.7.8: a 5xx, permanent like every SMTP
		// 5xx (docs/operations.md, docs/decisions.md); the operator fixes
		// the password and replays the dead deliveries.
		wantPermanent(t, err)
		if err != nil && !strings.Contains(err.Error(), "535") {
			t.Errorf("error %q does not carry the server's answer", err)
		}
		if n := box.AuthAttempts(); n != 1 {
			t.Errorf("%d AUTH attempts, want 1", n)
		}
		if n := len(box.Received()); n != 0 {
			t.Errorf("%d mails delivered", n)
		}
	})
}

// greetingServer is a bare TCP server that answers every connection with
// one SMTP greeting line and closes it.
func greetingServer(t *testing.T, greeting string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, greeting+"\r\n")
			c.Close()
		}
	}()
	return ln.Addr().String()
}

func TestSMTPGreetingRefusal(t *testing.T) {
	// A 4xx greeting (busy) is retried; a 5xx one is permanent like any
	// other SMTP 5xx.
	_, err := newSMTP(t, SMTPConfig{Addr: greetingServer(t, "421 4.3.2 too busy, try later"), TLS: "none"}).Send(quickCtx(t), mailMessage(""))
	wantRetryable(t, err)
	_, err = newSMTP(t, SMTPConfig{Addr: greetingServer(t, "554 5.7.1 no service for you"), TLS: "none"}).Send(quickCtx(t), mailMessage(""))
	wantPermanent(t, err)
	if err != nil && !strings.Contains(err.Error(), "554") {
		t.Errorf("error %q does not carry the greeting", err)
	}
}

func TestNewSMTPSenderValidation(t *testing.T) {
	tpl := builtinTemplates(t)
	ok := SMTPConfig{Addr: "smtp.example.test:587", From: mailFrom, User: "mailer", Password: "s3cret"}
	with := func(f func(*SMTPConfig)) SMTPConfig { c := ok; f(&c); return c }
	for _, tc := range []struct {
		name string
		cfg  SMTPConfig
		want string
	}{
		{"no port", with(func(c *SMTPConfig) { c.Addr = "smtp.example.test" }), "--smtp-addr"},
		{"empty addr", with(func(c *SMTPConfig) { c.Addr = "" }), "--smtp-addr"},
		{"port not a number", with(func(c *SMTPConfig) { c.Addr = "smtp.example.test:smtp" }), "bad port"},
		{"port 0", with(func(c *SMTPConfig) { c.Addr = "smtp.example.test:0" }), "bad port"},
		{"port too large", with(func(c *SMTPConfig) { c.Addr = "smtp.example.test:65536" }), "bad port"},
		{"bad TLS mode", with(func(c *SMTPConfig) { c.TLS = "ssl" }), "--smtp-tls"},
		{"TLS mode in capitals", with(func(c *SMTPConfig) { c.TLS = "STARTTLS" }), "--smtp-tls"},
		{"no From", with(func(c *SMTPConfig) { c.From = "" }), "--mail-from"},
		{"bad From", with(func(c *SMTPConfig) { c.From = "not an address" }), "--mail-from"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := NewSMTPSender(tc.cfg, tpl)
			if err == nil {
				t.Fatalf("NewSMTPSender(%+v) = %v, want an error", tc.cfg, s)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		for _, addr := range []string{"smtp.example.test:1", "smtp.example.test:65535", "[::1]:25"} {
			if _, err := NewSMTPSender(with(func(c *SMTPConfig) { c.Addr = addr }), tpl); err != nil {
				t.Errorf("NewSMTPSender(%s): %v", addr, err)
			}
		}
		s, err := NewSMTPSender(ok, tpl)
		if err != nil {
			t.Fatal(err)
		}
		d := s.Describe()
		for _, want := range []string{ok.Addr, "starttls", "AUTH as mailer", mailFrom} {
			if !strings.Contains(d, want) {
				t.Errorf("Describe() = %q, want it to say %q", d, want)
			}
		}
		if strings.Contains(d, ok.Password) {
			t.Errorf("Describe() = %q shows the password", d)
		}
	})
}

// TestSMTPStallEndsWithContext: a mail server that stalls (never greets, or
// never answers the end of the data) holds a send no longer than its
// context. The worker's lease is twice its deadline: a send that outlived
// it would still be waiting while another server claims the delivery and
// sends it again.
func TestSMTPStallEndsWithContext(t *testing.T) {
	silent := func(t *testing.T) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var conns []net.Conn // held open, unanswered, until the test ends
		accepted := make(chan struct{})
		go func() {
			defer close(accepted)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				conns = append(conns, c)
			}
		}()
		t.Cleanup(func() {
			ln.Close()
			<-accepted
			for _, c := range conns {
				c.Close()
			}
		})
		return ln.Addr().String()
	}
	holding := func(t *testing.T) string {
		release := make(chan struct{})
		box := testkit.StartMailServer(t, testkit.MailOptions{Hold: func(func()) { <-release }})
		t.Cleanup(func() { close(release) })
		return box.Addr
	}
	for name, addr := range map[string]func(*testing.T) string{"never greets": silent, "never answers the data": holding} {
		t.Run(name, func(t *testing.T) {
			s := newSMTP(t, SMTPConfig{Addr: addr(t), TLS: "none"})
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := s.Send(ctx, mailMessage(""))
				done <- err
			}()
			select {
			case err := <-done:
				wantRetryable(t, err)
				if r := Reason(err); r != "timed out" {
					t.Errorf("reason %q, want timed out: %v", r, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the send outlived its context by 10 s")
			}
		})
	}
}

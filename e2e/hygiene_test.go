package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// TestSecretHygiene runs imbee end to end with real transports (an SMTP
// server with AUTH, a Twilio-protocol SMS provider, a bot's webhook, a
// browser with the session cookie), collects every secret that went by, and
// after the server stops looks for each (as text and in its raw, hex and
// base64 forms) in the server's stdout and log, in every file of the SQLite
// database's directory (while running and after the stop), or in a pg_dump
// of the PostgreSQL database. Only the demo credentials, which the first
// start prints on stdout on purpose, may appear, there and only there.
func TestSecretHygiene(t *testing.T) { testkit.ForEachBackend(t, testSecretHygiene) }

// secretForms are the ways a secret could be written down: as given, the
// body without its prefix, and its raw bytes (when it is an encoding of
// them) as bytes, hex and the other base64 alphabets.
func secretForms(v string) map[string][]byte {
	forms := map[string][]byte{"text": []byte(v)}
	if q := url.QueryEscape(v); q != v {
		forms["url-escaped"] = []byte(q)
	}
	if j, _ := json.Marshal(v); string(j[1:len(j)-1]) != v {
		forms["json-escaped"] = j[1 : len(j)-1]
	}
	var raw []byte
	for _, p := range []string{"imba_", "imbc_", "imbp_", "imbk_", "imbl_", "imbs_", "whsec_"} {
		body, ok := strings.CutPrefix(v, p)
		if !ok {
			continue
		}
		forms["without prefix"] = []byte(body)
		var err error
		if p == "whsec_" {
			raw, err = base64.StdEncoding.DecodeString(body)
		} else {
			raw, err = base64.RawURLEncoding.DecodeString(body)
		}
		if err != nil {
			raw = nil
		}
	}
	if raw == nil { // the server key file: standard base64 of the key
		if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); err == nil && len(b) >= 16 {
			raw = b
		}
	}
	if raw != nil {
		forms["raw bytes"] = raw
		forms["hex"] = []byte(hex.EncodeToString(raw))
		forms["HEX"] = []byte(strings.ToUpper(hex.EncodeToString(raw)))
		forms["base64"] = []byte(base64.StdEncoding.EncodeToString(raw))
		forms["base64 unpadded"] = []byte(base64.RawStdEncoding.EncodeToString(raw))
		forms["base64url"] = []byte(base64.RawURLEncoding.EncodeToString(raw))
	}
	return forms
}

// pgDumpBinary is pg_dump next to the initdb that internal/pgtest uses, so
// that its version is the server's.
func pgDumpBinary(t testing.TB) string {
	t.Helper()
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		dirs = append(dirs, filepath.Dir(p))
	}
	glob, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(glob, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(glob[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(glob[j])))
		return vi > vj
	})
	for _, d := range append(dirs, glob...) {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			continue
		}
		if p := filepath.Join(d, "pg_dump"); fileExists(p) {
			return p
		}
	}
	t.Fatal("no pg_dump next to an installed initdb")
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// dirFiles reads every regular file of dir.
func dirFiles(t testing.TB, dir, label string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[label+e.Name()] = b
	}
	return out
}

func testSecretHygiene(t *testing.T) {
	start := time.Now()
	secrets := map[string]string{} // what → secret
	add := func(what, v string) {
		t.Helper()
		if len(v) < 24 {
			t.Fatalf("%s %q is too short to be a secret", what, v)
		}
		secrets[what] = v
	}

	// Real transports, with secrets of their own.
	smtpUser, smtpPass := "imbee-mailer", unissuedSecret("smtp-")
	box := newMailbox(t, smtpUser, smtpPass)
	box.Up()
	sms := newSMSProvider(t)
	smsToken := unissuedSecret("twilio-")
	sms.mu.Lock()
	sms.token = smsToken
	sms.mu.Unlock()
	add("SMTP password", smtpPass)
	add("SMS token", smsToken)
	secrets["SMTP AUTH PLAIN"] = base64.StdEncoding.EncodeToString([]byte("\x00" + smtpUser + "\x00" + smtpPass))
	secrets["SMS basic auth"] = base64.StdEncoding.EncodeToString([]byte(sms.account + ":" + smsToken))
	hook := newHookReceiver(t)

	// The SQLite database gets a directory of its own (the key file stays
	// apart), so that every file there is the database's.
	d := newDB(t)
	dbDir := ""
	if !d.postgres() {
		dbDir = t.TempDir()
		d.db = "sqlite:" + filepath.Join(dbDir, "imbee.db")
	}
	args := append(append(append([]string{}, box.flags()...), sms.flags()...), fastWebhooks...)
	args = append(args, "--log-level", "debug")
	s := startServerOn(t, d, args...)
	keyFile, err := os.ReadFile(d.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	add("server key file", strings.TrimSpace(string(keyFile)))

	demo := s.demo()
	add("demo Authorization", demo.auth)
	add("demo corporate token", demo.token)
	c := s.newCorporate(t, "Hygiene Clinic")
	add("Authorization", c.auth)
	add("corporate token", c.token)

	// Users, on both corporates; repeats go through the short path.
	ana, bea := s.newUser(t, c, "ana"), s.newUser(t, c, "bea")
	demoUser := s.newUser(t, demo, "demo_user")
	for what, u := range map[string]user{"ana": ana, "bea": bea, "demo user": demoUser} {
		add(what+"'s pass", u.pass)
		add(what+"'s apikey", u.apikey)
	}
	again := s.post(t, "/third_parties/user/new", c.auth, c.token, map[string]string{"uniqueIdSha": "ana", "platform": "ios", "deviceName": "Ana's phone"})
	expect(t, again, 200, 0)
	if again.str("apikey") != ana.apikey {
		t.Fatal("a repeat returned another apikey")
	}
	// Answers kept for Idempotency-Key replays hold credentials too, and
	// bulk creation hands out many at once.
	e := s.keyed(t, "/third_parties/user/new", c.auth, c.token, "hygiene-user", map[string]string{"uniqueIdSha": "cleo"})
	expect(t, e, 200, 0)
	add("cleo's pass (keyed)", e.str("pass"))
	add("cleo's apikey (keyed)", e.str("apikey"))
	e = s.post(t, "/third_parties/user/bulk", c.auth, c.token, map[string]any{"users": []map[string]string{{"uniqueIdSha": "dan"}, {"uniqueIdSha": "eve"}}})
	expect(t, e, 200, 0)
	for i, r := range e.Body["results"].([]any) {
		add(fmt.Sprintf("bulk user %d's pass", i), r.(map[string]any)["pass"].(string))
		add(fmt.Sprintf("bulk user %d's apikey", i), r.(map[string]any)["apikey"].(string))
	}

	// A chat, messages, reads, a socket.
	e = s.post(t, "/chat/create", c.auth, ana.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"idsha": bea.idsha}}})
	expect(t, e, 200, 0)
	conv := e.str("conversationId")
	sock := dialSocket(t, s, "Bearer "+c.auth, bea.apikey, conv, 0)
	if f := sock.next(t, 5*time.Second); f.Type != "ready" {
		t.Fatalf("socket: first frame %+v", f)
	}
	expect(t, s.post(t, "/chat/message/send", c.auth, ana.apikey, map[string]any{"conversationId": conv, "text": "hola bea", "clientMsgId": "h1"}), 200, 0)
	if f := sock.next(t, 5*time.Second); f.Type != "message" {
		t.Fatalf("socket: %+v", f)
	}
	expect(t, s.post(t, "/chat/message/list", c.auth, bea.apikey, map[string]any{"conversationId": conv}), 200, 0)
	expect(t, s.post(t, "/chat/read", c.auth, bea.apikey, map[string]any{"conversationId": conv, "seq": 1}), 200, 0)
	expect(t, s.post(t, "/chat/list", c.auth, bea.apikey, map[string]any{}), 200, 0)

	// The bot's webhook, and a conversation with the bot.
	e = s.post(t, "/bot/webhook", c.auth, c.token, map[string]string{"bot_idsha": c.bot, "url": hook.URL + "/hook"})
	expect(t, e, 200, 0)
	add("webhook secret", e.str("secret"))
	hook.setSecret(e.str("secret"))
	e = s.post(t, "/chat/create", c.auth, ana.apikey, map[string]any{"type": "chat", "contacts": []any{map[string]string{"bot_idsha": c.bot}}})
	expect(t, e, 200, 0)
	botConv := e.str("conversationId")
	e = s.post(t, "/chat/message/send", c.auth, ana.apikey, map[string]any{"conversationId": botConv, "text": "hello bot", "clientMsgId": "b1"})
	expect(t, e, 200, 0)
	hookID := fmt.Sprintf("msg_%s_%d", botConv, num(e.Body["message"].(map[string]any)["seq"]))
	checkHits(t, hook.waitAccepted(t, []string{hookID}, 10*time.Second))
	expect(t, s.post(t, "/bot/message/send", c.auth, c.token, map[string]any{"bot_idsha": c.bot, "conversationId": botConv, "text": "hello ana", "clientMsgId": hookID}), 200, 0)

	// A link by mail and SMS; the one that is spent is taken from the mail.
	e = s.keyed(t, "/token/new", c.auth, c.token, "hygiene-link", map[string]any{"virtual_user": "ana", "bot_idsha": c.bot, "mail": "ana@example.com", "celullar": "+34 612 34 56 78"})
	expect(t, e, 200, 0)
	link := e.str("url")
	mailed := linkInText.FindString(box.WaitFor(t, 1, 10*time.Second)[0].Parse(t).Text)
	if mailed != link {
		t.Fatalf("link in the mail %q, want %q", mailed, link)
	}
	add("link token (mail)", mailed[strings.LastIndex(mailed, "/")+1:])
	s.waitDelivery(t, c, link, "mail", "sent", 10*time.Second)
	s.waitDelivery(t, c, link, "sms", "sent", 10*time.Second)
	if accepted, _, bad := sms.sent(); len(accepted) != 1 || !strings.Contains(accepted[0].Get("Body"), link) || len(bad) > 0 {
		t.Fatalf("SMS: accepted %v, malformed %v", accepted, bad)
	}
	// A second link, by mail, which is revoked.
	e = s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "bea", "bot_idsha": c.bot, "mail": "bea@example.com"})
	expect(t, e, 200, 0)
	link2 := linkInText.FindString(box.WaitFor(t, 2, 10*time.Second)[1].Parse(t).Text)
	if link2 != e.str("url") {
		t.Fatalf("second mail's link %q, want %q", link2, e.str("url"))
	}
	add("link token (revoked)", link2[strings.LastIndex(link2, "/")+1:])
	s.waitDelivery(t, c, link2, "mail", "sent", 10*time.Second)
	expect(t, s.post(t, "/token/revoke", c.auth, c.token, map[string]string{"url": link2}), 200, 0)

	// A person opens the mailed link, spends it and chats with the cookie.
	b := browser(t)
	if code, _, _ := page(t, b, "GET", mailed); code != 200 {
		t.Fatalf("landing: %d", code)
	}
	code, _, resp := page(t, b, "POST", mailed)
	if code != http.StatusSeeOther {
		t.Fatalf("spend: %d", code)
	}
	session := ""
	for _, ck := range resp.Cookies() {
		if ck.Name == "imbee_session" {
			session = ck.Value
		}
	}
	add("session cookie", session)
	chatURL := s.URL + resp.Header.Get("Location")
	if code, _, _ := page(t, b, "GET", chatURL); code != 200 {
		t.Fatalf("chat page: %d", code)
	}
	req, _ := http.NewRequest("POST", chatURL+"/messages", strings.NewReader(`{"text":"from the web","clientMsgId":"w1"}`))
	req.Header.Set("Content-Type", "application/json")
	if r, err := b.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("web send: %v %v", r, err)
	} else {
		r.Body.Close()
	}
	if code, _, _ := page(t, b, "GET", chatURL+"/messages"); code != 200 {
		t.Fatalf("web history: %d", code)
	}

	// Rotation: the old credentials are refused, the new ones work.
	old := c
	c = s.rotateCorporate(t, c)
	add("rotated Authorization", c.auth)
	add("rotated corporate token", c.token)
	expect(t, s.post(t, "/token/status", old.auth, old.token, map[string]string{"url": link}), 401, 2)
	expect(t, s.post(t, "/token/status", c.auth, c.token, map[string]string{"url": link}), 200, 0)
	expect(t, s.post(t, "/chat/message/send", "Bearer "+c.auth, ana.apikey, map[string]any{"conversationId": conv, "text": "after rotation", "clientMsgId": "h2"}), 200, 0)
	hits := hook.got()
	checkHits(t, hits)

	// Everything the database holds, while the server runs and after.
	sources := map[string][]byte{}
	if dbDir != "" {
		for k, v := range dirFiles(t, dbDir, "running: ") {
			sources[k] = v
		}
	}
	if err := s.stop(); err != nil {
		t.Fatalf("server stop: %v", err)
	}
	if dbDir != "" {
		files := dirFiles(t, dbDir, "stopped: ")
		if len(files) == 0 {
			t.Fatal("no database file found")
		}
		for k, v := range files {
			sources[k] = v
		}
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, pgDumpBinary(t), "--no-owner", "--dbname", s.db).Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("pg_dump: %v: %s", err, stderr)
		}
		sources["pg_dump"] = out
		for k, v := range s.storedData(t) {
			sources["rows of "+k] = v
		}
	}

	// Controls: the scans find what is there. The database holds ana's
	// public id and the hash of the corporate's X-WOOS-KEY (raw in
	// SQLite's files, hex in pg_dump); the stdout holds the demo
	// credentials.
	tokenHash := sha256.Sum256([]byte(c.token))
	foundID, foundHash := false, false
	for _, v := range sources {
		foundID = foundID || bytes.Contains(v, []byte(ana.idsha))
		foundHash = foundHash || bytes.Contains(v, tokenHash[:]) || bytes.Contains(v, []byte(hex.EncodeToString(tokenHash[:])))
	}
	if !foundID || !foundHash {
		t.Errorf("the database scan found not even a public id (%v) or a stored hash (%v): it cannot be trusted", foundID, foundHash)
	}
	stdout, logs := s.stdout.String(), s.logs.String()
	if !strings.Contains(logs, "/token/new") {
		t.Errorf("the log does not even name the routes called: it cannot be trusted:\n%s", logs)
	}

	// The bootstrap's lines, exactly, are the only place for the demo
	// credentials: they are taken out before the scan.
	bootstrapLines := []string{
		"  Authorization: " + demo.auth,
		"  X-WOOS-KEY:    " + demo.token,
		"  curl ",
	}
	var kept []string
	for line := range strings.SplitSeq(stdout, "\n") {
		matched := false
		for i, bl := range bootstrapLines {
			if bl == "" {
				continue
			}
			if line == bl || (bl == "  curl " && strings.HasPrefix(line, bl) && strings.Contains(line, "'Authorization: "+demo.auth+"'") && strings.Contains(line, "'X-WOOS-KEY: "+demo.token+"'")) {
				bootstrapLines[i], matched = "", true
				break
			}
		}
		if !matched {
			kept = append(kept, line)
		}
	}
	for _, bl := range bootstrapLines {
		if bl != "" {
			t.Errorf("stdout lacks the bootstrap line %q: the exclusion is not exact:\n%s", bl, stdout)
		}
	}
	sources["stdout (the bootstrap's lines left out)"] = []byte(strings.Join(kept, "\n"))
	sources["log (stderr)"] = []byte(logs)

	checked := 0
	for what, v := range secrets {
		for form, f := range secretForms(v) {
			for where, data := range sources {
				checked++
				if bytes.Contains(data, f) {
					i := bytes.Index(data, f)
					lo, hi := max(0, i-80), min(len(data), i+len(f)+80)
					t.Errorf("%s (%s) is in %s: …%q…", what, form, where, data[lo:hi])
				}
			}
		}
	}
	t.Logf("%d secrets × forms × %d places checked (%d checks); %d webhook requests; %v", len(secrets), len(sources), checked, len(hits), time.Since(start).Round(time.Millisecond))
}

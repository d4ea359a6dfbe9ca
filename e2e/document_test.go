package e2e

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/testkit"
)

// The three requests of the original API document, headers and bodies
// verbatim; only myAuth, myCorporateToken and HOST are replaced.
const (
	docUserNew   = `{"uniqueIdSha":"user_identifier_sha", "platform": "platformValue","deviceName": "deviceNameValue","hardwareId":"hardwareIdValue","osVersion":"osVersionValue"}`
	docTokenNew  = `{"virtual_user":"user_identifier_sha", "bot_idsha":"bot_identifier", "mail":"user_email", "celullar":"user_phone", "max_retries": 10, "date_limit": "2018-12-31"}`
	docChatNew   = `{"type":"chat", "contacts":[{"idsha":"idShaValue_user2"}]}`
	docUserAgent = "curl/8.0"
)

func docHeaders(auth, key string) map[string]string {
	return map[string]string{
		"Authorization": auth,
		"Content-Type":  "application/json",
		"X-WOOS-KEY":    key,
		"User-Agent":    docUserAgent,
	}
}

func TestDocument(t *testing.T) { testkit.ForEachBackend(t, testDocument) }

func testDocument(t *testing.T) {
	s := startServer(t)
	c := s.demo()

	t.Run("CreateExternalUser", func(t *testing.T) {
		e := s.call(t, "POST", "/third_parties/user/new", docHeaders(c.auth, c.token), docUserNew)
		expect(t, e, 200, 0)
		if e.Message != "Ok" {
			t.Errorf("message %q, want Ok", e.Message)
		}
		for _, k := range []string{"virtualUser", "pass", "apikey"} {
			if e.str(k) == "" {
				t.Errorf("body has no %s: %s", k, e.Raw)
			}
		}
		if e.Body["previously_registered"] != false {
			t.Errorf("previously_registered = %v, want false", e.Body["previously_registered"])
		}
		again := s.call(t, "POST", "/third_parties/user/new", docHeaders(c.auth, c.token), docUserNew)
		expect(t, again, 200, 0)
		if again.Body["previously_registered"] != true {
			t.Errorf("repeat: previously_registered = %v, want true", again.Body["previously_registered"])
		}
		for _, k := range []string{"virtualUser", "pass", "apikey"} {
			if again.str(k) != e.str(k) {
				t.Errorf("repeat changed %s", k)
			}
		}
	})

	t.Run("GenerateAccessToken", func(t *testing.T) {
		// Verbatim: its placeholders are not a valid mail nor phone, and its
		// 2018 date_limit is in the past. Refused, with the first bad field.
		e := s.call(t, "POST", "/token/new", docHeaders(c.auth, c.token), docTokenNew)
		expect(t, e, 400, 6)
		if e.Body["field"] != "mail" {
			t.Errorf("field = %v, want mail", e.Body["field"])
		}
		// With real values for the placeholders, only the 2018 date is wrong.
		body := strings.NewReplacer("bot_identifier", c.bot, "user_email", "ana@example.com", "user_phone", "+34600111222").Replace(docTokenNew)
		e = s.call(t, "POST", "/token/new", docHeaders(c.auth, c.token), body)
		expect(t, e, 400, 6)
		if e.Body["field"] != "date_limit" || !strings.Contains(e.Message, "past") {
			t.Errorf("got %s, want date_limit in the past", e.Raw)
		}
		// With a date in the future, it works and echoes the limits.
		future := time.Now().UTC().AddDate(0, 1, 0).Format(time.DateOnly)
		e = s.call(t, "POST", "/token/new", docHeaders(c.auth, c.token), strings.Replace(body, "2018-12-31", future, 1))
		expect(t, e, 200, 0)
		if !strings.HasPrefix(e.str("url"), s.URL+"/l/") || e.str("user_idsha") == "" ||
			e.str("date_limit") != future || e.Body["max_retries"] != 10.0 || e.Body["previously_created"] != false {
			t.Errorf("unexpected body: %s", e.Raw)
		}
		// "If no date_limit or max_retries", the defaults apply.
		e = s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "someone_else", "bot_idsha": c.bot, "mail": "bo@example.com"})
		expect(t, e, 200, 0)
		wantDate := time.Now().UTC().AddDate(0, 0, 30).Format(time.DateOnly)
		if e.str("date_limit") != wantDate || e.Body["max_retries"] != 10.0 {
			t.Errorf("defaults: got %s, want date_limit %s and max_retries 10", e.Raw, wantDate)
		}
		// The document's own spelling of the user field is accepted too.
		e = s.post(t, "/token/new", c.auth, c.token, map[string]any{"virutal_user": "typo_user", "bot_idsha": c.bot, "celullar": "0034 612 34 56 78"})
		expect(t, e, 200, 0)
	})

	t.Run("CreateChatBetweenUsers", func(t *testing.T) {
		// Verbatim, the apikey is the document's placeholder: refused.
		e := s.call(t, "POST", "/chat/create", docHeaders(c.auth, "apikey_user1"), docChatNew)
		expect(t, e, 401, 3)
		u1 := s.newUser(t, c, "doc_user1")
		u2 := s.newUser(t, c, "doc_user2")
		e = s.call(t, "POST", "/chat/create", docHeaders(c.auth, u1.apikey), strings.Replace(docChatNew, "idShaValue_user2", u2.idsha, 1))
		expect(t, e, 200, 0)
		contacts, _ := e.Body["contacts"].([]any)
		if len(contacts) != 2 {
			t.Fatalf("contacts: %s", e.Raw)
		}
		first, _ := contacts[0].(map[string]any)
		second, _ := contacts[1].(map[string]any)
		if first["idsha"] != u1.idsha || first["isadmin"] != 1.0 || second["idsha"] != u2.idsha || second["isadmin"] != 0.0 {
			t.Errorf("contacts should be creator (admin) then contact: %s", e.Raw)
		}
		if e.str("conversationId") == "" || e.Body["previously_created"] != false {
			t.Errorf("unexpected body: %s", e.Raw)
		}
	})
}

// TestDocumentCurl runs the document's curl lines themselves, when curl is
// installed, to prove that the requests work exactly as written.
func TestDocumentCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	s := startServer(t)
	c := s.demo()
	out, err := exec.Command("curl", "--silent", "--request", "POST", "--url", s.URL+"/third_parties/user/new",
		"--header", "Authorization: "+c.auth, "--header", "Content-Type: application/json",
		"--header", "X-WOOS-KEY: "+c.token, "--data", docUserNew).Output()
	if err != nil {
		t.Fatal(err)
	}
	if !envelopeShape.Match(out) || !strings.Contains(string(out), `"code":0`) {
		t.Fatalf("curl got %s", out)
	}
}

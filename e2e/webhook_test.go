package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/delivery"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/testkit"
)

// fastWebhooks are serve flags for quick retries.
var fastWebhooks = []string{"--delivery-first-retry", "200ms", "--delivery-max-retry", "1s"}

// hookHit is one request a bot's webhook received.
type hookHit struct {
	at      time.Time
	id, ts  string
	body    []byte
	status  int    // what the receiver answered
	problem string // what was wrong with the request; "" if nothing
	event   struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Data      struct {
			ConversationID string `json:"conversationId"`
			Seq            int64  `json:"seq"`
			Sender         string `json:"sender"`
			SenderIsBot    bool   `json:"sender_is_bot"`
			Text           string `json:"text"`
			CreatedAt      string `json:"created_at"`
		} `json:"data"`
	}
}

// hookAnswer is how the receiver answers a request: the status and, if
// set, a Retry-After.
type hookAnswer struct {
	status     int
	retryAfter string
}

// hookReceiver is a bot's webhook endpoint: it checks each request's
// signature (with the secret /bot/webhook gave) and timestamps, records it,
// and answers what answer says.
type hookReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	secret string
	old    []string // earlier secrets, which must no longer sign
	answer func(h *hookHit, triesOfID int) hookAnswer
	hits   []*hookHit
}

func newHookReceiver(t testing.TB) *hookReceiver {
	r := &hookReceiver{answer: func(*hookHit, int) hookAnswer { return hookAnswer{status: 200} }}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *hookReceiver) setSecret(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secret != "" {
		r.old = append(r.old, r.secret)
	}
	r.secret = s
}

func (r *hookReceiver) setAnswer(f func(h *hookHit, triesOfID int) hookAnswer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	h := &hookHit{at: time.Now(), id: req.Header.Get("webhook-id"), ts: req.Header.Get("webhook-timestamp")}
	h.body, _ = io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	var problems []string
	if req.Method != "POST" || req.URL.Path != "/hook" || req.Header.Get("Content-Type") != "application/json" {
		problems = append(problems, fmt.Sprintf("%s %s Content-Type %q", req.Method, req.URL.Path, req.Header.Get("Content-Type")))
	}
	if ts, err := strconv.ParseInt(h.ts, 10, 64); err != nil {
		problems = append(problems, fmt.Sprintf("webhook-timestamp %q", h.ts))
	} else if d := h.at.Sub(time.Unix(ts, 0)); d < -2*time.Second || d > 5*time.Second {
		problems = append(problems, fmt.Sprintf("webhook-timestamp %s is %v away from now", h.ts, d))
	}
	// Standard Webhooks: "v1,<base64>", possibly several, space-separated.
	sigs := strings.Fields(req.Header.Get("webhook-signature"))
	signedBy := func(s string) bool {
		want := "v1," + delivery.WebhookSignature(secret.WebhookKey(s), h.id, h.ts, h.body)
		return slices.Contains(sigs, want)
	}
	if r.secret == "" || !signedBy(r.secret) {
		problems = append(problems, fmt.Sprintf("bad signature %q", req.Header.Get("webhook-signature")))
	}
	for _, old := range r.old {
		if signedBy(old) {
			problems = append(problems, "signed with a replaced secret")
		}
	}
	if err := json.Unmarshal(h.body, &h.event); err != nil {
		problems = append(problems, fmt.Sprintf("body %q: %v", h.body, err))
	} else {
		e := h.event
		if want := fmt.Sprintf("msg_%s_%d", e.Data.ConversationID, e.Data.Seq); h.id != want {
			problems = append(problems, fmt.Sprintf("webhook-id %q, want %q", h.id, want))
		}
		created, err := time.Parse(time.RFC3339, e.Data.CreatedAt)
		if e.Type != "message.created" || err != nil || e.Timestamp != e.Data.CreatedAt || time.Since(created) > time.Minute || time.Until(created) > time.Second {
			problems = append(problems, fmt.Sprintf("event type %q timestamp %q created_at %q", e.Type, e.Timestamp, e.Data.CreatedAt))
		}
	}
	h.problem = strings.Join(problems, "; ")
	tries := 1
	for _, prev := range r.hits {
		if prev.id == h.id {
			tries++
		}
	}
	a := r.answer(h, tries)
	h.status = a.status
	r.hits = append(r.hits, h)
	if a.retryAfter != "" {
		w.Header().Set("Retry-After", a.retryAfter)
	}
	w.WriteHeader(a.status)
}

// got returns the requests so far.
func (r *hookReceiver) got() []hookHit {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]hookHit, len(r.hits))
	for i, h := range r.hits {
		out[i] = *h
	}
	return out
}

// accepted returns the requests answered 2xx, by webhook-id.
func accepted(hits []hookHit) map[string][]hookHit {
	out := map[string][]hookHit{}
	for _, h := range hits {
		if h.status >= 200 && h.status < 300 {
			out[h.id] = append(out[h.id], h)
		}
	}
	return out
}

// waitAccepted waits until every id in ids has been accepted and returns
// all the requests.
func (r *hookReceiver) waitAccepted(t testing.TB, ids []string, within time.Duration) []hookHit {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		hits := r.got()
		acc := accepted(hits)
		missing := []string{}
		for _, id := range ids {
			if len(acc[id]) == 0 {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return hits
		}
		if time.Now().After(deadline) {
			t.Fatalf("not accepted within %v: %v; requests: %s", within, missing, describeHits(hits))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func describeHits(hits []hookHit) string {
	var b strings.Builder
	for _, h := range hits {
		fmt.Fprintf(&b, "\n  %s %s → %d %s", h.at.Format("15:04:05.000"), h.id, h.status, h.problem)
	}
	return b.String()
}

// checkHits fails on any request that was malformed or badly signed.
func checkHits(t testing.TB, hits []hookHit) {
	t.Helper()
	for _, h := range hits {
		if h.problem != "" {
			t.Errorf("webhook request %s: %s", h.id, h.problem)
		}
	}
}

// botChat is the demo corporate's bot with a webhook on a receiver, a user,
// and their 1:1 conversation.
type botChat struct {
	c      corporate
	u      user
	conv   string
	recv   *hookReceiver
	secret string
}

func newBotChat(t testing.TB, s *server) botChat {
	t.Helper()
	b := botChat{c: s.demo(), recv: newHookReceiver(t)}
	hook, err := s.client(t, b.c).SetBotWebhook(t.Context(), client.SetBotWebhookRequest{BotIDSha: b.c.bot, URL: b.recv.URL + "/hook"})
	if err != nil {
		t.Fatalf("/bot/webhook: %v", err)
	}
	b.secret = hook.Secret
	if b.secret == "" || hook.BotIDSha != b.c.bot || hook.URL != b.recv.URL+"/hook" {
		t.Fatalf("/bot/webhook = %+v", hook)
	}
	b.recv.setSecret(b.secret)
	b.u = s.newUser(t, b.c, "ana")
	b.conv = s.createChat(t, b.c, b.u, client.Contact{IDSha: b.c.bot})
	return b
}

// say sends the user's message and returns its webhook-id.
func (b botChat) say(t testing.TB, s *server, text string) string {
	t.Helper()
	r, err := s.client(t, b.c).AsUser(b.u.apikey).SendMessage(t.Context(), client.SendMessageRequest{ConversationID: b.conv, Text: text, ClientMsgID: text})
	if err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
	return fmt.Sprintf("msg_%s_%d", b.conv, r.Message.Seq)
}

// webhookRows is `imbee webhooks list --json`, optionally of one status.
func webhookRows(t testing.TB, s *server, status string) []map[string]any {
	t.Helper()
	args := []string{"webhooks", "list", "--json", "--limit", "1000"}
	if status != "" {
		args = append(args, "--status", status)
	}
	out, err := s.imbee(args...)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("webhooks list --json: %v: %s", err, out)
	}
	return rows
}

func rowIDs(rows []map[string]any) []string {
	var ids []string
	for _, r := range rows {
		id, _ := r["event_id"].(string)
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// waitRows waits until the ledger holds exactly ids (sorted) with status.
func waitRows(t testing.TB, s *server, status string, ids []string, within time.Duration) []map[string]any {
	t.Helper()
	want := slices.Sorted(slices.Values(ids))
	deadline := time.Now().Add(within)
	for {
		rows := webhookRows(t, s, status)
		if slices.Equal(rowIDs(rows), want) {
			return rows
		}
		if time.Now().After(deadline) {
			var all []string
			for _, r := range webhookRows(t, s, "") {
				all = append(all, fmt.Sprintf("%v %v after %v attempts", r["event_id"], r["status"], r["attempts"]))
			}
			t.Fatalf("webhook ledger with status %q: %v, want %v; all rows: %v", status, rowIDs(rows), want, all)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBotWebhook: a user's message to a bot is POSTed, signed, to the bot's
// webhook; the bot's answer reaches the user's socket and not the bot's own
// webhook; the answer's clientMsgId makes a retry harmless; other
// corporates' bots and bad URLs are refused.
func TestBotWebhook(t *testing.T) { testkit.ForEachBackend(t, testBotWebhook) }

func testBotWebhook(t *testing.T) {
	t.Parallel()
	s := startServer(t, fastWebhooks...)
	b := newBotChat(t, s)
	c := b.c
	sock := dialSocket(t, s, c.auth, b.u.apikey, b.conv, 0)
	if fr := mustReadLive(t, sock, 5*time.Second); fr.Type != "ready" {
		t.Fatalf("first frame %+v", fr)
	}

	id1 := b.say(t, s, "hola bot")
	if want := "msg_" + b.conv + "_1"; id1 != want {
		t.Fatalf("first message's id %q, want %q", id1, want)
	}
	hits := b.recv.waitAccepted(t, []string{id1}, 10*time.Second)
	checkHits(t, hits)
	if len(hits) != 1 {
		t.Fatalf("%d requests for one message: %s", len(hits), describeHits(hits))
	}
	ev := hits[0].event
	if ev.Type != "message.created" || ev.Data.ConversationID != b.conv || ev.Data.Seq != 1 || ev.Data.Sender != b.u.idsha ||
		ev.Data.SenderIsBot || ev.Data.Text != "hola bot" {
		t.Errorf("event = %s", hits[0].body)
	}
	if fr := mustReadLive(t, sock, 5*time.Second); fr.Type != "message" || fr.Message.Seq != 1 {
		t.Fatalf("the user's own message on the socket: %+v", fr)
	}

	// The bot answers, with the webhook-id as its clientMsgId.
	reply := map[string]any{"bot_idsha": c.bot, "conversationId": b.conv, "text": "hola humano", "clientMsgId": id1}
	e := s.post(t, "/bot/message/send", c.auth, c.token, reply)
	expect(t, e, 200, 0)
	m, _ := e.Body["message"].(map[string]any)
	if m["seq"] != 2.0 || m["sender"] != c.bot || m["sender_is_bot"] != true || m["text"] != "hola humano" || e.Body["previously_sent"] != false {
		t.Fatalf("/bot/message/send = %s", e.Raw)
	}
	fr := mustReadLive(t, sock, 5*time.Second)
	if fr.Type != "message" || fr.Message.Seq != 2 || fr.Message.Sender != c.bot || !fr.Message.SenderIsBot || fr.Message.Text != "hola humano" {
		t.Fatalf("the bot's answer on the user's socket: %+v", fr)
	}
	again := s.post(t, "/bot/message/send", c.auth, c.token, reply)
	expect(t, again, 200, 0)
	if again.Body["previously_sent"] != true || again.Body["message"].(map[string]any)["seq"] != 2.0 {
		t.Errorf("a retry of the answer: %s", again.Raw)
	}

	// The next user message is told; the bot's own answer never is.
	id3 := b.say(t, s, "gracias")
	b.recv.waitAccepted(t, []string{id1, id3}, 10*time.Second)
	time.Sleep(500 * time.Millisecond) // room for a wrong request to show up
	hits = b.recv.got()
	checkHits(t, hits)
	for _, h := range hits {
		if h.event.Data.Sender == c.bot || h.id == "msg_"+b.conv+"_2" {
			t.Errorf("the bot's own message was posted to its webhook: %s", h.body)
		}
	}
	if len(hits) != 2 {
		t.Errorf("%d requests, want 2: %s", len(hits), describeHits(hits))
	}
	if ids := rowIDs(webhookRows(t, s, "")); !slices.Equal(ids, []string{id1, id3}) {
		t.Errorf("webhook ledger %v, want %v", ids, []string{id1, id3})
	}
	if fr := mustReadLive(t, sock, 5*time.Second); fr.Type != "message" || fr.Message.Seq != 3 {
		t.Fatalf("third message on the socket: %+v", fr)
	}
	expectQuiet(t, sock, 200*time.Millisecond) // no echo of the retried answer

	// A new secret replaces the old one for the next event.
	e = s.post(t, "/bot/webhook", c.auth, c.token, map[string]string{"bot_idsha": c.bot, "url": b.recv.URL + "/hook"})
	expect(t, e, 200, 0)
	if e.str("secret") == "" || e.str("secret") == b.secret {
		t.Fatalf("a second /bot/webhook gives the same secret: %s", e.Raw)
	}
	b.recv.setSecret(e.str("secret"))
	id4 := b.say(t, s, "otra")
	checkHits(t, b.recv.waitAccepted(t, []string{id4}, 10*time.Second))

	// Another corporate's bot, and a conversation of another corporate.
	other := s.newCorporate(t, "Other")
	expect(t, s.post(t, "/bot/message/send", c.auth, c.token, map[string]any{"bot_idsha": other.bot, "conversationId": b.conv, "text": "x"}), 404, 7)
	expect(t, s.post(t, "/bot/message/send", other.auth, other.token, map[string]any{"bot_idsha": other.bot, "conversationId": b.conv, "text": "x"}), 404, 7)
	expect(t, s.post(t, "/bot/message/send", other.auth, other.token, map[string]any{"bot_idsha": c.bot, "conversationId": b.conv, "text": "x"}), 404, 7)
	expect(t, s.post(t, "/bot/webhook", c.auth, c.token, map[string]string{"bot_idsha": other.bot, "url": b.recv.URL}), 404, 7)
	// A bot of this corporate that is not in the conversation.
	out, err := s.imbee("bot", "create", "--corporate", "1", "--name", "Second Bot", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var second struct {
		BotIDSha string `json:"bot_idsha"`
	}
	if err := json.Unmarshal([]byte(out), &second); err != nil || second.BotIDSha == "" {
		t.Fatalf("bot create: %v %s", err, out)
	}
	expect(t, s.post(t, "/bot/message/send", c.auth, c.token, map[string]any{"bot_idsha": second.BotIDSha, "conversationId": b.conv, "text": "x"}), 404, 7)

	for _, bad := range []string{"ftp://example.com/hook", "not a url", "http://", "/relative", "example.com/hook", "http://example.com/" + strings.Repeat("a", 2000)} {
		e := s.post(t, "/bot/webhook", c.auth, c.token, map[string]string{"bot_idsha": c.bot, "url": bad})
		expect(t, e, 400, 6)
		if e.Body["field"] != "url" {
			t.Errorf("url %q: %s", bad, e.Raw)
		}
	}
	// Nothing above changed the webhook or added a message.
	id5 := b.say(t, s, "still there")
	if id5 != "msg_"+b.conv+"_5" {
		t.Errorf("fifth message id %q", id5)
	}
	checkHits(t, b.recv.waitAccepted(t, []string{id5}, 10*time.Second))
}

// TestWebhookFaults: an endpoint that is down for a while gets every event
// once it is back; one that refuses (4xx) gets each event once, and the
// operator can replay them; a 429's Retry-After is honoured.
func TestWebhookFaults(t *testing.T) { testkit.ForEachBackend(t, testWebhookFaults) }

func testWebhookFaults(t *testing.T) {
	t.Parallel()

	t.Run("Outage", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, append(fastWebhooks, "--delivery-attempts", "30")...)
		b := newBotChat(t, s)
		upAt := time.Now().Add(3 * time.Second)
		b.recv.setAnswer(func(h *hookHit, _ int) hookAnswer {
			if h.at.Before(upAt) {
				return hookAnswer{status: 503}
			}
			return hookAnswer{status: 200}
		})
		var ids []string
		for i := 1; i <= 5; i++ {
			ids = append(ids, b.say(t, s, fmt.Sprintf("m%d", i)))
		}
		b.recv.waitAccepted(t, ids, 12*time.Second)
		waitRows(t, s, "sent", ids, 5*time.Second)
		time.Sleep(500 * time.Millisecond) // room for a duplicate to show up
		hits := b.recv.got()
		checkHits(t, hits)
		acc := accepted(hits)
		for i, id := range ids {
			if len(acc[id]) != 1 {
				t.Errorf("%s accepted %d times, want once", id, len(acc[id]))
				continue
			}
			ok := acc[id][0]
			if ok.event.Data.Seq != int64(i+1) || ok.event.Data.Text != fmt.Sprintf("m%d", i+1) {
				t.Errorf("%s carries %s", id, ok.body)
			}
			failed := 0
			for _, h := range hits {
				switch {
				case h.id != id:
				case h.status == 503 && h.at.Before(ok.at):
					failed++
				case h.status != 200:
					t.Errorf("%s got %d after it was accepted", id, h.status)
				}
			}
			if failed == 0 {
				t.Errorf("%s was never refused: the outage did not happen", id)
			}
		}
		if len(acc) != len(ids) {
			t.Errorf("accepted ids %d, want %d: %s", len(acc), len(ids), describeHits(hits))
		}
	})

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, fastWebhooks...)
		b := newBotChat(t, s)
		b.recv.setAnswer(func(*hookHit, int) hookAnswer { return hookAnswer{status: 400} })
		var ids []string
		for i := 1; i <= 3; i++ {
			ids = append(ids, b.say(t, s, fmt.Sprintf("r%d", i)))
		}
		dead := waitRows(t, s, "dead", ids, 10*time.Second)
		for _, r := range dead {
			if num(r["attempts"]) != 1 || !strings.Contains(fmt.Sprint(r["last_error"]), "400") {
				t.Errorf("dead row %v: want 1 attempt and the 400 in last_error", r)
			}
		}
		time.Sleep(1500 * time.Millisecond) // past several retry waits: none may come
		hits := b.recv.got()
		checkHits(t, hits)
		for _, id := range ids {
			n := 0
			for _, h := range hits {
				if h.id == id {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%s was posted %d times, want once (400 is not retried)", id, n)
			}
		}
		if len(hits) != len(ids) {
			t.Errorf("%d requests, want %d: %s", len(hits), len(ids), describeHits(hits))
		}
		out, err := s.imbee("webhooks", "list", "--status", "dead")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if !strings.Contains(out, id) {
				t.Errorf("webhooks list --status dead does not list %s:\n%s", id, out)
			}
		}
		if !strings.Contains(out, "dead") {
			t.Errorf("webhooks list --status dead:\n%s", out)
		}

		// The endpoint is fixed; the operator replays the dead events.
		b.recv.setAnswer(func(*hookHit, int) hookAnswer { return hookAnswer{status: 200} })
		out, err = s.imbee("webhooks", "retry", "--all")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "3 events queued again") {
			t.Errorf("webhooks retry --all: %q", out)
		}
		b.recv.waitAccepted(t, ids, 10*time.Second)
		waitRows(t, s, "sent", ids, 5*time.Second)
		time.Sleep(300 * time.Millisecond)
		hits = b.recv.got()
		checkHits(t, hits)
		acc := accepted(hits)
		for i, id := range ids {
			if len(acc[id]) != 1 || acc[id][0].event.Data.Text != fmt.Sprintf("r%d", i+1) {
				t.Errorf("%s accepted %d times after the replay, want once with its message", id, len(acc[id]))
			}
		}
		if len(hits) != 2*len(ids) {
			t.Errorf("%d requests, want %d (one refusal and one replay each): %s", len(hits), 2*len(ids), describeHits(hits))
		}
		if rows := webhookRows(t, s, "dead"); len(rows) != 0 {
			t.Errorf("still dead: %v", rows)
		}
	})

	t.Run("RetryAfter", func(t *testing.T) {
		t.Parallel()
		// --delivery-max-retry caps a Retry-After: it is above 2 s here.
		s := startServer(t, "--delivery-first-retry", "200ms", "--delivery-max-retry", "5s")
		b := newBotChat(t, s)
		b.recv.setAnswer(func(_ *hookHit, tries int) hookAnswer {
			if tries == 1 {
				return hookAnswer{status: 429, retryAfter: "2"}
			}
			return hookAnswer{status: 200}
		})
		id := b.say(t, s, "slow down")
		hits := b.recv.waitAccepted(t, []string{id}, 10*time.Second)
		checkHits(t, hits)
		if len(hits) != 2 || hits[0].status != 429 || hits[1].status != 200 || hits[1].id != id {
			t.Fatalf("requests: %s", describeHits(hits))
		}
		if gap := hits[1].at.Sub(hits[0].at); gap < 2*time.Second {
			t.Errorf("the retry came %v after the 429, want at least its Retry-After of 2 s", gap)
		} else {
			t.Logf("retry %v after the 429", gap.Round(time.Millisecond))
		}
	})
}

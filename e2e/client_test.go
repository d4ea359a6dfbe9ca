package e2e

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/client"
	"github.com/imbee/imbee/internal/testkit"
)

// client is the Go client for c's credentials, every answer of which is
// checked against the OpenAPI document.
func (s *server) client(t testing.TB, c corporate) *client.Client {
	return client.New(s.URL, c.auth, c.token, client.WithHTTPClient(&http.Client{Transport: validated(t, http.DefaultTransport), Timeout: 30 * time.Second}))
}

// createChat creates (or finds) from's 1:1 chat with a user or bot, through
// the client, and returns its conversation id.
func (s *server) createChat(t testing.TB, c corporate, from user, with client.Contact) string {
	t.Helper()
	r, err := s.client(t, c).AsUser(from.apikey).CreateChat(t.Context(), client.CreateChatRequest{Type: client.TypeChat, Contacts: []client.Contact{with}})
	if err != nil {
		t.Fatalf("create chat: %v", err)
	}
	return r.ConversationID
}

// wantError checks that err is the API's answer code, naming field, with a
// request id to quote.
func wantError(t testing.TB, err error, status, code int, field string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Errorf("err = %v, want a *client.Error with code %d", err, code)
		return &client.Error{}
	}
	if e.Code != code || e.HTTPStatus != status || e.Field != field || e.RequestID == "" {
		t.Errorf("error %+v, want HTTP %d code %d field %q and a request id", *e, status, code, field)
	}
	return e
}

var hex40 = regexp.MustCompile(`^[0-9a-f]{40}$`)

func TestClient(t *testing.T) { testkit.ForEachBackend(t, testClient) }

// testClient calls every endpoint through the client against the real
// server.
func testClient(t *testing.T) {
	s := startServer(t)
	c := s.newCorporate(t, "Client Co")
	api := s.client(t, c)
	ctx := t.Context()

	ana, err := api.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "ana", Platform: "ios", DeviceName: "iPhone", HardwareID: "h1", OSVersion: "18"})
	if err != nil {
		t.Fatal(err)
	}
	if ana.PreviouslyRegistered || !hex40.MatchString(ana.VirtualUser) || !strings.HasPrefix(ana.Pass, "imbp_") || !strings.HasPrefix(ana.APIKey, "imbk_") {
		t.Fatalf("NewUser = %+v", ana)
	}
	again, err := api.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "ana"})
	if err != nil || *again != (client.User{VirtualUser: ana.VirtualUser, Pass: ana.Pass, APIKey: ana.APIKey, PreviouslyRegistered: true}) {
		t.Fatalf("a repeat of NewUser = %+v, %v; want the same credentials, previously registered", again, err)
	}
	_, err = api.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "  "})
	wantError(t, err, 400, client.CodeParam, "uniqueIdSha")
	bea, err := api.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "bea"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("bulk", func(t *testing.T) {
		r, err := api.BulkUsers(ctx, client.BulkUsersRequest{Users: []client.NewUserRequest{
			{UniqueIDSha: "carla", Platform: "android"}, {UniqueIDSha: "ana"}, {UniqueIDSha: " "}, {UniqueIDSha: "carla"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Created != 1 || r.Existing != 2 || r.Failed != 1 || len(r.Results) != 4 {
			t.Fatalf("BulkUsers = %+v: want 1 created, 2 existing, 1 failed, 4 results", r)
		}
		for i, res := range r.Results {
			if res.Index != i {
				t.Errorf("result %d has index %d", i, res.Index)
			}
		}
		carla := r.Results[0]
		if carla.Err() != nil || carla.PreviouslyRegistered || !hex40.MatchString(carla.VirtualUser) || !strings.HasPrefix(carla.APIKey, "imbk_") {
			t.Errorf("a new user: %+v", carla)
		}
		if got := r.Results[1].User; got != (client.User{VirtualUser: ana.VirtualUser, Pass: ana.Pass, APIKey: ana.APIKey, PreviouslyRegistered: true}) {
			t.Errorf("an existing user: %+v, want ana's credentials", got)
		}
		if err := r.Results[2].Err(); !client.IsCode(err, client.CodeParam) || r.Results[2].Field != "users[2].uniqueIdSha" || r.Results[2].VirtualUser != "" {
			t.Errorf("an invalid item: %+v", r.Results[2])
		}
		if got := r.Results[3]; got.User != (client.User{VirtualUser: carla.VirtualUser, Pass: carla.Pass, APIKey: carla.APIKey, PreviouslyRegistered: true}) {
			t.Errorf("the same uniqueIdSha twice: %+v, want the first item's user, previously registered", got)
		}
		if u, err := api.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "carla"}); err != nil || u.APIKey != carla.APIKey || !u.PreviouslyRegistered {
			t.Errorf("NewUser of a bulk user = %+v, %v", u, err)
		}
		_, err = api.BulkUsers(ctx, client.BulkUsersRequest{})
		wantError(t, err, 400, client.CodeParam, "users")
	})

	t.Run("rotate", func(t *testing.T) {
		old := *bea
		rot, err := api.RotateUser(ctx, client.RotateUserRequest{UniqueIDSha: "bea"})
		if err != nil {
			t.Fatal(err)
		}
		if rot.VirtualUser != old.VirtualUser || rot.APIKey == old.APIKey || rot.Pass == old.Pass || !strings.HasPrefix(rot.APIKey, "imbk_") {
			t.Fatalf("RotateUser = %+v, was %+v", rot, old)
		}
		_, err = api.AsUser(old.APIKey).ListChats(ctx, client.ListChatsRequest{})
		wantError(t, err, 401, client.CodeCorporateKey, "")
		if u, err := api.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "bea"}); err != nil || u.APIKey != rot.APIKey || u.Pass != rot.Pass {
			t.Errorf("NewUser after a rotation = %+v, %v; want the new credentials", u, err)
		}
		_, err = api.RotateUser(ctx, client.RotateUserRequest{UniqueIDSha: "nobody"})
		wantError(t, err, 404, client.CodeNotFound, "uniqueIdSha")
		*bea = *rot
	})

	t.Run("links", func(t *testing.T) {
		link, err := api.NewToken(ctx, client.NewTokenRequest{VirtualUser: "ana", BotIDSha: c.bot, Mail: "ana@example.com", Cellular: "+34 612 34 56 78", MaxRetries: 3})
		if err != nil {
			t.Fatal(err)
		}
		limit, _ := time.Parse(time.DateOnly, link.DateLimit)
		if days := time.Until(limit).Hours() / 24; link.UserIDSha != ana.VirtualUser || link.MaxRetries != 3 || link.PreviouslyCreated ||
			!strings.HasPrefix(link.URL, s.URL+"/l/") || days < 28 || days > 31 {
			t.Fatalf("NewToken = %+v", link)
		}
		repeat, err := api.NewToken(ctx, client.NewTokenRequest{VirtualUser: "ana", BotIDSha: c.bot, Mail: "ana@example.com", MaxRetries: 5})
		if err != nil || *repeat != (client.Link{URL: link.URL, UserIDSha: ana.VirtualUser, DateLimit: link.DateLimit, MaxRetries: 3, PreviouslyCreated: true}) {
			t.Errorf("a repeat of NewToken = %+v, %v; want the same link, its own max_retries", repeat, err)
		}
		_, err = api.NewToken(ctx, client.NewTokenRequest{VirtualUser: "ana", BotIDSha: strings.Repeat("0", 40), Mail: "ana@example.com"})
		wantError(t, err, 404, client.CodeNotFound, "bot_idsha")
		_, err = api.NewToken(ctx, client.NewTokenRequest{VirtualUser: "ana", BotIDSha: c.bot, Cellular: "612"})
		wantError(t, err, 400, client.CodeParam, "celullar")

		// Open the page as a browser would, then spend a use.
		req, _ := http.NewRequest("GET", link.URL, nil)
		req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36")
		b := browser(t)
		if resp, err := b.Do(req); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET the link: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		if code, _, _ := page(t, b, "POST", link.URL); code != 303 {
			t.Fatalf("POST the link: %d", code)
		}

		// Page views reach the audit trail in batches, off the request.
		var st *client.LinkStatus
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if st, err = api.TokenStatus(ctx, client.TokenStatusRequest{URL: link.URL}); err != nil {
				t.Fatal(err)
			}
			if len(st.Attempts) >= 2 || time.Now().After(deadline) {
				break
			}
		}
		if st.URL != link.URL || st.UserIDSha != ana.VirtualUser || st.BotIDSha != c.bot || st.State != client.StateActive ||
			st.MaxRetries != 3 || st.Uses != 1 || st.UsesLeft != 2 || st.DateLimit != link.DateLimit || st.Revoked {
			t.Errorf("TokenStatus = %+v", st)
		}
		var channels []string
		for _, d := range st.Deliveries {
			channels = append(channels, d.Channel+" "+d.To)
			if d.ID == 0 || d.CreatedAt.IsZero() || d.Status == "" {
				t.Errorf("delivery %+v", d)
			}
		}
		if want := "mail ana@example.com,sms +34612345678,mail ana@example.com"; strings.Join(channels, ",") != want {
			t.Errorf("deliveries %q, want %q (oldest first; the repeat sent the mail again)", strings.Join(channels, ","), want)
		}
		if len(st.Attempts) != 2 {
			t.Errorf("attempts = %+v, want the POST and the GET", st.Attempts)
		} else {
			post, get := st.Attempts[0], st.Attempts[1]
			if post.Method != "POST" || post.Result != "spent" || get.Method != "GET" || get.Result != "viewed" || get.Agent != "browser" ||
				!regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(get.Client) || post.Client != get.Client || time.Since(get.Time) > time.Minute {
				t.Errorf("attempts, newest first = %+v", st.Attempts)
			}
		}
		_, err = api.TokenStatus(ctx, client.TokenStatusRequest{URL: s.URL + "/l/imbl_unknown"})
		wantError(t, err, 404, client.CodeNotFound, "url")

		rev, err := api.RevokeToken(ctx, client.RevokeTokenRequest{URL: link.URL})
		if err != nil || rev.State != client.StateRevoked || !rev.Revoked || rev.PreviouslyRevoked || rev.URL != link.URL || rev.Uses != 1 {
			t.Errorf("RevokeToken = %+v, %v", rev, err)
		}
		if rev, err = api.RevokeToken(ctx, client.RevokeTokenRequest{URL: link.URL}); err != nil || !rev.PreviouslyRevoked {
			t.Errorf("RevokeToken twice = %+v, %v", rev, err)
		}
		if code, _, _ := page(t, browser(t), "GET", link.URL); code != 410 {
			t.Errorf("a revoked link's page: %d", code)
		}
		next, err := api.NewToken(ctx, client.NewTokenRequest{VirtualUser: "ana", BotIDSha: c.bot, Mail: "ana@example.com"})
		if err != nil || next.URL == link.URL || next.PreviouslyCreated {
			t.Fatalf("NewToken after a revocation = %+v, %v; want a new link", next, err)
		}
		all, err := api.RevokeToken(ctx, client.RevokeTokenRequest{VirtualUser: "ana"})
		if err != nil || all.VirtualUser != "ana" || all.RevokedLinks != 1 {
			t.Errorf("RevokeToken of a user = %+v, %v", all, err)
		}
		_, err = api.RevokeToken(ctx, client.RevokeTokenRequest{VirtualUser: "nobody"})
		wantError(t, err, 404, client.CodeNotFound, "virtual_user")
	})

	anaAPI, beaAPI := api.AsUser(ana.APIKey), api.AsUser(bea.APIKey)
	one, err := anaAPI.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeChat, Contacts: []client.Contact{{IDSha: bea.VirtualUser}}})
	if err != nil {
		t.Fatal(err)
	}
	members := []client.Member{{IDSha: ana.VirtualUser, IsAdmin: 1}, {IDSha: bea.VirtualUser, IsAdmin: 0}}
	if one.PreviouslyCreated || one.ConversationID == "" || fmt.Sprint(one.Contacts) != fmt.Sprint(members) {
		t.Fatalf("CreateChat = %+v", one)
	}
	botChat, err := anaAPI.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeChat, Contacts: []client.Contact{{BotIDSha: c.bot}}})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("chats", func(t *testing.T) {
		other, err := beaAPI.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeChat, Contacts: []client.Contact{{IDSha: ana.VirtualUser}}})
		if err != nil || other.ConversationID != one.ConversationID || !other.PreviouslyCreated || fmt.Sprint(other.Contacts) != fmt.Sprint(members) {
			t.Errorf("the pair's chat from the other side = %+v, %v; want %s, creator first", other, err, one.ConversationID)
		}
		g, err := anaAPI.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeGroup, Name: "team",
			Contacts: []client.Contact{{IDSha: bea.VirtualUser}, {BotIDSha: c.bot}, {IDSha: ana.VirtualUser}}})
		if err != nil {
			t.Fatal(err)
		}
		if g.PreviouslyCreated || g.ConversationID == one.ConversationID || len(g.Contacts) != 3 || g.Contacts[0] != (client.Member{IDSha: ana.VirtualUser, IsAdmin: 1}) {
			t.Errorf("a group = %+v", g)
		}
		_, err = anaAPI.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeChat, Contacts: []client.Contact{{IDSha: ana.VirtualUser}}})
		wantError(t, err, 400, client.CodeParam, "contacts")
		_, err = anaAPI.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeChat, Contacts: []client.Contact{{IDSha: strings.Repeat("f", 40)}}})
		wantError(t, err, 404, client.CodeNotFound, "contacts")
		_, err = api.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeChat, Contacts: []client.Contact{{IDSha: bea.VirtualUser}}})
		wantError(t, err, 401, client.CodeCorporateKey, "") // user-level: the corporate token is refused
	})

	t.Run("messages", func(t *testing.T) {
		send := func(u *client.Client, text, key string) *client.SendMessageResponse {
			t.Helper()
			r, err := u.SendMessage(ctx, client.SendMessageRequest{ConversationID: one.ConversationID, Text: text, ClientMsgID: key})
			if err != nil {
				t.Fatal(err)
			}
			return r
		}
		m1 := send(anaAPI, "hola", "k1")
		if m1.PreviouslySent || m1.Message.Seq != 1 || m1.Message.Sender != ana.VirtualUser || m1.Message.Text != "hola" ||
			m1.Message.ClientMsgID != "k1" || m1.Message.SenderIsBot || time.Since(m1.Message.CreatedAt) > time.Minute {
			t.Errorf("SendMessage = %+v", m1)
		}
		if again := send(anaAPI, "hola", "k1"); !again.PreviouslySent || again.Message != m1.Message {
			t.Errorf("a repeat with the same clientMsgId = %+v", again)
		}
		if m2 := send(beaAPI, "qué tal", "k1"); m2.Message.Seq != 2 || m2.PreviouslySent {
			t.Errorf("bea's message = %+v", m2)
		}

		page, err := beaAPI.ListMessages(ctx, client.ListMessagesRequest{ConversationID: one.ConversationID})
		if err != nil || len(page.Messages) != 2 || page.Messages[0].Text != "hola" || page.Messages[1].Text != "qué tal" || page.LastSeq != 2 || page.HasMore {
			t.Errorf("ListMessages = %+v, %v", page, err)
		}
		if page, err = beaAPI.ListMessages(ctx, client.ListMessagesRequest{ConversationID: one.ConversationID, AfterSeq: new(int64(1))}); err != nil ||
			len(page.Messages) != 1 || page.Messages[0].Seq != 2 {
			t.Errorf("ListMessages after 1 = %+v, %v", page, err)
		}
		if page, err = beaAPI.ListMessages(ctx, client.ListMessagesRequest{ConversationID: one.ConversationID, BeforeSeq: new(int64(2)), Limit: 1}); err != nil ||
			len(page.Messages) != 1 || page.Messages[0].Seq != 1 || page.HasMore {
			t.Errorf("ListMessages before 2 = %+v, %v", page, err)
		}
		if page, err = beaAPI.ListMessages(ctx, client.ListMessagesRequest{ConversationID: one.ConversationID, Limit: 1}); err != nil ||
			len(page.Messages) != 1 || page.Messages[0].Seq != 2 || !page.HasMore {
			t.Errorf("ListMessages, limit 1 = %+v, %v", page, err)
		}
		_, err = beaAPI.ListMessages(ctx, client.ListMessagesRequest{ConversationID: botChat.ConversationID})
		wantError(t, err, 404, client.CodeNotFound, "conversationId")

		if r, err := beaAPI.MarkRead(ctx, client.MarkReadRequest{ConversationID: one.ConversationID, Seq: 99}); err != nil || r.ReadSeq != 2 {
			t.Errorf("MarkRead past the end = %+v, %v; want 2", r, err)
		}
		if r, err := beaAPI.MarkRead(ctx, client.MarkReadRequest{ConversationID: one.ConversationID, Seq: 1}); err != nil || r.ReadSeq != 2 {
			t.Errorf("MarkRead backwards = %+v, %v; want 2", r, err)
		}
		chats, err := beaAPI.ListChats(ctx, client.ListChatsRequest{})
		if err != nil || len(chats.Chats) == 0 {
			t.Fatalf("bea's ListChats = %+v, %v", chats, err)
		}
		i := slices.IndexFunc(chats.Chats, func(ch client.ChatSummary) bool { return ch.ConversationID == one.ConversationID })
		if i < 0 {
			t.Fatalf("bea's ListChats = %+v: no %s", chats, one.ConversationID)
		}
		ch := chats.Chats[i]
		if ch.Type != client.TypeChat || ch.LastSeq != 2 || ch.ReadSeq != 2 || ch.Unread != 0 ||
			ch.LastMessage == nil || ch.LastMessage.Text != "qué tal" || fmt.Sprint(ch.Contacts) != fmt.Sprint(members) {
			t.Errorf("bea's chat = %+v", ch)
		}
		if chats, err = anaAPI.ListChats(ctx, client.ListChatsRequest{Limit: 1}); err != nil || len(chats.Chats) != 1 {
			t.Errorf("ana's ListChats, limit 1 = %+v, %v", chats, err)
		}
	})

	t.Run("bot", func(t *testing.T) {
		req := client.BotSendMessageRequest{BotIDSha: c.bot, ConversationID: botChat.ConversationID, Text: "hi, how can I help?", ClientMsgID: "w1"}
		r, err := api.BotSendMessage(ctx, req)
		if err != nil || r.PreviouslySent || r.Message.Seq != 1 || r.Message.Sender != c.bot || !r.Message.SenderIsBot {
			t.Fatalf("BotSendMessage = %+v, %v", r, err)
		}
		if again, err := api.BotSendMessage(ctx, req); err != nil || !again.PreviouslySent || again.Message != r.Message {
			t.Errorf("a repeat = %+v, %v", again, err)
		}
		page, err := anaAPI.ListMessages(ctx, client.ListMessagesRequest{ConversationID: botChat.ConversationID})
		if err != nil || len(page.Messages) != 1 || page.Messages[0] != r.Message {
			t.Errorf("the user's view = %+v, %v", page, err)
		}
		_, err = api.BotSendMessage(ctx, client.BotSendMessageRequest{BotIDSha: strings.Repeat("0", 40), ConversationID: botChat.ConversationID, Text: "x"})
		wantError(t, err, 404, client.CodeNotFound, "bot_idsha")

		hook := "http://127.0.0.1:9/hook" // nothing is sent while it is set
		h1, err := api.SetBotWebhook(ctx, client.SetBotWebhookRequest{BotIDSha: c.bot, URL: hook})
		if err != nil || h1.BotIDSha != c.bot || h1.URL != hook || !strings.HasPrefix(h1.Secret, "whsec_") {
			t.Fatalf("SetBotWebhook = %+v, %v", h1, err)
		}
		h2, err := api.SetBotWebhook(ctx, client.SetBotWebhookRequest{BotIDSha: c.bot, URL: hook})
		if err != nil || h2.Secret == h1.Secret {
			t.Errorf("SetBotWebhook again = %+v, %v; want a new secret", h2, err)
		}
		if off, err := api.SetBotWebhook(ctx, client.SetBotWebhookRequest{BotIDSha: c.bot}); err != nil || off.URL != "" {
			t.Errorf("removing the webhook = %+v, %v", off, err)
		}
		_, err = api.SetBotWebhook(ctx, client.SetBotWebhookRequest{BotIDSha: c.bot, URL: "ftp://x"})
		wantError(t, err, 400, client.CodeParam, "url")
	})

	// An Idempotency-Key replays the first answer, exactly, without running
	// again; with another body it is refused.
	t.Run("idempotency", func(t *testing.T) {
		group := client.CreateChatRequest{Type: client.TypeGroup, Name: "replayed", Contacts: []client.Contact{{IDSha: bea.VirtualUser}}}
		var first, second client.Meta
		g1, err := anaAPI.CreateChat(ctx, group, client.WithIdempotencyKey("group-1"), client.CaptureMeta(&first))
		if err != nil {
			t.Fatal(err)
		}
		g2, err := anaAPI.CreateChat(ctx, group, client.WithIdempotencyKey("group-1"), client.CaptureMeta(&second))
		if err != nil {
			t.Fatal(err)
		}
		if first.Replayed || first.IdempotencyKey != "group-1" || first.RequestID == "" {
			t.Errorf("the first call's meta = %+v", first)
		}
		if g2.ConversationID != g1.ConversationID || !second.Replayed || second.ServerTime != first.ServerTime || second.RequestID == first.RequestID {
			t.Errorf("a replay = %+v, meta %+v; want %s, replayed, the first time %v", g2, second, g1.ConversationID, first.ServerTime)
		}
		if g3, err := anaAPI.CreateChat(ctx, group); err != nil || g3.ConversationID == g1.ConversationID {
			t.Errorf("the same group without the key = %+v, %v; want a new group", g3, err)
		}
		// Keys are per credential: bea's "group-1" is hers.
		if g4, err := beaAPI.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeGroup, Contacts: []client.Contact{{IDSha: ana.VirtualUser}}},
			client.WithIdempotencyKey("group-1")); err != nil || g4.ConversationID == g1.ConversationID {
			t.Errorf("another user's same key = %+v, %v", g4, err)
		}
		group.Name = "changed"
		_, err = anaAPI.CreateChat(ctx, group, client.WithIdempotencyKey("group-1"))
		wantError(t, err, 422, client.CodeIdempotencyMismatch, "")

		// A replayed /token/new sends nothing again.
		issue := client.NewTokenRequest{VirtualUser: "dan", BotIDSha: c.bot, Mail: "dan@example.com"}
		l1, err := api.NewToken(ctx, issue, client.WithIdempotencyKey("link-dan"))
		if err != nil {
			t.Fatal(err)
		}
		var meta client.Meta
		l2, err := api.NewToken(ctx, issue, client.WithIdempotencyKey("link-dan"), client.CaptureMeta(&meta))
		if err != nil || *l2 != *l1 || !meta.Replayed {
			t.Errorf("a replayed NewToken = %+v, %v, meta %+v; want %+v", l2, err, meta, l1)
		}
		if st, err := api.TokenStatus(ctx, client.TokenStatusRequest{URL: l1.URL}); err != nil || len(st.Deliveries) != 1 {
			t.Errorf("deliveries after a replay = %+v, %v; want 1", st, err)
		}
		if l3, err := api.NewToken(ctx, issue); err != nil || l3.URL != l1.URL || !l3.PreviouslyCreated {
			t.Errorf("NewToken with a new key = %+v, %v; want the active link again", l3, err)
		}
		_, err = api.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "dan"}, client.WithIdempotencyKey("link-dan")) // another endpoint
		if e := wantError(t, err, 422, client.CodeIdempotencyMismatch, ""); e.Retryable() {
			t.Errorf("code 9 is retryable")
		}

		// A failed call stores nothing: its key works for the corrected one.
		_, err = api.NewUser(ctx, client.NewUserRequest{UniqueIDSha: ""}, client.WithIdempotencyKey("fix-me"))
		wantError(t, err, 400, client.CodeParam, "uniqueIdSha")
		if u, err := api.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "erin"}, client.WithIdempotencyKey("fix-me")); err != nil || u.PreviouslyRegistered {
			t.Errorf("the corrected call with the failed call's key = %+v, %v", u, err)
		}
	})
}

package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imbee/imbee/client"
)

// exchange is a request the fake server got.
type exchange struct {
	method, path string
	header       http.Header
	body         string
	at           time.Time
}

// fake is an imbee server that answers as a test says and records what it
// is sent.
type fake struct {
	*httptest.Server
	mu  sync.Mutex
	got []exchange
}

// newFake answers each request with answer, given the request's index
// from 0.
func newFake(t *testing.T, answer func(w http.ResponseWriter, n int, x exchange)) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		x := exchange{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: string(b), at: time.Now()}
		f.mu.Lock()
		n := len(f.got)
		f.got = append(f.got, x)
		f.mu.Unlock()
		answer(w, n, x)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fake) requests() []exchange {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// envelope writes imbee's answer: code and body, with any extra headers
// given as name, value pairs.
func envelope(w http.ResponseWriter, status, code int, body string, headers ...string) {
	for i := 0; i+1 < len(headers); i += 2 {
		w.Header().Set(headers[i], headers[i+1])
	}
	msg := "Ok"
	if code != 0 {
		msg = fmt.Sprintf("refused with %d", code)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"time":0.000412,"code":%d,"message":%q,"body":%s}`+"\n", code, msg, body)
}

// fast retries without real waits, unless Retry-After asks for one.
func fast() client.Option { return client.WithRetry(4, time.Millisecond, 5*time.Second) }

var generatedKey = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestRequests checks every method's path, headers and exact body, and
// that it decodes the API's answer into its typed response.
func TestRequests(t *testing.T) {
	answers := map[string]string{}
	f := newFake(t, func(w http.ResponseWriter, _ int, x exchange) {
		envelope(w, 200, 0, answers[x.path+" "+x.body])
	})
	ctx := context.Background()
	corp := client.New(f.URL+"/", "imba_auth", "imbc_corp")
	user := corp.AsUser("imbk_user")
	created := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

	cases := []struct {
		name, path, body, answer string
		user, keyed              bool
		call                     func() (any, error)
		want                     any
	}{{
		name: "NewUser", path: "/third_parties/user/new", keyed: true,
		body:   `{"uniqueIdSha":"ana","platform":"ios","osVersion":"18"}`,
		answer: `{"virtualUser":"68de","pass":"imbp_1","apikey":"imbk_1","previously_registered":true}`,
		call: func() (any, error) {
			return corp.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "ana", Platform: "ios", OSVersion: "18"})
		},
		want: &client.User{VirtualUser: "68de", Pass: "imbp_1", APIKey: "imbk_1", PreviouslyRegistered: true},
	}, {
		name: "BulkUsers", path: "/third_parties/user/bulk", keyed: true,
		body: `{"users":[{"uniqueIdSha":"a"},{"uniqueIdSha":""}]}`,
		answer: `{"results":[{"index":0,"code":0,"message":"Ok","virtualUser":"68de","pass":"imbp_1","apikey":"imbk_1","previously_registered":false},
			{"index":1,"code":6,"message":"uniqueIdSha can not be null or empty","field":"users[1].uniqueIdSha"}],"created":1,"existing":0,"failed":1}`,
		call: func() (any, error) {
			return corp.BulkUsers(ctx, client.BulkUsersRequest{Users: []client.NewUserRequest{{UniqueIDSha: "a"}, {}}})
		},
		want: &client.BulkUsersResponse{Created: 1, Failed: 1, Results: []client.BulkUserResult{
			{Index: 0, Message: "Ok", User: client.User{VirtualUser: "68de", Pass: "imbp_1", APIKey: "imbk_1"}},
			{Index: 1, Code: 6, Message: "uniqueIdSha can not be null or empty", Field: "users[1].uniqueIdSha"},
		}},
	}, {
		name: "RotateUser", path: "/third_parties/user/rotate", keyed: true,
		body:   `{"uniqueIdSha":"ana"}`,
		answer: `{"virtualUser":"68de","pass":"imbp_2","apikey":"imbk_2"}`,
		call:   func() (any, error) { return corp.RotateUser(ctx, client.RotateUserRequest{UniqueIDSha: "ana"}) },
		want:   &client.User{VirtualUser: "68de", Pass: "imbp_2", APIKey: "imbk_2"},
	}, {
		name: "NewToken", path: "/token/new", keyed: true,
		body:   `{"virtual_user":"ana","bot_idsha":"b0","mail":"ana@example.com","celullar":"+34612345678","max_retries":3,"date_limit":"2026-12-27"}`,
		answer: `{"url":"https://x/l/imbl_1","user_idsha":"68de","date_limit":"2026-12-27","max_retries":3,"previously_created":false}`,
		call: func() (any, error) {
			return corp.NewToken(ctx, client.NewTokenRequest{VirtualUser: "ana", BotIDSha: "b0", Mail: "ana@example.com",
				Cellular: "+34612345678", MaxRetries: 3, DateLimit: "2026-12-27"})
		},
		want: &client.Link{URL: "https://x/l/imbl_1", UserIDSha: "68de", DateLimit: "2026-12-27", MaxRetries: 3},
	}, {
		name: "NewToken defaults", path: "/token/new", keyed: true,
		body:   `{"virtual_user":"bo","bot_idsha":"b0","celullar":"+34612345678"}`,
		answer: `{"url":"https://x/l/imbl_2","user_idsha":"77aa","date_limit":"2026-12-27","max_retries":10,"previously_created":true}`,
		call: func() (any, error) {
			return corp.NewToken(ctx, client.NewTokenRequest{VirtualUser: "bo", BotIDSha: "b0", Cellular: "+34612345678"})
		},
		want: &client.Link{URL: "https://x/l/imbl_2", UserIDSha: "77aa", DateLimit: "2026-12-27", MaxRetries: 10, PreviouslyCreated: true},
	}, {
		name: "TokenStatus", path: "/token/status",
		body: `{"url":"https://x/l/imbl_1"}`,
		answer: `{"url":"https://x/l/imbl_1","user_idsha":"68de","bot_idsha":"0e4f","state":"active","max_retries":10,"uses":1,"uses_left":9,"date_limit":"2026-12-27","revoked":false,
			"deliveries":[{"id":42,"channel":"sms","to":"+34600111222","status":"failed","attempts":2,"last_error":"provider answered 503","provider_id":"",
				"created_at":"2026-11-27T09:00:00Z","updated_at":"2026-11-27T09:00:31Z","next_attempt_at":"2026-11-27T09:01:31Z"}],
			"attempts":[{"time":"2026-11-27T09:03:12Z","method":"POST","result":"spent","client":"9f2c41d07a6b3e15","agent":"mobile"}]}`,
		call: func() (any, error) {
			return corp.TokenStatus(ctx, client.TokenStatusRequest{URL: "https://x/l/imbl_1"})
		},
		want: &client.LinkStatus{URL: "https://x/l/imbl_1", UserIDSha: "68de", BotIDSha: "0e4f", State: client.StateActive,
			MaxRetries: 10, Uses: 1, UsesLeft: 9, DateLimit: "2026-12-27",
			Deliveries: []client.Delivery{{ID: 42, Channel: "sms", To: "+34600111222", Status: "failed", Attempts: 2, LastError: "provider answered 503",
				CreatedAt: created, UpdatedAt: created.Add(31 * time.Second), NextAttemptAt: created.Add(91 * time.Second)}},
			Attempts: []client.Attempt{{Time: created.Add(192 * time.Second), Method: "POST", Result: "spent", Client: "9f2c41d07a6b3e15", Agent: "mobile"}},
		},
	}, {
		name: "RevokeToken by url", path: "/token/revoke", keyed: true,
		body:   `{"url":"imbl_1"}`,
		answer: `{"url":"https://x/l/imbl_1","state":"revoked","revoked":true,"deliveries":[],"previously_revoked":true}`,
		call:   func() (any, error) { return corp.RevokeToken(ctx, client.RevokeTokenRequest{URL: "imbl_1"}) },
		want: &client.RevokeTokenResponse{PreviouslyRevoked: true,
			LinkStatus: client.LinkStatus{URL: "https://x/l/imbl_1", State: client.StateRevoked, Revoked: true, Deliveries: []client.Delivery{}}},
	}, {
		name: "RevokeToken by user", path: "/token/revoke", keyed: true,
		body:   `{"virtual_user":"ana"}`,
		answer: `{"virtual_user":"ana","revoked_links":2}`,
		call:   func() (any, error) { return corp.RevokeToken(ctx, client.RevokeTokenRequest{VirtualUser: "ana"}) },
		want:   &client.RevokeTokenResponse{VirtualUser: "ana", RevokedLinks: 2},
	}, {
		name: "CreateChat", path: "/chat/create", user: true, keyed: true,
		body:   `{"type":"group","contacts":[{"idsha":"u2"},{"bot_idsha":"b0"}],"name":"team"}`,
		answer: `{"contacts":[{"idsha":"u1","isadmin":1},{"idsha":"u2","isadmin":0},{"idsha":"b0","isadmin":0}],"conversationId":"c1","previously_created":false}`,
		call: func() (any, error) {
			return user.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeGroup, Name: "team",
				Contacts: []client.Contact{{IDSha: "u2"}, {BotIDSha: "b0"}}})
		},
		want: &client.CreateChatResponse{ConversationID: "c1",
			Contacts: []client.Member{{IDSha: "u1", IsAdmin: 1}, {IDSha: "u2"}, {IDSha: "b0"}}},
	}, {
		name: "SendMessage", path: "/chat/message/send", user: true, keyed: true,
		body:   `{"conversationId":"c1","text":"hola","clientMsgId":"k1"}`,
		answer: `{"message":{"conversationId":"c1","seq":12,"sender":"u1","sender_is_bot":false,"text":"hola","clientMsgId":"k1","created_at":"2026-11-27T09:00:00Z"},"previously_sent":true}`,
		call: func() (any, error) {
			return user.SendMessage(ctx, client.SendMessageRequest{ConversationID: "c1", Text: "hola", ClientMsgID: "k1"})
		},
		want: &client.SendMessageResponse{PreviouslySent: true,
			Message: client.Message{ConversationID: "c1", Seq: 12, Sender: "u1", Text: "hola", ClientMsgID: "k1", CreatedAt: created}},
	}, {
		name: "ListMessages", path: "/chat/message/list", user: true,
		body:   `{"conversationId":"c1","afterSeq":0,"limit":20}`,
		answer: `{"messages":[{"conversationId":"c1","seq":1,"sender":"b0","sender_is_bot":true,"text":"hi","created_at":"2026-11-27T09:00:00Z"}],"has_more":true,"last_seq":40,"read_seq":38}`,
		call: func() (any, error) {
			return user.ListMessages(ctx, client.ListMessagesRequest{ConversationID: "c1", AfterSeq: new(int64(0)), Limit: 20})
		},
		want: &client.ListMessagesResponse{HasMore: true, LastSeq: 40, ReadSeq: 38,
			Messages: []client.Message{{ConversationID: "c1", Seq: 1, Sender: "b0", SenderIsBot: true, Text: "hi", CreatedAt: created}}},
	}, {
		name: "ListChats", path: "/chat/list", user: true,
		body:   `{}`,
		answer: `{"chats":[{"conversationId":"c1","type":"chat","name":"","contacts":[{"idsha":"u1","isadmin":1}],"last_message":null,"last_seq":0,"read_seq":0,"unread":0}]}`,
		call:   func() (any, error) { return user.ListChats(ctx, client.ListChatsRequest{}) },
		want: &client.ListChatsResponse{Chats: []client.ChatSummary{{ConversationID: "c1", Type: client.TypeChat,
			Contacts: []client.Member{{IDSha: "u1", IsAdmin: 1}}}}},
	}, {
		name: "MarkRead", path: "/chat/read", user: true,
		body:   `{"conversationId":"c1","seq":3}`,
		answer: `{"read_seq":3}`,
		call:   func() (any, error) { return user.MarkRead(ctx, client.MarkReadRequest{ConversationID: "c1", Seq: 3}) },
		want:   &client.MarkReadResponse{ReadSeq: 3},
	}, {
		name: "BotSendMessage", path: "/bot/message/send", keyed: true,
		body:   `{"bot_idsha":"b0","conversationId":"c1","text":"hi","clientMsgId":"w1"}`,
		answer: `{"message":{"conversationId":"c1","seq":2,"sender":"b0","sender_is_bot":true,"text":"hi","clientMsgId":"w1","created_at":"2026-11-27T09:00:00Z"},"previously_sent":false}`,
		call: func() (any, error) {
			return corp.BotSendMessage(ctx, client.BotSendMessageRequest{BotIDSha: "b0", ConversationID: "c1", Text: "hi", ClientMsgID: "w1"})
		},
		want: &client.SendMessageResponse{Message: client.Message{ConversationID: "c1", Seq: 2, Sender: "b0", SenderIsBot: true,
			Text: "hi", ClientMsgID: "w1", CreatedAt: created}},
	}, {
		name: "SetBotWebhook removes", path: "/bot/webhook", keyed: true,
		body:   `{"bot_idsha":"b0","url":""}`,
		answer: `{"bot_idsha":"b0","url":"","secret":"whsec_AAAA"}`,
		call:   func() (any, error) { return corp.SetBotWebhook(ctx, client.SetBotWebhookRequest{BotIDSha: "b0"}) },
		want:   &client.SetBotWebhookResponse{BotIDSha: "b0", Secret: "whsec_AAAA"},
	}}
	for _, tc := range cases {
		answers[tc.path+" "+tc.body] = tc.answer
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("answer\n got %+v\nwant %+v", got, tc.want)
			}
			reqs := f.requests()
			if len(reqs) != i+1 {
				t.Fatalf("%d requests in all, want %d", len(reqs), i+1)
			}
			r := reqs[i]
			if r.method != "POST" || r.path != tc.path || r.body != tc.body {
				t.Errorf("sent %s %s %s, want POST %s %s", r.method, r.path, r.body, tc.path, tc.body)
			}
			wantKey := "imbc_corp"
			if tc.user {
				wantKey = "imbk_user"
			}
			h := r.header
			if h.Get("Authorization") != "imba_auth" || h.Get("X-WOOS-KEY") != wantKey ||
				h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != "imbee-go-client" {
				t.Errorf("headers %v, want Authorization imba_auth, X-WOOS-KEY %s, Content-Type application/json", h, wantKey)
			}
			if key := h.Get("Idempotency-Key"); tc.keyed != generatedKey.MatchString(key) || !tc.keyed && len(h.Values("Idempotency-Key")) > 0 {
				t.Errorf("Idempotency-Key %q: keyed = %v", key, tc.keyed)
			}
		})
	}
	if err := cases[1].want.(*client.BulkUsersResponse).Results[1].Err(); !client.IsCode(err, client.CodeParam) ||
		err.(*client.Error).Field != "users[1].uniqueIdSha" {
		t.Errorf("a failed bulk item's Err() = %v", err)
	}
	if err := cases[1].want.(*client.BulkUsersResponse).Results[0].Err(); err != nil {
		t.Errorf("a created bulk item's Err() = %v", err)
	}
}

// A key the server would refuse is refused before anything is sent.
func TestInvalidIdempotencyKey(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ int, _ exchange) { envelope(w, 200, 0, `{}`) })
	c := client.New(f.URL, "a", "k", fast())
	for _, key := range []string{"bad\nkey", "   ", "clé", strings.Repeat("k", 256)} {
		_, err := c.NewUser(context.Background(), client.NewUserRequest{UniqueIDSha: "x"}, client.WithIdempotencyKey(key))
		var e *client.Error
		if !errors.As(err, &e) || e.Code != client.CodeParam || e.Field != "Idempotency-Key" || e.Retryable() {
			t.Errorf("key %q: err = %v, want code 6 for Idempotency-Key", key, err)
		}
	}
	if _, err := c.NewUser(context.Background(), client.NewUserRequest{UniqueIDSha: "x"}, client.WithIdempotencyKey(strings.Repeat("k", 255))); err != nil {
		t.Errorf("a key of 255 characters: %v", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("%d requests, want only the valid key's", n)
	}
}

func TestUserAgentOption(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ int, _ exchange) { envelope(w, 200, 0, `{"chats":[]}`) })
	c := client.New(f.URL, "a", "k", client.WithUserAgent("acme-crm/2.1"))
	if _, err := c.AsUser("u").ListChats(context.Background(), client.ListChatsRequest{}); err != nil {
		t.Fatal(err)
	}
	if ua := f.requests()[0].header.Get("User-Agent"); ua != "acme-crm/2.1" {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, n int, _ exchange) {
		if n == 0 {
			envelope(w, 429, client.CodeRateLimited, `{}`, "Retry-After", "1")
			return
		}
		envelope(w, 200, 0, `{"virtualUser":"v","pass":"p","apikey":"k","previously_registered":false}`)
	})
	var meta client.Meta
	u, err := client.New(f.URL, "a", "k", fast()).NewUser(context.Background(), client.NewUserRequest{UniqueIDSha: "ana"}, client.CaptureMeta(&meta))
	if err != nil || u.APIKey != "k" {
		t.Fatalf("NewUser = %+v, %v", u, err)
	}
	reqs := f.requests()
	if len(reqs) != 2 || meta.Attempts != 2 {
		t.Fatalf("%d requests, meta.Attempts %d; want 2", len(reqs), meta.Attempts)
	}
	if gap := reqs[1].at.Sub(reqs[0].at); gap < time.Second {
		t.Errorf("retried after %v, before Retry-After's 1 s", gap)
	}
	if k0, k1 := reqs[0].header.Get("Idempotency-Key"), reqs[1].header.Get("Idempotency-Key"); k0 == "" || k0 != k1 || k0 != meta.IdempotencyKey {
		t.Errorf("keys %q then %q (meta %q): want the same on every attempt", k0, k1, meta.IdempotencyKey)
	}
	if reqs[0].body != reqs[1].body {
		t.Errorf("bodies differ between attempts: %s, %s", reqs[0].body, reqs[1].body)
	}
}

// A key in progress (10) and a rate limit (8) are retried on every
// endpoint, MarkRead too: the server did nothing.
func TestRetryOnInProgressAndRateLimit(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, n int, x exchange) {
		switch {
		case n == 0:
			envelope(w, 409, client.CodeIdempotencyInProgress, `{}`, "Retry-After", "0")
		case n == 1:
			envelope(w, 200, 0, `{"message":{"conversationId":"c","seq":1,"sender":"u","text":"t","created_at":"2026-11-27T09:00:00Z"},"previously_sent":false}`,
				"Idempotent-Replayed", "true", "X-Request-Id", "r-2")
		case n == 2:
			envelope(w, 429, client.CodeRateLimited, `{}`)
		default:
			envelope(w, 200, 0, `{"read_seq":1}`)
		}
	})
	u := client.New(f.URL, "a", "k", fast()).AsUser("apikey")
	var meta client.Meta
	if _, err := u.SendMessage(context.Background(), client.SendMessageRequest{ConversationID: "c", Text: "t"},
		client.WithIdempotencyKey("send-1"), client.CaptureMeta(&meta)); err != nil {
		t.Fatal(err)
	}
	want := client.Meta{HTTPStatus: 200, ServerTime: 412 * time.Microsecond, RequestID: "r-2", Replayed: true, IdempotencyKey: "send-1", Attempts: 2}
	if meta != want {
		t.Errorf("meta = %+v, want %+v", meta, want)
	}
	if r, err := u.MarkRead(context.Background(), client.MarkReadRequest{ConversationID: "c", Seq: 1}); err != nil || r.ReadSeq != 1 {
		t.Fatalf("MarkRead after a rate limit = %+v, %v", r, err)
	}
	reqs := f.requests()
	if len(reqs) != 4 || reqs[0].header.Get("Idempotency-Key") != "send-1" || reqs[1].header.Get("Idempotency-Key") != "send-1" {
		t.Errorf("requests: %+v", reqs)
	}
}

func TestNoRetryOnRequestErrors(t *testing.T) {
	statuses := map[int]int{2: 401, 3: 401, 4: 415, 5: 400, 6: 400, 7: 404, 9: 422}
	for code, status := range statuses {
		t.Run(fmt.Sprint("code ", code), func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ int, _ exchange) {
				envelope(w, status, code, `{"field":"uniqueIdSha"}`, "X-Request-Id", "req-9")
			})
			_, err := client.New(f.URL, "a", "k", fast()).NewUser(context.Background(), client.NewUserRequest{UniqueIDSha: " "})
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *client.Error", err)
			}
			if e.Code != code || e.HTTPStatus != status || e.Field != "uniqueIdSha" || e.RequestID != "req-9" || e.Retryable() {
				t.Errorf("error = %+v, retryable %v", e, e.Retryable())
			}
			if n := len(f.requests()); n != 1 {
				t.Errorf("%d requests, want 1: code %d is never retried", n, code)
			}
		})
	}
}

func TestServerErrorsRetryOnlyWhenSafe(t *testing.T) {
	failing := func(failures int, ok string) func(w http.ResponseWriter, n int, _ exchange) {
		return func(w http.ResponseWriter, n int, _ exchange) {
			if n < failures {
				envelope(w, 500, client.CodeGeneric, `{}`)
				return
			}
			envelope(w, 200, 0, ok)
		}
	}
	ctx := context.Background()

	t.Run("keyed", func(t *testing.T) {
		f := newFake(t, failing(2, `{"bot_idsha":"b","url":"","secret":"whsec_x"}`))
		if _, err := client.New(f.URL, "a", "k", fast()).SetBotWebhook(ctx, client.SetBotWebhookRequest{BotIDSha: "b"}); err != nil {
			t.Fatal(err)
		}
		reqs := f.requests()
		if len(reqs) != 3 {
			t.Fatalf("%d requests, want 3", len(reqs))
		}
		for _, r := range reqs {
			if r.header.Get("Idempotency-Key") != reqs[0].header.Get("Idempotency-Key") || !generatedKey.MatchString(r.header.Get("Idempotency-Key")) {
				t.Errorf("keys differ or are missing across attempts: %q, %q", reqs[0].header.Get("Idempotency-Key"), r.header.Get("Idempotency-Key"))
			}
		}
	})
	t.Run("the caller's key", func(t *testing.T) {
		f := newFake(t, failing(1, `{"virtualUser":"v","pass":"p","apikey":"k"}`))
		_, err := client.New(f.URL, "a", "k", fast()).RotateUser(ctx, client.RotateUserRequest{UniqueIDSha: "u"}, client.WithIdempotencyKey("rotate-u-1"))
		if err != nil {
			t.Fatal(err)
		}
		reqs := f.requests()
		if len(reqs) != 2 || reqs[0].header.Get("Idempotency-Key") != "rotate-u-1" || reqs[1].header.Get("Idempotency-Key") != "rotate-u-1" {
			t.Errorf("requests %+v: want 2, both with the caller's key", reqs)
		}
	})
	t.Run("read-only", func(t *testing.T) {
		f := newFake(t, failing(1, `{"chats":[]}`))
		if _, err := client.New(f.URL, "a", "k", fast()).ListChats(ctx, client.ListChatsRequest{}); err != nil {
			t.Fatal(err)
		}
		if reqs := f.requests(); len(reqs) != 2 || reqs[1].header.Get("Idempotency-Key") != "" {
			t.Errorf("requests %+v: want 2, without a key", reqs)
		}
	})
	t.Run("unkeyed change", func(t *testing.T) {
		f := newFake(t, failing(1, `{"read_seq":1}`))
		_, err := client.New(f.URL, "a", "k", fast()).MarkRead(ctx, client.MarkReadRequest{ConversationID: "c", Seq: 1})
		var e *client.Error
		if !errors.As(err, &e) || e.Code != client.CodeGeneric || e.HTTPStatus != 500 || e.Retryable() {
			t.Fatalf("err = %v: want code 1, HTTP 500, not retryable", err)
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("%d requests: /chat/read takes no key and must not be repeated", n)
		}
	})
	t.Run("gives up after the attempts", func(t *testing.T) {
		f := newFake(t, failing(100, `{}`))
		_, err := client.New(f.URL, "a", "k", client.WithRetry(3, time.Millisecond, 2*time.Millisecond)).
			TokenStatus(ctx, client.TokenStatusRequest{URL: "u"})
		var e *client.Error
		if !errors.As(err, &e) || e.HTTPStatus != 500 || !e.Retryable() {
			t.Fatalf("err = %v: want the last HTTP 500, retryable", err)
		}
		if n := len(f.requests()); n != 3 {
			t.Errorf("%d requests, want 3", n)
		}
	})
	t.Run("without retry", func(t *testing.T) {
		f := newFake(t, failing(1, `{"chats":[]}`))
		if _, err := client.New(f.URL, "a", "k", client.WithoutRetry()).ListChats(ctx, client.ListChatsRequest{}); !client.IsCode(err, client.CodeGeneric) {
			t.Fatalf("err = %v, want code 1", err)
		}
		if n := len(f.requests()); n != 1 {
			t.Errorf("%d requests, want 1", n)
		}
	})
}

// A connection dropped before the answer is retried like a server error:
// only when the request is safe to repeat.
func TestLostAnswers(t *testing.T) {
	drop := func(w http.ResponseWriter, n int, _ exchange) {
		if n == 0 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		envelope(w, 200, 0, `{"contacts":[],"conversationId":"c","previously_created":false}`)
	}
	ctx := context.Background()
	f := newFake(t, drop)
	u := client.New(f.URL, "a", "k", fast()).AsUser("apikey")
	if _, err := u.CreateChat(ctx, client.CreateChatRequest{Type: client.TypeGroup, Contacts: []client.Contact{{IDSha: "x"}}}); err != nil {
		t.Fatalf("CreateChat after a dropped connection: %v", err)
	}
	if reqs := f.requests(); len(reqs) != 2 || reqs[0].header.Get("Idempotency-Key") != reqs[1].header.Get("Idempotency-Key") {
		t.Errorf("requests %+v: want 2 with the same key", reqs)
	}

	f = newFake(t, drop)
	_, err := client.New(f.URL, "a", "k", fast()).AsUser("apikey").MarkRead(ctx, client.MarkReadRequest{ConversationID: "c", Seq: 1})
	var e *client.Error
	if err == nil || errors.As(err, &e) {
		t.Errorf("MarkRead on a dropped connection: err = %v, want a transport error", err)
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("MarkRead: %d requests, want 1", n)
	}
}

func TestContextStopsTheBackoff(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ int, _ exchange) {
		envelope(w, 429, client.CodeRateLimited, `{}`, "Retry-After", "5")
	})
	c := client.New(f.URL, "a", "k") // the default policy waits out Retry-After: 5
	for _, tc := range []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		want error
	}{
		{"cancel", func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, context.Canceled},
		{"deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := c.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "ana"})
			if took := time.Since(start); took > time.Second {
				t.Errorf("returned after %v, want promptly after the context ended", took)
			}
			if !errors.Is(err, tc.want) || !client.IsCode(err, client.CodeRateLimited) {
				t.Errorf("err = %v: want %v, wrapping the last answer (code 8)", err, tc.want)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, n int, _ exchange) {
		envelope(w, 429, client.CodeRateLimited, `{"field":"mail"}`, "Retry-After", "3600", "X-Request-Id", "req-1")
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	// The default policy: a Retry-After over its maximum delay is the caller's.
	_, err := client.New(f.URL, "a", "k").NewToken(ctx, client.NewTokenRequest{VirtualUser: "u", BotIDSha: "b", Mail: "m@example.com"})
	if time.Since(start) > time.Second || len(f.requests()) != 1 {
		t.Errorf("waited %v and sent %d requests for an hour-long Retry-After: want it returned at once", time.Since(start), len(f.requests()))
	}
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	want := client.Error{Code: 8, Message: "refused with 8", Field: "mail", HTTPStatus: 429, RetryAfter: time.Hour, RequestID: "req-1"}
	if e.Code != want.Code || e.Message != want.Message || e.Field != want.Field || e.HTTPStatus != want.HTTPStatus ||
		e.RetryAfter != want.RetryAfter || e.RequestID != want.RequestID {
		t.Errorf("error = %+v, want %+v", *e, want)
	}
	if !e.Retryable() || !client.IsCode(err, client.CodeRateLimited) || client.IsCode(err, client.CodeParam) {
		t.Errorf("Retryable %v, IsCode 8 %v", e.Retryable(), client.IsCode(err, 8))
	}
	for _, part := range []string{"code 8", "HTTP 429", "refused with 8", "mail", "req-1"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("%q does not say %q", err.Error(), part)
		}
	}
	if client.IsCode(errors.New("other"), client.CodeGeneric) || client.IsCode(nil, client.CodeOK) {
		t.Error("IsCode is true for an error that is not an *Error")
	}
}

// Answers that are not imbee's become an *Error with code 1 and the status.
func TestNotAnEnvelope(t *testing.T) {
	cases := []struct {
		name, contentType, body string
		status                  int
		retryable               bool
	}{
		{"proxy 502 page", "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>", 502, true},
		{"empty 504", "", "", 504, true},
		{"JSON without a code", "application/json", `{"error":"upstream down"}`, 503, true},
		{"200 that is not ours", "application/json", `{"ok":true}`, 200, false},
		{"a code 0 with an error status", "application/json", `{"time":0.1,"code":0,"message":"Ok","body":{}}`, 404, false},
		{"truncated", "application/json", `{"time":0.1,"code":0,"mess`, 200, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, func(w http.ResponseWriter, _ int, _ exchange) {
				if tc.contentType != "" {
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			_, err := client.New(f.URL, "a", "k", client.WithoutRetry()).TokenStatus(context.Background(), client.TokenStatusRequest{URL: "x"})
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *client.Error", err)
			}
			if e.Code != client.CodeGeneric || e.HTTPStatus != tc.status || e.Retryable() != tc.retryable {
				t.Errorf("error = %+v (retryable %v), want code 1, HTTP %d, retryable %v", *e, e.Retryable(), tc.status, tc.retryable)
			}
		})
	}
	f := newFake(t, func(w http.ResponseWriter, n int, _ exchange) {
		if n == 0 {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(502)
			io.WriteString(w, "<h1>Bad Gateway</h1>")
			return
		}
		envelope(w, 200, 0, `{"virtualUser":"v","pass":"p","apikey":"k"}`)
	})
	if _, err := client.New(f.URL, "a", "k", fast()).NewUser(context.Background(), client.NewUserRequest{UniqueIDSha: "x"}); err != nil {
		t.Errorf("a keyed call after a proxy's 502: %v, want it retried", err)
	}
}

// TestConcurrentUse shares one Client, and Clients derived with AsUser,
// between goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, _ int, x exchange) {
		envelope(w, 200, 0, fmt.Sprintf(`{"chats":[{"conversationId":%q,"name":%q}]}`, x.header.Get("X-WOOS-KEY"), x.header.Get("Idempotency-Key")))
	})
	c := client.New(f.URL, "a", "corp", fast())
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			apikey := fmt.Sprint("user-", i)
			u := c.AsUser(apikey)
			var meta client.Meta
			if _, err := c.NewUser(context.Background(), client.NewUserRequest{UniqueIDSha: apikey}, client.CaptureMeta(&meta)); err != nil {
				errs <- err
				return
			}
			got, err := u.ListChats(context.Background(), client.ListChatsRequest{})
			switch {
			case err != nil:
				errs <- err
			case len(got.Chats) != 1 || got.Chats[0].ConversationID != apikey:
				errs <- fmt.Errorf("user %s called with X-WOOS-KEY %+v", apikey, got.Chats)
			case !generatedKey.MatchString(meta.IdempotencyKey):
				errs <- fmt.Errorf("NewUser's key %q", meta.IdempotencyKey)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	keys := map[string]bool{}
	for _, r := range f.requests() {
		if r.path == "/third_parties/user/new" {
			if r.header.Get("X-WOOS-KEY") != "corp" {
				t.Errorf("NewUser sent X-WOOS-KEY %q: AsUser changed the parent Client", r.header.Get("X-WOOS-KEY"))
			}
			keys[r.header.Get("Idempotency-Key")] = true
		}
	}
	if len(keys) != n {
		t.Errorf("%d distinct keys for %d calls", len(keys), n)
	}
}

package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/imbee/imbee/client"
)

// A corporate's backend registers a customer and sends them a link to chat
// with a bot.
func Example() {
	ctx := context.Background()
	c := client.New("https://chat.example.com", "imba_…", "imbc_…")

	u, err := c.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "customer-42", Platform: "web"})
	if err != nil {
		log.Fatal(err)
	}
	link, err := c.NewToken(ctx, client.NewTokenRequest{
		VirtualUser: "customer-42",
		BotIDSha:    "0e4f…",
		Mail:        "ana@example.com",
		Cellular:    "+34 612 34 56 78",
		MaxRetries:  3,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(u.VirtualUser, link.URL, link.PreviouslyCreated)
}

// User-level calls go through a Client for the user's apikey.
func ExampleClient_AsUser() {
	ctx := context.Background()
	c := client.New("https://chat.example.com", "imba_…", "imbc_…")
	u, err := c.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "customer-42"})
	if err != nil {
		log.Fatal(err)
	}
	ana := c.AsUser(u.APIKey)
	chat, err := ana.CreateChat(ctx, client.CreateChatRequest{
		Type:     client.TypeChat,
		Contacts: []client.Contact{{BotIDSha: "0e4f…"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := ana.SendMessage(ctx, client.SendMessageRequest{
		ConversationID: chat.ConversationID, Text: "hello", ClientMsgID: "order-1234-q1",
	}); err != nil {
		log.Fatal(err)
	}
	page, err := ana.ListMessages(ctx, client.ListMessagesRequest{ConversationID: chat.ConversationID, AfterSeq: new(int64(0))})
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range page.Messages {
		fmt.Println(m.Seq, m.Sender, m.Text)
	}
}

// The parameter at fault, or the wait a rate limit asks for, are in the
// *Error.
func ExampleError() {
	c := client.New("https://chat.example.com", "imba_…", "imbc_…")
	_, err := c.NewToken(context.Background(), client.NewTokenRequest{VirtualUser: "customer-42", BotIDSha: "0e4f…", Mail: "not a mail"})
	var e *client.Error
	switch {
	case err == nil:
	case !errors.As(err, &e):
		log.Fatal(err) // the server could not be reached
	case e.Code == client.CodeParam:
		fmt.Printf("fix %s: %s\n", e.Field, e.Message)
	case e.Code == client.CodeRateLimited:
		fmt.Printf("try again in %v (request %s)\n", e.RetryAfter, e.RequestID)
	default:
		log.Fatal(err)
	}
}

// A caller-chosen Idempotency-Key makes a call safe to repeat even from
// another process: the repeat gets the first answer back, and Meta says so.
func ExampleWithIdempotencyKey() {
	c := client.New("https://chat.example.com", "imba_…", "imbc_…",
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
		client.WithRetry(6, 500*time.Millisecond, 30*time.Second))
	var meta client.Meta
	g, err := c.AsUser("imbk_…").CreateChat(context.Background(), client.CreateChatRequest{
		Type: client.TypeGroup, Name: "Order 1234", Contacts: []client.Contact{{IDSha: "68de…"}},
	}, client.WithIdempotencyKey("order-1234-group"), client.CaptureMeta(&meta))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(g.ConversationID, meta.Replayed, meta.RequestID)
}

// Package client calls an imbee server's REST API (docs/api.md) from Go:
// one method per endpoint, with typed requests and answers whose JSON
// names are the API's own (typos included, such as "celullar").
//
// A Client holds a server's address and a corporate's two secrets, the
// integration token (Authorization) and the corporate token (X-WOOS-KEY).
// The user-level calls (CreateChat, SendMessage, ListMessages, ListChats,
// MarkRead) go through the Client that AsUser returns for a user's apikey.
// A Client is safe for concurrent use.
//
//	c := client.New("https://chat.example.com", auth, corporateToken)
//	u, err := c.NewUser(ctx, client.NewUserRequest{UniqueIDSha: "customer-42"})
//	if err != nil {
//		return err
//	}
//	link, err := c.NewToken(ctx, client.NewTokenRequest{
//		VirtualUser: "customer-42", BotIDSha: botID, Mail: "ana@example.com",
//	})
//	var e *client.Error
//	if errors.As(err, &e) && e.Code == client.CodeParam {
//		log.Printf("fix %s: %s", e.Field, e.Message)
//	}
//	chat, err := c.AsUser(u.APIKey).CreateChat(ctx, client.CreateChatRequest{
//		Type: client.TypeChat, Contacts: []client.Contact{{BotIDSha: botID}},
//	})
//
// # Errors
//
// A call that the server answers with a non-zero code returns an *Error
// with the code, message, parameter at fault, HTTP status, Retry-After and
// X-Request-Id. An answer that is not imbee's (a proxy's HTML 502) is an
// *Error with CodeGeneric and its HTTP status. A failure to reach the
// server is returned as it is, wrapped.
//
// # Retries
//
// Every call that creates or changes something carries an Idempotency-Key:
// a random one, or the caller's (WithIdempotencyKey). Its retries send the
// same key and the same body, so that the server runs it at most once and
// a retry gets the first answer back. Calls are retried, with exponential
// backoff and full jitter (WithRetry), on rate limits (code 8) and on a
// key still in progress (code 10), never sooner than Retry-After; and on
// server errors (HTTP 5xx) and lost answers only when the call is safe to
// repeat: a read (TokenStatus, ListMessages, ListChats) or a keyed call.
// MarkRead, which takes no key, is not repeated then. Other codes are
// never retried. A call stops waiting as soon as its context is done.
//
// # Metadata
//
// Answers are the API's body, nothing more. A caller that wants the
// envelope's time, the request id or whether the answer was an idempotent
// replay passes CaptureMeta.
package client

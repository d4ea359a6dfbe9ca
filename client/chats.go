package client

import (
	"context"
	"time"
)

// Conversation types.
const (
	TypeChat  = "chat"  // 1:1, exactly one contact
	TypeGroup = "group" // one or more contacts
)

// Contact names a member of a new conversation: a user's VirtualUser or a
// bot's bot_idsha as IDSha, or a bot as BotIDSha.
type Contact struct {
	IDSha    string `json:"idsha,omitempty"`
	BotIDSha string `json:"bot_idsha,omitempty"`
}

// CreateChatRequest is the body of /chat/create.
type CreateChatRequest struct {
	Type     string    `json:"type"` // TypeChat or TypeGroup
	Contacts []Contact `json:"contacts"`
	Name     string    `json:"name,omitempty"` // a group's
}

// Member is a member of a conversation.
type Member struct {
	IDSha   string `json:"idsha"`
	IsAdmin int    `json:"isadmin"` // 1 for the creator, 0 for the others
}

// CreateChatResponse is the conversation /chat/create created or found.
type CreateChatResponse struct {
	Contacts       []Member `json:"contacts"` // the creator first
	ConversationID string   `json:"conversationId"`
	// PreviouslyCreated is true when the 1:1 chat of the pair existed.
	PreviouslyCreated bool `json:"previously_created"`
}

// CreateChat creates a conversation, or returns the pair's 1:1 chat
// (POST /chat/create). It is a user-level call: use a Client from AsUser.
func (c *Client) CreateChat(ctx context.Context, req CreateChatRequest, opts ...CallOption) (*CreateChatResponse, error) {
	var out CreateChatResponse
	if err := c.call(ctx, "/chat/create", changing, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// Message is a message of a conversation.
type Message struct {
	ConversationID string    `json:"conversationId"`
	Seq            int64     `json:"seq"` // 1, 2, 3… in commit order
	Sender         string    `json:"sender"`
	SenderIsBot    bool      `json:"sender_is_bot"`
	Text           string    `json:"text"`
	ClientMsgID    string    `json:"clientMsgId,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// SendMessageRequest is the body of /chat/message/send.
type SendMessageRequest struct {
	ConversationID string `json:"conversationId"`
	Text           string `json:"text"`
	// ClientMsgID is the sender's key for the message: a repeat with the
	// same one returns the message already sent, never a second one.
	ClientMsgID string `json:"clientMsgId,omitempty"`
}

// SendMessageResponse is the message sent.
type SendMessageResponse struct {
	Message        Message `json:"message"`
	PreviouslySent bool    `json:"previously_sent"` // the ClientMsgID was used already
}

// SendMessage sends a user's message (POST /chat/message/send). It is a
// user-level call: use a Client from AsUser.
func (c *Client) SendMessage(ctx context.Context, req SendMessageRequest, opts ...CallOption) (*SendMessageResponse, error) {
	var out SendMessageResponse
	if err := c.call(ctx, "/chat/message/send", changing, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListMessagesRequest is the body of /chat/message/list. Without AfterSeq
// or BeforeSeq it asks for the latest messages; set one of them, as in
// AfterSeq: new(int64(12)), to page forwards or backwards.
type ListMessagesRequest struct {
	ConversationID string `json:"conversationId"`
	AfterSeq       *int64 `json:"afterSeq,omitempty"`  // messages after it, oldest first
	BeforeSeq      *int64 `json:"beforeSeq,omitempty"` // messages before it, newest first
	Limit          int    `json:"limit,omitempty"`     // 0: 50; at most 200
}

// ListMessagesResponse is a page of messages.
type ListMessagesResponse struct {
	Messages []Message `json:"messages"`
	HasMore  bool      `json:"has_more"` // there are more beyond the page, in its direction
	LastSeq  int64     `json:"last_seq"`
	ReadSeq  int64     `json:"read_seq"`
}

// ListMessages returns a page of a conversation's messages
// (POST /chat/message/list). It is a user-level call: use a Client from
// AsUser.
func (c *Client) ListMessages(ctx context.Context, req ListMessagesRequest, opts ...CallOption) (*ListMessagesResponse, error) {
	var out ListMessagesResponse
	if err := c.call(ctx, "/chat/message/list", reading, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListChatsRequest is the body of /chat/list.
type ListChatsRequest struct {
	Limit int `json:"limit,omitempty"` // 0: 100; at most 500
}

// ChatSummary is a conversation as the user's chat list shows it.
type ChatSummary struct {
	ConversationID string   `json:"conversationId"`
	Type           string   `json:"type"`
	Name           string   `json:"name"`
	Contacts       []Member `json:"contacts"`
	LastMessage    *Message `json:"last_message"` // nil before the first message
	LastSeq        int64    `json:"last_seq"`
	ReadSeq        int64    `json:"read_seq"`
	Unread         int64    `json:"unread"`
}

// ListChatsResponse is the user's conversations, most recent activity first.
type ListChatsResponse struct {
	Chats []ChatSummary `json:"chats"`
}

// ListChats returns the user's conversations (POST /chat/list). It is a
// user-level call: use a Client from AsUser.
func (c *Client) ListChats(ctx context.Context, req ListChatsRequest, opts ...CallOption) (*ListChatsResponse, error) {
	var out ListChatsResponse
	if err := c.call(ctx, "/chat/list", reading, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// MarkReadRequest is the body of /chat/read.
type MarkReadRequest struct {
	ConversationID string `json:"conversationId"`
	Seq            int64  `json:"seq"`
}

// MarkReadResponse is the user's read mark after the call.
type MarkReadResponse struct {
	ReadSeq int64 `json:"read_seq"`
}

// MarkRead records that the user has read up to Seq (clamped to the last
// message; the mark never moves back) (POST /chat/read). It is a
// user-level call: use a Client from AsUser. It takes no Idempotency-Key,
// so it is not repeated after a server error or a lost answer: call it
// again (it is harmless) if that matters.
func (c *Client) MarkRead(ctx context.Context, req MarkReadRequest, opts ...CallOption) (*MarkReadResponse, error) {
	var out MarkReadResponse
	if err := c.call(ctx, "/chat/read", unkeyed, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

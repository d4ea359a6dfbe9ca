package api

import (
	"context"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/realtime"
)

// Chat list limits, documented in docs/api.md.
const (
	DefaultChatsLimit = 100
	MaxChatsLimit     = 500
)

type chatListRequest struct {
	Limit flexInt `json:"limit"`
}

type chatSummaryView struct {
	ConversationID string                `json:"conversationId"`
	Type           string                `json:"type"`
	Name           string                `json:"name"`
	Contacts       []contactView         `json:"contacts"`
	LastMessage    *realtime.MessageView `json:"last_message"`
	LastSeq        int64                 `json:"last_seq"`
	ReadSeq        int64                 `json:"read_seq"`
	Unread         int64                 `json:"unread"`
}

type chatListResponse struct {
	Chats []chatSummaryView `json:"chats"`
}

// chatList is POST /chat/list: the user's conversations, latest first.
func (s *Server) chatList(ctx context.Context, c *call) (any, error) {
	var req chatListRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	limit, err := limitParam(req.Limit, DefaultChatsLimit, MaxChatsLimit)
	if err != nil {
		return nil, err
	}
	chats, err := s.store.Chats(ctx, c.corporate.ID, c.user.IDSha, limit)
	if err != nil {
		return nil, err
	}
	out := []chatSummaryView{}
	for _, cs := range chats {
		v := chatSummaryView{
			ConversationID: cs.Conversation.PublicID, Type: string(cs.Conversation.Type), Name: cs.Conversation.Name,
			Contacts: chatView(cs.Conversation).Contacts, LastSeq: cs.LastSeq, ReadSeq: cs.ReadSeq, Unread: max(0, cs.LastSeq-cs.ReadSeq),
		}
		if cs.LastMessage != nil {
			v.LastMessage = realtime.View(*cs.LastMessage)
		}
		out = append(out, v)
	}
	return chatListResponse{Chats: out}, nil
}

type chatReadRequest struct {
	ConversationID string  `json:"conversationId"`
	Seq            flexInt `json:"seq"`
}

type chatReadResponse struct {
	ReadSeq int64 `json:"read_seq"`
}

// chatRead is POST /chat/read: the user has read up to seq.
func (s *Server) chatRead(ctx context.Context, c *call) (any, error) {
	var req chatReadRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	conv, err := imbee.CheckID(imbee.SubjectConversation, req.ConversationID)
	if err != nil {
		return nil, err
	}
	if !req.Seq.set {
		return nil, imbee.ParamError("seq", "seq can not be null or empty")
	}
	seq, err := seqParam("seq", req.Seq)
	if err != nil {
		return nil, err
	}
	read, err := s.writes.MarkRead(ctx, c.corporate.ID, conv, c.user.IDSha, *seq)
	if err != nil {
		return nil, err
	}
	return chatReadResponse{ReadSeq: read}, nil
}

package api

import (
	"context"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/realtime"
)

// Message page limits, documented in docs/api.md.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

type messageSendRequest struct {
	ConversationID string `json:"conversationId"`
	Text           string `json:"text"`
	ClientMsgID    string `json:"clientMsgId"`
}

// botMessageSendRequest is a bot's send. bot_idsha is no parameter of a
// user's send, where it is ignored like any unknown field. (Not embedding
// messageSendRequest: a type error's field would then be named after it.)
type botMessageSendRequest struct {
	ConversationID string `json:"conversationId"`
	Text           string `json:"text"`
	ClientMsgID    string `json:"clientMsgId"`
	BotIDSha       string `json:"bot_idsha"`
}

type messageSendResponse struct {
	Message        *realtime.MessageView `json:"message"`
	PreviouslySent bool                  `json:"previously_sent"`
}

// messageRequest reads the parts of a send common to users and bots by the
// domain's rule.
func messageRequest(req *messageSendRequest) (imbee.MessageRequest, error) {
	return imbee.NewMessageRequest(req.ConversationID, req.Text, req.ClientMsgID)
}

// messageSend is POST /chat/message/send, by a member with their apikey.
func (s *Server) messageSend(ctx context.Context, c *call) (any, error) {
	var req messageSendRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	mr, err := messageRequest(&req)
	if err != nil {
		return nil, err
	}
	mr.CorporateID, mr.Sender = c.corporate.ID, c.user.IDSha
	return s.send(ctx, mr)
}

// botMessageSend is POST /bot/message/send: a bot answers, with the
// corporate's credentials.
func (s *Server) botMessageSend(ctx context.Context, c *call) (any, error) {
	var req botMessageSendRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	bot, err := imbee.CheckID(imbee.SubjectBot, req.BotIDSha)
	if err != nil {
		return nil, err
	}
	mr, err := messageRequest(&messageSendRequest{ConversationID: req.ConversationID, Text: req.Text, ClientMsgID: req.ClientMsgID})
	if err != nil {
		return nil, err
	}
	if _, err := s.store.BotByIDSha(ctx, c.corporate.ID, bot); err != nil {
		return nil, err
	}
	mr.CorporateID, mr.Sender, mr.SenderIsBot = c.corporate.ID, bot, true
	return s.send(ctx, mr)
}

// send stores a message (its sockets are told, its webhooks queued).
func (s *Server) send(ctx context.Context, mr imbee.MessageRequest) (any, error) {
	m, existed, err := s.writes.SendMessage(ctx, mr)
	if err != nil {
		return nil, err
	}
	return messageSendResponse{Message: realtime.View(m), PreviouslySent: existed}, nil
}

type messageListRequest struct {
	ConversationID string  `json:"conversationId"`
	AfterSeq       flexInt `json:"afterSeq"`
	BeforeSeq      flexInt `json:"beforeSeq"`
	Limit          flexInt `json:"limit"`
}

type messageListResponse struct {
	Messages []*realtime.MessageView `json:"messages"`
	HasMore  bool                    `json:"has_more"`
	LastSeq  int64                   `json:"last_seq"`
	ReadSeq  int64                   `json:"read_seq"`
}

// seqParam reads an optional non-negative seq.
func seqParam(field string, f flexInt) (*int64, error) {
	switch {
	case !f.set:
		return nil, nil
	case f.bad || f.n < 0:
		return nil, imbee.ParamError(field, "%s must be an integer of at least 0", field)
	}
	return &f.n, nil
}

// limitParam reads an optional page size.
func limitParam(f flexInt, def, most int) (int, error) {
	switch {
	case !f.set:
		return def, nil
	case f.bad || f.n < 1:
		return 0, imbee.ParamError("limit", "limit must be an integer of at least 1")
	case f.n > int64(most):
		return 0, imbee.ParamError("limit", "limit is at most %d", most)
	}
	return int(f.n), nil
}

// messageList is POST /chat/message/list.
func (s *Server) messageList(ctx context.Context, c *call) (any, error) {
	var req messageListRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	conv, err := imbee.CheckID(imbee.SubjectConversation, req.ConversationID)
	if err != nil {
		return nil, err
	}
	var p imbee.MessagePage
	if p.After, err = seqParam("afterSeq", req.AfterSeq); err != nil {
		return nil, err
	}
	if p.Before, err = seqParam("beforeSeq", req.BeforeSeq); err != nil {
		return nil, err
	}
	if p.After != nil && p.Before != nil {
		return nil, imbee.ParamError("beforeSeq", "give afterSeq or beforeSeq, not both")
	}
	if p.Limit, err = limitParam(req.Limit, DefaultPageSize, MaxPageSize); err != nil {
		return nil, err
	}
	ms, more, last, read, err := s.store.Messages(ctx, c.corporate.ID, conv, c.user.IDSha, p)
	if err != nil {
		return nil, err
	}
	resp := messageListResponse{Messages: []*realtime.MessageView{}, HasMore: more, LastSeq: last, ReadSeq: read}
	for _, m := range ms {
		resp.Messages = append(resp.Messages, realtime.View(m))
	}
	return resp, nil
}

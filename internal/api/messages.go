package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/realtime"
)

// socketRetryAfter is the Retry-After, in seconds, of an upgrade refused
// for too many open sockets: a guess, since sockets close when their
// clients go.
const socketRetryAfter = 5

// Page limits, documented in docs/api.md.
const (
	DefaultPageSize   = 50
	MaxPageSize       = 200
	DefaultChatsLimit = 100
	MaxChatsLimit     = 500
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

type botWebhookRequest struct {
	BotIDSha string `json:"bot_idsha"`
	URL      string `json:"url"`
}

// botWebhookResponse's keys are in the order the answer has always had
// (sorted), not the request's.
type botWebhookResponse struct {
	BotIDSha string `json:"bot_idsha"`
	Secret   string `json:"secret"`
	URL      string `json:"url"`
}

// botWebhook is POST /bot/webhook: set (or remove) a bot's webhook and get
// its new signing secret.
func (s *Server) botWebhook(ctx context.Context, c *call) (any, error) {
	var req botWebhookRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	bot, err := imbee.CheckID(imbee.SubjectBot, req.BotIDSha)
	if err != nil {
		return nil, err
	}
	hook, err := imbee.CheckWebhookURL(req.URL, s.cfg.AllowPrivateWebhooks)
	if err != nil {
		return nil, err
	}
	secret, err := s.writes.SetBotWebhook(ctx, c.corporate.ID, bot, hook)
	if err != nil {
		return nil, err
	}
	return botWebhookResponse{BotIDSha: bot, Secret: secret, URL: hook}, nil
}

// socket is GET /chat/socket?conversationId=…&afterSeq=…: a member's
// WebSocket, authenticated like the API (Authorization and the apikey).
// It closes (1008) when the user's or the corporate's credentials are
// rotated or the corporate is disabled; at most Config.MaxSockets are open
// per apikey, on this server (code 8 beyond).
func (s *Server) socket(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	info(r).route, info(r).envelope = "/chat/socket", true
	if r.Method != http.MethodGet {
		info(r).code = imbee.CodeGeneric
		w.Header().Set("Allow", "GET")
		writeEnvelope(w, http.StatusMethodNotAllowed, start, imbee.CodeGeneric, "method not allowed: use GET", nil)
		return
	}
	client, ok := s.authAllowed(w, r, start)
	if !ok {
		return
	}
	// Read before the credentials are: a revocation after it is applied
	// to this socket, even one applied before it subscribes.
	since := s.cfg.Events.Since(r.Context())
	corp, user, err := s.store.AuthenticateUser(r.Context(), bearer(r.Header.Get("Authorization")), strings.TrimSpace(r.Header.Get("X-WOOS-KEY")))
	if err != nil {
		s.authFailed(client, err)
		writeError(w, r, start, err)
		return
	}
	info(r).corporateID = corp.ID
	if wait, ok := s.allow(w, corp); !ok {
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		writeError(w, r, start, imbee.Errorf(imbee.CodeRateLimited, "too many requests: retry after %d s", wait))
		return
	}
	conv, err := imbee.CheckID(imbee.SubjectConversation, r.URL.Query().Get("conversationId"))
	if err != nil {
		writeError(w, r, start, err)
		return
	}
	var after int64
	if v := r.URL.Query().Get("afterSeq"); v != "" {
		if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
			writeError(w, r, start, imbee.ParamError("afterSeq", "afterSeq must be an integer of at least 0"))
			return
		}
	}
	member, err := s.store.IsMember(r.Context(), corp.ID, conv, user.IDSha)
	if err != nil {
		writeError(w, r, start, err)
		return
	}
	if !member {
		writeError(w, r, start, imbee.NotFound(imbee.SubjectConversation, "no such conversation of yours"))
		return
	}
	sub, err := s.cfg.Events.Subscribe(realtime.Grant{CorporateID: corp.ID, ConversationID: conv,
		Key: "apikey:" + strconv.FormatInt(user.ID, 10), UserID: user.ID, Since: since})
	if errors.Is(err, realtime.ErrTooManySockets) {
		w.Header().Set("Retry-After", strconv.Itoa(socketRetryAfter))
		writeError(w, r, start, imbee.Errorf(imbee.CodeRateLimited, "too many open sockets for this apikey: close one, then retry"))
		return
	}
	info(r).code = imbee.CodeOK
	realtime.Serve(w, r, s.cfg.Events, sub, s.store, s.cfg.Log, after)
}

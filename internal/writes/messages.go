package writes

import (
	"context"

	"github.com/imbee/imbee"
)

// SendMessage stores a message (from the API, a bot or the web chat) and,
// when it is new, tells the conversation's sockets, wakes the webhook
// worker for the bots' events committed with it and queues the pushes to
// members who are not looking. A repeat (same
// clientMsgId) tells no one: existed is true and m is the stored message.
func (r *Runner) SendMessage(ctx context.Context, req imbee.MessageRequest) (m imbee.Message, existed bool, err error) {
	m, existed, err = r.store.SendMessage(ctx, req)
	if err != nil || existed {
		return m, existed, err
	}
	r.fx.Events.Publish(imbee.Event{Type: "message", CorporateID: m.CorporateID, ConversationID: m.ConversationID,
		Seq: m.Seq, Message: &m, Horizon: m.Horizon})
	r.fx.Webhooks.Kick()
	r.fx.Push.Notify(m)
	return m, false, nil
}

// MarkRead records that member has read a conversation up to seq, and
// tells its sockets the read mark it now has.
func (r *Runner) MarkRead(ctx context.Context, corporateID int64, conversationID, member string, seq int64) (int64, error) {
	read, err := r.store.MarkRead(ctx, corporateID, conversationID, member, seq)
	if err != nil {
		return read, err
	}
	r.fx.Events.Publish(imbee.Event{Type: "read", CorporateID: corporateID, ConversationID: conversationID, Member: member, Seq: read})
	return read, nil
}

// CreateConversation creates a chat or a group (or finds the 1:1 chat
// that exists). Nothing follows: members learn of it by its first message.
func (r *Runner) CreateConversation(ctx context.Context, req imbee.ChatRequest) (imbee.Conversation, error) {
	return r.store.CreateConversation(ctx, req)
}

package client

import "context"

// BotSendMessageRequest is the body of /bot/message/send.
type BotSendMessageRequest struct {
	BotIDSha       string `json:"bot_idsha"`
	ConversationID string `json:"conversationId"`
	Text           string `json:"text"`
	// ClientMsgID makes a repeat return the message already sent; answering
	// a webhook event, use its webhook-id.
	ClientMsgID string `json:"clientMsgId,omitempty"`
}

// BotSendMessage sends a bot's message to a conversation it is a member of
// (POST /bot/message/send), with the corporate's credentials.
func (c *Client) BotSendMessage(ctx context.Context, req BotSendMessageRequest, opts ...CallOption) (*SendMessageResponse, error) {
	var out SendMessageResponse
	if err := c.call(ctx, "/bot/message/send", changing, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetBotWebhookRequest is the body of /bot/webhook.
type SetBotWebhookRequest struct {
	BotIDSha string `json:"bot_idsha"`
	URL      string `json:"url"` // "" removes the webhook
}

// SetBotWebhookResponse is the bot's webhook and its new signing secret.
type SetBotWebhookResponse struct {
	BotIDSha string `json:"bot_idsha"`
	URL      string `json:"url"`
	// Secret signs the events, in Standard Webhooks' form (whsec_…). It is
	// shown only now: a new one each call.
	Secret string `json:"secret"`
}

// SetBotWebhook sets or removes a bot's webhook (POST /bot/webhook).
func (c *Client) SetBotWebhook(ctx context.Context, req SetBotWebhookRequest, opts ...CallOption) (*SetBotWebhookResponse, error) {
	var out SetBotWebhookResponse
	if err := c.call(ctx, "/bot/webhook", changing, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

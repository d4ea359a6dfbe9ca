package api

import (
	"context"

	"github.com/imbee/imbee"
)

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

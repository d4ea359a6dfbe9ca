package linkpage

import "github.com/imbee/imbee/internal/realtime"

// The chat's JSON answers. Their keys keep the order they have always had:
// sorted, as when they were maps.

// errorResponse is a JSON call's failure.
type errorResponse struct {
	Error string `json:"error"`
}

// historyResponse is GET /w/{conversation}/messages.
type historyResponse struct {
	HasMore  bool                    `json:"has_more"`
	LastSeq  int64                   `json:"last_seq"`
	Messages []*realtime.MessageView `json:"messages"`
}

// sendResponse is POST /w/{conversation}/messages.
type sendResponse struct {
	Message        *realtime.MessageView `json:"message"`
	PreviouslySent bool                  `json:"previously_sent"`
}

// What the pages' templates are given. Title is every page's <title>.

// landingPage is the page behind a link: what it opens, before it is spent.
type landingPage struct {
	Title, BotName, CorporateName string
	UsesLeft                      int
	DateLimit                     string
}

// chatPage is the web chat a session opens.
type chatPage struct {
	Title, BotName, CorporateName string
	Me, ConversationID            string
	Until                         string // when the session ends
}

// endedPage says why there is nothing to show: a link used up, expired or
// withdrawn, a session ended, a page not found.
type endedPage struct {
	Title, Message string
}

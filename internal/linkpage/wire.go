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
	page
	Invite, Open, Uses string
}

// page is what every page has: its title, its language and that
// language's strings.
type page struct {
	Title string
	Lang  string
	T     texts
}

// chatPage is the web chat a session opens.
type chatPage struct {
	page
	Heading, CorporateName string
	Me, ConversationID     string
	Base                   string // the chat's path, which its calls extend
	App                    bool   // a chat of the web app (a way back to the list, signing out)
	Until                  string // when the session ends
}

// pushResponse answers a push subscription or its removal.
type pushResponse struct {
	Subscribed bool `json:"subscribed"`
}

// readResponse answers a read mark: where the mark stands now.
type readResponse struct {
	ReadSeq int64 `json:"read_seq"`
}

// signinPage is the web app's sign-in form, again with an error after a
// failed try.
type signinPage struct {
	page
	VirtualUser, Error string
}

// chatsPage is the web app's list of the signed-in user's chats.
type chatsPage struct {
	page
	CorporateName, Me string
	VAPIDPublic       string // for the browser to subscribe with
	Chats             []chatItem
	Bots              []botItem // the corporate's bots, to start a chat with
}

type botItem struct{ IDSha, Name string }

type chatItem struct {
	ConversationID, Name, Last string
	Unread                     int64
}

// endedPage says why there is nothing to show: a link used up, expired or
// withdrawn, a session ended, a page not found.
type endedPage struct {
	page
	Message string
	Ask     bool // say to ask for a new link
}

package api

import (
	"context"
	"strings"

	"github.com/imbee/imbee"
)

// MaxGroupContacts bounds a group's size at creation.
const MaxGroupContacts = 256

type contactRef struct {
	IDSha    string `json:"idsha"`
	BotIDSha string `json:"bot_idsha"`
}

type chatCreateRequest struct {
	Type     string       `json:"type"`
	Name     string       `json:"name"`
	Contacts []contactRef `json:"contacts"`
}

type contactView struct {
	IDSha   string `json:"idsha"`
	IsAdmin int    `json:"isadmin"`
}

type chatCreateResponse struct {
	Contacts          []contactView `json:"contacts"`
	ConversationID    string        `json:"conversationId"`
	PreviouslyCreated bool          `json:"previously_created"`
}

// chatCreate is POST /chat/create, called with the creating user's apikey.
func (s *Server) chatCreate(ctx context.Context, c *call) (any, error) {
	cr, err := chatParams(c.body, c.corporate.ID, c.user.IDSha)
	if err != nil {
		return nil, err
	}
	conv, err := s.writes.CreateConversation(ctx, cr)
	if err != nil {
		return nil, err
	}
	return chatView(conv), nil
}

// chatRepeat answers a repeat of a 1:1 /chat/create from the credential
// check's read (see repeatFunc).
func (s *Server) chatRepeat(ctx context.Context, auth, key string, c *call) (any, error) {
	// The creator is not known yet: chatParams without it skips only the
	// check for a chat with oneself, and such a chat is never found.
	cr, err := chatParams(c.body, 0, "")
	if err != nil || cr.Type != imbee.ConversationChat {
		return nil, nil
	}
	corp, u, conv, found, err := s.store.KnownChat(ctx, auth, key, cr.Contacts[0])
	if err != nil {
		return nil, err
	}
	c.checked, c.corporate, c.user = true, corp, u
	if !found {
		return nil, nil
	}
	return chatView(conv), nil
}

// chatParams validates a /chat/create body sent by the user creator.
func chatParams(body []byte, corporateID int64, creator string) (imbee.ChatRequest, error) {
	var req chatCreateRequest
	if err := decode(body, &req); err != nil {
		return imbee.ChatRequest{}, err
	}
	cr := imbee.ChatRequest{CorporateID: corporateID, Creator: creator, Type: imbee.ConversationType(req.Type)}
	switch cr.Type {
	case imbee.ConversationChat, imbee.ConversationGroup:
	default:
		return cr, imbee.ParamError("type", `type must be "chat" or "group"`)
	}
	if err := imbee.CheckText(imbee.SubjectChatName, req.Name); err != nil {
		return cr, err
	}
	cr.Name = req.Name
	// The list may name the creator too; a longer one cannot be a valid
	// group, whatever its repeats.
	if len(req.Contacts) > MaxGroupContacts+1 {
		return cr, imbee.ParamError("contacts", "a group has at most %d contacts", MaxGroupContacts)
	}
	seen := make(map[string]bool) // not slices.Contains: a 1 MiB body lists ~60,000 contacts
	for _, ref := range req.Contacts {
		id := strings.TrimSpace(ref.IDSha)
		if id == "" {
			id = strings.TrimSpace(ref.BotIDSha)
		}
		switch {
		case id == "":
			return cr, imbee.ParamError("contacts", "every contact needs an idsha")
		case imbee.CheckText(imbee.SubjectContact, id) != nil:
			return cr, imbee.ParamError("contacts", "a contact's idsha is not a valid id")
		case id == creator && cr.Type == imbee.ConversationChat:
			return cr, imbee.ParamError("contacts", "a chat with oneself is not allowed")
		case id == creator, seen[id]:
			continue // the creator is always a member; a contact counts once
		}
		seen[id] = true
		cr.Contacts = append(cr.Contacts, id)
	}
	switch {
	case cr.Type == imbee.ConversationChat && len(cr.Contacts) != 1:
		return cr, imbee.ParamError("contacts", "a chat has exactly one contact")
	case cr.Type == imbee.ConversationGroup && len(cr.Contacts) == 0:
		return cr, imbee.ParamError("contacts", "a group needs at least one contact")
	case len(cr.Contacts) > MaxGroupContacts:
		return cr, imbee.ParamError("contacts", "a group has at most %d contacts", MaxGroupContacts)
	}
	return cr, nil
}

func chatView(conv imbee.Conversation) chatCreateResponse {
	resp := chatCreateResponse{ConversationID: conv.PublicID, PreviouslyCreated: conv.Existing}
	for _, m := range conv.Members {
		admin := 0
		if m.IsAdmin {
			admin = 1
		}
		resp.Contacts = append(resp.Contacts, contactView{IDSha: m.IDSha, IsAdmin: admin})
	}
	return resp
}

package api

import (
	"context"
	"slices"
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
	var req chatCreateRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	cr := imbee.ChatRequest{CorporateID: c.corporate.ID, Creator: c.user.IDSha, Type: imbee.ConversationType(req.Type)}
	switch cr.Type {
	case imbee.ConversationChat, imbee.ConversationGroup:
	default:
		return nil, imbee.ParamError("type", `type must be "chat" or "group"`)
	}
	if err := checkText("name", req.Name); err != nil {
		return nil, err
	}
	cr.Name = req.Name
	for _, ref := range req.Contacts {
		id := strings.TrimSpace(ref.IDSha)
		if id == "" {
			id = strings.TrimSpace(ref.BotIDSha)
		}
		switch {
		case id == "":
			return nil, imbee.ParamError("contacts", "every contact needs an idsha")
		case checkText("contacts", id) != nil:
			return nil, imbee.ParamError("contacts", "a contact's idsha is not a valid id")
		case id == c.user.IDSha && cr.Type == imbee.ConversationChat:
			return nil, imbee.ParamError("contacts", "a chat with oneself is not allowed")
		case id == c.user.IDSha, slices.Contains(cr.Contacts, id):
			continue // the creator is always a member; a contact counts once
		}
		cr.Contacts = append(cr.Contacts, id)
	}
	switch {
	case cr.Type == imbee.ConversationChat && len(cr.Contacts) != 1:
		return nil, imbee.ParamError("contacts", "a chat has exactly one contact")
	case cr.Type == imbee.ConversationGroup && len(cr.Contacts) == 0:
		return nil, imbee.ParamError("contacts", "a group needs at least one contact")
	case len(cr.Contacts) > MaxGroupContacts:
		return nil, imbee.ParamError("contacts", "a group has at most %d contacts", MaxGroupContacts)
	}
	conv, err := s.store.CreateConversation(ctx, cr)
	if err != nil {
		return nil, err
	}
	resp := chatCreateResponse{ConversationID: conv.PublicID, PreviouslyCreated: conv.Existing}
	for _, m := range conv.Members {
		admin := 0
		if m.IsAdmin {
			admin = 1
		}
		resp.Contacts = append(resp.Contacts, contactView{IDSha: m.IDSha, IsAdmin: admin})
	}
	return resp, nil
}

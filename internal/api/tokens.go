package api

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/imbee/imbee"
)

// maxFlexIntString bounds an integer sent as a string, blanks included:
// any int64 fits in 20 characters.
const maxFlexIntString = 32

// flexInt is an integer that may also arrive as a string of digits ("10").
type flexInt struct {
	set bool
	n   int64
	bad bool
}

func (f *flexInt) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	f.set = true
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if len(s) > maxFlexIntString {
			f.bad = true
			return nil
		}
		b = []byte(strings.TrimSpace(s))
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		f.bad = true
		return nil
	}
	f.n = n
	return nil
}

type tokenNewRequest struct {
	VirtualUser string  `json:"virtual_user"`
	VirutalUser string  `json:"virutal_user"` // the document's own spelling
	BotIDSha    string  `json:"bot_idsha"`
	Mail        string  `json:"mail"`
	Celullar    string  `json:"celullar"` // the document's own spelling
	Cellular    string  `json:"cellular"`
	MaxRetries  flexInt `json:"max_retries"`
	DateLimit   string  `json:"date_limit"`
}

type tokenNewResponse struct {
	URL               string `json:"url"`
	UserIDSha         string `json:"user_idsha"`
	DateLimit         string `json:"date_limit"`
	MaxRetries        int    `json:"max_retries"`
	PreviouslyCreated bool   `json:"previously_created"`
}

// tokenNew is POST /token/new.
func (s *Server) tokenNew(ctx context.Context, c *call) (any, error) {
	var req tokenNewRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	lr, err := s.linkRequest(c.corporate, &req)
	if err != nil {
		return nil, err
	}
	link, err := s.writes.IssueLink(ctx, lr)
	if err != nil {
		return nil, err
	}
	return tokenNewResponse{
		URL:               s.cfg.PublicURL + "/l/" + link.Token,
		UserIDSha:         link.UserIDSha,
		DateLimit:         link.DateLimit,
		MaxRetries:        link.MaxUses,
		PreviouslyCreated: link.Existing,
	}, nil
}

// linkRequest reads a /token/new by the domain's rule (imbee.NewLinkRequest),
// naming its errors as the request named the parameters.
func (s *Server) linkRequest(corp imbee.Corporate, req *tokenNewRequest) (imbee.LinkRequest, error) {
	in := imbee.LinkInput{UniqueID: req.VirtualUser, BotIDSha: req.BotIDSha, Mail: req.Mail, Phone: req.Celullar,
		DateLimit: req.DateLimit, SendsPerHour: s.cfg.RecipientLimit}
	as := aliases{}
	if in.UniqueID == "" && req.VirutalUser != "" {
		in.UniqueID, as[imbee.SubjectUser] = req.VirutalUser, "virutal_user"
	}
	if in.Phone == "" && req.Cellular != "" {
		in.Phone = req.Cellular
		if strings.TrimSpace(in.Phone) != "" { // with neither, the answer names celullar
			as[imbee.SubjectPhone] = "cellular"
		}
	}
	if req.MaxRetries.set {
		in.MaxUses, in.MaxUsesNotInteger = &req.MaxRetries.n, req.MaxRetries.bad
	}
	lr, err := imbee.NewLinkRequest(corp, in, s.cfg.Now())
	return lr, withFieldNames(err, as)
}

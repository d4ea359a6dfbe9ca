package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/imbee/imbee"
)

// userBulkResult is one item's answer: user/new's on success, the error's
// code, message and field on failure.
type userBulkResult struct {
	Index   int        `json:"index"`
	Code    imbee.Code `json:"code"`
	Message string     `json:"message"`
	*userNewResponse
	Field string `json:"field,omitempty"`
}

type userBulkResponse struct {
	Results  []userBulkResult `json:"results"`
	Created  int              `json:"created"`
	Existing int              `json:"existing"`
	Failed   int              `json:"failed"`
}

// userBulk is POST /third_parties/user/bulk {users: [...]}: user/new for up
// to imbee.MaxBulkUsers users, the valid ones stored in one transaction.
// An invalid item fails alone.
func (s *Server) userBulk(ctx context.Context, c *call) (any, error) {
	items, err := userBulkItems(c.body)
	if err != nil {
		return nil, err
	}
	resp := userBulkResponse{Results: make([]userBulkResult, len(items))}
	var specs []imbee.UserSpec
	var valid []int // the index of each spec's item
	for i, item := range items {
		spec, err := userBulkItem(i, item)
		var e *imbee.Error
		if errors.As(err, &e) {
			resp.Results[i] = userBulkResult{Index: i, Code: e.Code, Message: e.Message, Field: e.Field}
			resp.Failed++
			continue
		}
		if err != nil {
			return nil, err
		}
		specs = append(specs, spec)
		valid = append(valid, i)
	}
	if len(specs) > 0 {
		regs, err := s.writes.RegisterUsers(ctx, c.corporate.ID, specs)
		if err != nil {
			return nil, err
		}
		for k, r := range regs {
			i := valid[k]
			resp.Results[i] = userBulkResult{Index: i, Code: imbee.CodeOK, Message: "Ok", userNewResponse: &userNewResponse{
				VirtualUser: r.User.IDSha, Pass: r.User.Pass, APIKey: r.User.APIKey, PreviouslyRegistered: r.Existed}}
			if r.Existed {
				resp.Existing++
			} else {
				resp.Created++
			}
		}
	}
	return resp, nil
}

// userBulkItems returns the items of the body's users array.
func userBulkItems(body []byte) ([]json.RawMessage, error) {
	var req struct {
		Users json.RawMessage `json:"users"`
	}
	if err := decode(body, &req); err != nil {
		return nil, err
	}
	users := bytes.TrimSpace(req.Users)
	if len(users) == 0 || string(users) == "null" {
		return nil, imbee.ParamError("users", "users can not be null or empty")
	}
	var items []json.RawMessage
	if users[0] != '[' || json.Unmarshal(users, &items) != nil {
		return nil, imbee.ParamError("users", "users must be an array")
	}
	switch {
	case len(items) == 0:
		return nil, imbee.ParamError("users", "users can not be null or empty")
	case len(items) > imbee.MaxBulkUsers:
		return nil, imbee.ParamError("users", "users has %d items: at most %d are allowed", len(items), imbee.MaxBulkUsers)
	}
	return items, nil
}

// userBulkItem validates item i as user/new validates its body; errors
// name the field within the item, e.g. users[3].uniqueIdSha.
func userBulkItem(i int, item json.RawMessage) (imbee.UserSpec, error) {
	at := fmt.Sprintf("users[%d]", i)
	if item = bytes.TrimSpace(item); len(item) == 0 || item[0] != '{' {
		return imbee.UserSpec{}, imbee.ParamError(at, "%s must be an object", at)
	}
	uniqueID, dev, err := userNewParams(item)
	spec := imbee.UserSpec{UniqueID: uniqueID, Device: dev}
	var e *imbee.Error
	if errors.As(err, &e) {
		e.Field = at + "." + e.Field
	}
	return spec, err
}

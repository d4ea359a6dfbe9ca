package api

import (
	"context"

	"github.com/imbee/imbee"
)

type userNewRequest struct {
	UniqueIDSha string `json:"uniqueIdSha"`
	Platform    string `json:"platform"`
	DeviceName  string `json:"deviceName"`
	HardwareID  string `json:"hardwareId"`
	OSVersion   string `json:"osVersion"`
}

type userNewResponse struct {
	VirtualUser          string `json:"virtualUser"`
	Pass                 string `json:"pass"`
	APIKey               string `json:"apikey"`
	PreviouslyRegistered bool   `json:"previously_registered"`
}

// userNew is POST /third_parties/user/new.
func (s *Server) userNew(ctx context.Context, c *call) (any, error) {
	uniqueID, dev, err := userNewParams(c.body)
	if err != nil {
		return nil, err
	}
	u, existed, err := s.writes.RegisterUser(ctx, c.corporate.ID, uniqueID, dev)
	if err != nil {
		return nil, err
	}
	return userNewResponse{VirtualUser: u.IDSha, Pass: u.Pass, APIKey: u.APIKey, PreviouslyRegistered: existed}, nil
}

// userRotateResponse's keys are in the order the answer has always had
// (sorted): not userNewResponse's.
type userRotateResponse struct {
	APIKey      string `json:"apikey"`
	Pass        string `json:"pass"`
	VirtualUser string `json:"virtualUser"`
}

// userRotate is POST /third_parties/user/rotate {uniqueIdSha}: the user
// gets a new pass and apikey, and the old ones stop working at once.
func (s *Server) userRotate(ctx context.Context, c *call) (any, error) {
	var req struct {
		UniqueIDSha string `json:"uniqueIdSha"` // the device fields are user/new's alone
	}
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	uniqueID, err := imbee.CheckID(imbee.SubjectUser, req.UniqueIDSha)
	if err != nil {
		return nil, withFieldNames(err, userNames)
	}
	u, err := s.writes.RotateUser(ctx, c.corporate.ID, uniqueID)
	if err != nil {
		return nil, withFieldNames(err, userNames)
	}
	return userRotateResponse{APIKey: u.APIKey, Pass: u.Pass, VirtualUser: u.IDSha}, nil
}

// userRepeat answers a repeat of /third_parties/user/new whose device was
// seen recently from the credential check's read (see repeatFunc).
func (s *Server) userRepeat(ctx context.Context, auth, key string, c *call) (any, error) {
	uniqueID, dev, err := userNewParams(c.body)
	if err != nil {
		return nil, nil
	}
	corp, u, found, err := s.store.KnownUser(ctx, auth, key, uniqueID, dev)
	if err != nil {
		return nil, err
	}
	c.checked, c.corporate = true, corp
	if !found {
		return nil, nil
	}
	return userNewResponse{VirtualUser: u.IDSha, Pass: u.Pass, APIKey: u.APIKey, PreviouslyRegistered: true}, nil
}

// userNewParams validates a /third_parties/user/new body. dev is nil when
// no device field is given.
func userNewParams(body []byte) (uniqueID string, dev *imbee.Device, err error) {
	var req userNewRequest
	if err := decode(body, &req); err != nil {
		return "", nil, err
	}
	spec, err := NewUserSpec(req.UniqueIDSha, imbee.Device{Platform: req.Platform, DeviceName: req.DeviceName, HardwareID: req.HardwareID, OSVersion: req.OSVersion})
	return spec.UniqueID, spec.Device, err
}

// NewUserSpec is the domain's rule for one user (imbee.NewUserSpec) with
// its errors named as /third_parties/user/new names its parameters: the
// bulk call applies it to each item, and imbee users import (whose
// columns are those parameters) to each row.
func NewUserSpec(uniqueID string, dev imbee.Device) (imbee.UserSpec, error) {
	spec, err := imbee.NewUserSpec(uniqueID, dev)
	return spec, withFieldNames(err, userNames)
}

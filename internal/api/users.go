package api

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/imbee/imbee"
)

// MaxIDLength bounds integrator-given ids and device fields, in characters.
const MaxIDLength = 255

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
	var req userNewRequest
	if err := decode(c.body, &req); err != nil {
		return nil, err
	}
	uniqueID, err := requiredID("uniqueIdSha", req.UniqueIDSha)
	if err != nil {
		return nil, err
	}
	var dev *imbee.Device
	fields := []struct{ name, value string }{
		{"platform", req.Platform}, {"deviceName", req.DeviceName},
		{"hardwareId", req.HardwareID}, {"osVersion", req.OSVersion},
	}
	for _, f := range fields {
		if utf8.RuneCountInString(f.value) > MaxIDLength {
			return nil, imbee.ParamError(f.name, "%s is longer than %d characters", f.name, MaxIDLength)
		}
		if f.value != "" {
			dev = &imbee.Device{Platform: req.Platform, DeviceName: req.DeviceName, HardwareID: req.HardwareID, OSVersion: req.OSVersion}
		}
	}
	u, existed, err := s.store.RegisterUser(ctx, c.corporate.ID, uniqueID, dev)
	if err != nil {
		return nil, err
	}
	return userNewResponse{VirtualUser: u.IDSha, Pass: u.Pass, APIKey: u.APIKey, PreviouslyRegistered: existed}, nil
}

// requiredID checks an integrator-given id: present, not blank, bounded.
// It is kept exactly as sent: "a" and " a" are different ids.
func requiredID(field, v string) (string, error) {
	switch {
	case strings.TrimSpace(v) == "":
		return "", imbee.ParamError(field, "%s can not be null or empty", field)
	case utf8.RuneCountInString(v) > MaxIDLength:
		return "", imbee.ParamError(field, "%s is longer than %d characters", field, MaxIDLength)
	case !utf8.ValidString(v):
		return "", imbee.ParamError(field, "%s is not valid UTF-8", field)
	}
	return v, nil
}

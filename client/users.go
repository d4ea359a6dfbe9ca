package client

import "context"

// MaxBulkUsers is the most users one BulkUsers call takes.
const MaxBulkUsers = 1000

// NewUserRequest is the body of /third_parties/user/new. The device fields
// are optional; together they name the device the user calls from.
type NewUserRequest struct {
	UniqueIDSha string `json:"uniqueIdSha"` // the integrator's id for the person, kept exactly as sent
	Platform    string `json:"platform,omitempty"`
	DeviceName  string `json:"deviceName,omitempty"`
	HardwareID  string `json:"hardwareId,omitempty"`
	OSVersion   string `json:"osVersion,omitempty"`
}

// User is a user's credentials.
type User struct {
	VirtualUser string `json:"virtualUser"` // the user's id on the platform (idsha elsewhere)
	Pass        string `json:"pass"`
	APIKey      string `json:"apikey"` // for AsUser
	// PreviouslyRegistered is true when the user existed already (NewUser).
	PreviouslyRegistered bool `json:"previously_registered"`
}

// NewUser creates a user, or returns the existing one with the same
// credentials (POST /third_parties/user/new).
func (c *Client) NewUser(ctx context.Context, req NewUserRequest, opts ...CallOption) (*User, error) {
	var out User
	if err := c.call(ctx, "/third_parties/user/new", changing, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// BulkUsersRequest is the body of /third_parties/user/bulk.
type BulkUsersRequest struct {
	Users []NewUserRequest `json:"users"` // 1 to MaxBulkUsers
}

// BulkUsersResponse has one result per requested user, in order, and the
// counts: Created + Existing + Failed is the number of users asked for.
type BulkUsersResponse struct {
	Results  []BulkUserResult `json:"results"`
	Created  int              `json:"created"`
	Existing int              `json:"existing"`
	Failed   int              `json:"failed"`
}

// BulkUserResult is one item's outcome: with Code 0, the user's
// credentials; otherwise (code 6) Message and Field say what is wrong.
type BulkUserResult struct {
	Index   int    `json:"index"` // the item's position in the request
	Code    int    `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"` // such as "users[3].uniqueIdSha"
	User
}

// Err returns the item's failure as an *Error, or nil when it succeeded.
func (r BulkUserResult) Err() error {
	if r.Code == CodeOK {
		return nil
	}
	return &Error{Code: r.Code, Message: r.Message, Field: r.Field}
}

// BulkUsers creates up to MaxBulkUsers users at once, each as NewUser would
// (POST /third_parties/user/bulk). An invalid item fails alone, in its
// BulkUserResult; the error is for the request as a whole.
func (c *Client) BulkUsers(ctx context.Context, req BulkUsersRequest, opts ...CallOption) (*BulkUsersResponse, error) {
	var out BulkUsersResponse
	if err := c.call(ctx, "/third_parties/user/bulk", changing, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateUserRequest is the body of /third_parties/user/rotate.
type RotateUserRequest struct {
	UniqueIDSha string `json:"uniqueIdSha"`
}

// RotateUser gives a user a new pass and apikey; the old ones stop working
// at once (POST /third_parties/user/rotate).
func (c *Client) RotateUser(ctx context.Context, req RotateUserRequest, opts ...CallOption) (*User, error) {
	var out User
	if err := c.call(ctx, "/third_parties/user/rotate", changing, req, &out, opts); err != nil {
		return nil, err
	}
	return &out, nil
}

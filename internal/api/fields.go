package api

import (
	"errors"

	"github.com/imbee/imbee"
)

// fieldNames is the document's name for each subject of the domain's
// errors: the one place where the API's errors get their field names (and
// the names their messages use). A request that sent a parameter under
// another of its names answers with that one (aliases).
var fieldNames = map[string]string{
	imbee.SubjectUser:         "virtual_user", // uniqueIdSha on the user endpoints: userNames
	imbee.SubjectBot:          "bot_idsha",
	imbee.SubjectMail:         "mail",
	imbee.SubjectPhone:        "celullar", // the document's own spelling
	imbee.SubjectMaxUses:      "max_retries",
	imbee.SubjectDateLimit:    "date_limit",
	imbee.SubjectLink:         "url",
	imbee.SubjectWebhookURL:   "url",
	imbee.SubjectConversation: "conversationId",
	imbee.SubjectChatName:     "name",
	imbee.SubjectContact:      "contacts",
	imbee.SubjectText:         "text",
	imbee.SubjectClientMsgID:  "clientMsgId",
	imbee.SubjectPlatform:     "platform",
	imbee.SubjectDeviceName:   "deviceName",
	imbee.SubjectHardwareID:   "hardwareId",
	imbee.SubjectOSVersion:    "osVersion",
}

// userNames: the user endpoints (/third_parties/user/*) name the user by
// uniqueIdSha.
var userNames = aliases{imbee.SubjectUser: "uniqueIdSha"}

// aliases names subjects as one request did, before fieldNames.
type aliases map[string]string

// withFieldNames returns err in the document's terms: a domain error's
// subjects by as's names, then fieldNames'. Other errors pass as they are.
func withFieldNames(err error, as aliases) error {
	var e *imbee.Error
	if !errors.As(err, &e) {
		return err
	}
	return e.Named(func(subject string) string {
		if n, ok := as[subject]; ok {
			return n
		}
		return fieldNames[subject]
	})
}

// Package imbee holds the domain of the imbee server: the types every other
// package speaks in; the rules of docs/api.md, one function each, which the
// API, the pages and the CLI all call (a link request and its end of day,
// a message, a user and device, a link token, a webhook URL, a corporate's
// settings); and the error type whose codes are the API's contract, whose
// subjects each entry point names its own way. It does no I/O.
package imbee

import (
	"strings"
	"time"
)

// Corporate is a tenant: the integrator's company. Everything else belongs to one.
type Corporate struct {
	ID         int64
	Name       string
	TimeZone   string // IANA name; a link's date_limit ends at midnight in this zone
	Language   string // of the mails and SMS sent for it: "en" or "es"
	SenderName string // the mails' From name; empty: the corporate's name
	// RateLimit and RateBurst override the server's rate limit for this
	// corporate when set.
	RateLimit *float64
	RateBurst *int
	CreatedAt time.Time
	Disabled  bool // by the operator: its credentials, links and sessions do not work
}

// Languages are the languages links can be sent in; the first is the default.
var Languages = []string{"en", "es"}

// CorporateSettings changes a corporate's settings; nil fields stay as they are.
type CorporateSettings struct {
	Name       *string
	TimeZone   *string
	Language   *string
	SenderName *string
	// RateLimit and RateBurst set the corporate's own rate limit; with
	// ResetRateLimit it goes back to the server's.
	RateLimit      *float64
	RateBurst      *int
	ResetRateLimit bool
}

// CorporateCredentials are the two secrets an integrator sends on every call:
// Authorization (Auth) and X-WOOS-KEY (CorporateToken).
type CorporateCredentials struct {
	Auth           string
	CorporateToken string
}

// Bot is a corporate's automated participant, addressed by its IDSha.
type Bot struct {
	ID          int64
	CorporateID int64
	IDSha       string
	Name        string
	CreatedAt   time.Time
	Revoked     bool // retired: it takes no new chats and sends nothing
}

// User is a virtual user provisioned by an integrator. UniqueID is the
// integrator's own id for the person (uniqueIdSha, virtual_user); IDSha is
// ours (virtualUser, user_idsha). Pass and APIKey are only filled when the
// store hands the user to the integrator.
type User struct {
	ID          int64
	CorporateID int64
	UniqueID    string
	IDSha       string
	Pass        string
	APIKey      string
}

// Device is what /third_parties/user/new reports about the caller's device.
type Device struct {
	Platform   string
	DeviceName string
	HardwareID string
	OSVersion  string
}

// Channel is a way a link reaches a person.
type Channel string

const (
	ChannelMail Channel = "mail"
	ChannelSMS  Channel = "sms"
)

// Recipient is one address a link is sent to.
type Recipient struct {
	Channel Channel
	Address string // e-mail address, or E.164 phone number
}

// LimitKey is the recipient as the per-recipient send limit counts it: an
// e-mail address lowercased whole (every spelling reaches one mailbox in
// practice, so each must not get its own allowance), a phone number as it
// is, already E.164.
func (r Recipient) LimitKey() string {
	if r.Channel == ChannelMail {
		return strings.ToLower(r.Address)
	}
	return r.Address
}

// LinkRequest is a validated /token/new.
type LinkRequest struct {
	CorporateID int64
	UniqueID    string // virtual_user
	BotIDSha    string
	Recipients  []Recipient
	MaxUses     int
	DateLimit   string    // YYYY-MM-DD as the integrator sees it
	ExpiresAt   time.Time // the first instant the link no longer works
	// SendsPerHour caps the links sent to one address or number by this
	// corporate in any hour (0: no cap).
	SendsPerHour int
}

// Link is a web access link. Token is the secret part of its URL.
type Link struct {
	ID          int64
	CorporateID int64
	UserIDSha   string
	BotIDSha    string
	Token       string
	MaxUses     int
	Uses        int
	DateLimit   string
	ExpiresAt   time.Time
	Revoked     bool
	Existing    bool // true when a repeat returned a link created earlier
}

// LinkState says whether a link can still be spent.
type LinkState int

const (
	LinkActive LinkState = iota
	LinkUsedUp
	LinkExpired
	LinkRevoked
)

// String is the state's name in the API: active, used_up, expired, revoked.
func (s LinkState) String() string {
	switch s {
	case LinkUsedUp:
		return "used_up"
	case LinkExpired:
		return "expired"
	case LinkRevoked:
		return "revoked"
	}
	return "active"
}

// State reports the link's state at now.
func (l *Link) State(now time.Time) LinkState {
	switch {
	case l.Revoked:
		return LinkRevoked
	case !now.Before(l.ExpiresAt):
		return LinkExpired
	case l.Uses >= l.MaxUses:
		return LinkUsedUp
	}
	return LinkActive
}

// LinkPage is what the landing page of a link shows.
type LinkPage struct {
	Link              Link
	BotName           string
	CorporateName     string
	CorporateLanguage string // the pages' language when the browser's is not one they speak
}

// ConversationType is "chat" (1:1) or "group".
type ConversationType string

const (
	ConversationChat  ConversationType = "chat"
	ConversationGroup ConversationType = "group"
)

// Member is a participant of a conversation: a user or a bot.
type Member struct {
	IDSha   string
	IsAdmin bool
	IsBot   bool
	Name    string // bots only
}

// Conversation is a 1:1 chat or a group. Members are in order, creator first.
type Conversation struct {
	ID          int64
	CorporateID int64
	PublicID    string
	Type        ConversationType
	Name        string
	Members     []Member
	Existing    bool // true when a repeat returned a conversation created earlier
}

// ChatRequest is a validated /chat/create.
type ChatRequest struct {
	CorporateID int64
	Creator     string // idsha of the user whose apikey made the call
	Type        ConversationType
	Name        string
	Contacts    []string // idsha of users or bots, without the creator
}

// Session is a person's web chat session, granted by spending a link.
type Session struct {
	Token             string // the cookie value; only set when created
	ID                int64
	CorporateID       int64
	LinkID            int64 // the link that opened it
	UserID            int64 // the link's user
	BotID             int64 // the link's bot
	UserIDSha         string
	ConversationID    string
	BotName           string
	CorporateName     string
	CorporateLanguage string
	ExpiresAt         time.Time
}

// AppSession is a person signed in to the web app with their user's
// virtualUser and pass: it reaches every chat of that user. It ends when it
// expires, when the user signs out, when the user's credentials are rotated
// or while the corporate is disabled.
type AppSession struct {
	Token             string // the cookie value; only set when created
	ID                int64
	CorporateID       int64
	UserID            int64
	UserIDSha         string
	CorporateName     string
	CorporateLanguage string
	ExpiresAt         time.Time
}

// PushSubscription is a browser's Web Push subscription (RFC 8030), one of
// a user's devices: where to push (Endpoint) and the keys to encrypt for it
// (RFC 8291).
type PushSubscription struct {
	ID          int64
	CorporateID int64
	UserID      int64
	Endpoint    string
	P256dh      []byte // the browser's ECDH public key, an uncompressed P-256 point
	Auth        []byte // the 16-byte authentication secret
}

// DeliveryStatus is where a delivery stands.
type DeliveryStatus string

const (
	DeliveryQueued  DeliveryStatus = "queued"
	DeliverySending DeliveryStatus = "sending"
	DeliverySent    DeliveryStatus = "sent"
	DeliveryFailed  DeliveryStatus = "failed" // will be retried
	DeliveryDead    DeliveryStatus = "dead"
)

// Delivery is one send of a link to one recipient: a row of the delivery
// ledger.
type Delivery struct {
	ID            int64
	CorporateID   int64
	LinkID        int64
	Recipient     Recipient
	Status        DeliveryStatus
	Attempts      int
	LastError     string // the whole error, for the operator
	LastReason    string // its class, for the tenant: no provider detail
	ProviderID    string
	CreatedAt     time.Time
	UpdatedAt     time.Time
	NextAttemptAt time.Time // when it is (or was) due to be tried
	// Filled when the delivery is claimed for sending.
	LinkToken     string
	BotName       string
	CorporateName string
	Language      string
	SenderName    string
}

// SentJob is a queue row, a delivery or a webhook event, whose send
// succeeded: what its record needs.
type SentJob struct {
	CorporateID, ID int64
	ProviderID      string // a delivery's: the provider's id for the message
}

// QueueKey names one count of deliveries: a channel and a status.
type QueueKey struct {
	Channel Channel
	Status  DeliveryStatus
}

// QueueStats is what waits in the delivery and webhook queues (queued,
// sending or failed) and what died there, for metrics.
type QueueStats struct {
	// Deliveries counts those link deliveries by channel and status;
	// pairs without rows are absent.
	Deliveries map[QueueKey]int64
	// Webhooks counts those webhook events by status.
	Webhooks map[DeliveryStatus]int64
	// OldestDelivery and OldestWebhook are the age, in whole seconds, of
	// the oldest row still waiting to be sent; 0 when none waits.
	OldestDelivery, OldestWebhook int64
}

// Message is one message of a conversation. Seq numbers a conversation's
// messages 1, 2, 3… in commit order.
type Message struct {
	ID             int64
	CorporateID    int64
	ConversationID string // the conversation's public id
	Seq            int64
	Sender         string // the member's idsha
	SenderIsBot    bool
	ClientMsgID    string // the sender's retry key, if any
	Text           string
	CreatedAt      time.Time
	Horizon        Horizon // as read with the message: see Horizon
}

// MessageRequest is a validated message send.
type MessageRequest struct {
	CorporateID    int64
	ConversationID string // public id
	Sender         string // idsha of a member: the user or bot sending
	SenderIsBot    bool
	ClientMsgID    string
	Text           string
}

// MessagePage asks for part of a conversation's history: the messages
// after After (oldest first), or before Before (newest first), or, with
// neither, the latest Limit (oldest first).
type MessagePage struct {
	After  *int64
	Before *int64
	Limit  int
}

// ChatSummary is a conversation as a member's chat list shows it.
type ChatSummary struct {
	Conversation Conversation
	LastMessage  *Message // nil while it has none
	LastSeq      int64
	ReadSeq      int64 // how far this member has read
}

// Event is what a conversation's members are told in real time: a new
// message, or a member's read mark.
type Event struct {
	Type           string // "message" or "read"
	CorporateID    int64
	ConversationID string // public id
	Message        *Message
	Member         string // read: who read
	Seq            int64  // read: up to where
	Horizon        Horizon
}

// Horizon is how much of the revocations log a transaction saw: one more
// than the last revocation's id, so that the zero value means "not known".
// A server applies every revocation below an event's horizon before it
// hands the event to any socket, so nothing committed after access ended
// reaches a socket opened with that access.
type Horizon int64

// Revocation is one ending of access, as the revocations log keeps it:
// every socket opened with what it names is closed, on every server.
type Revocation struct {
	ID          int64
	CorporateID int64
	Kind        RevocationKind
	Subject     int64 // the link's, user's or bot's id; 0 for a corporate
}

// RevocationKind says what a revocation ended.
type RevocationKind string

// The kinds of revocation, and the sockets each closes.
const (
	RevokedLink          RevocationKind = "link"           // web chat sockets of sessions the link opened
	RevokedUserLinks     RevocationKind = "user_links"     // web chat sockets of sessions any of the user's links opened
	RevokedBot           RevocationKind = "bot"            // web chat sockets of sessions the bot's links opened
	RevokedUserKeys      RevocationKind = "user_keys"      // sockets opened with the user's apikey or pass
	RevokedCorporateKeys RevocationKind = "corporate_keys" // sockets opened with the corporate's Authorization
	RevokedCorporate     RevocationKind = "corporate"      // every socket of the corporate (disabled)
	RevokedAppSession    RevocationKind = "app_session"    // sockets of a web app session (signed out)
)

// WebhookEvent is one event queued for a bot's webhook: a row of the
// webhook ledger.
type WebhookEvent struct {
	ID          int64
	CorporateID int64
	BotIDSha    string
	EventID     string // webhook-id: the same on every retry
	Payload     []byte
	Status      DeliveryStatus
	Attempts    int
	LastError   string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	// Filled when the event is claimed for sending.
	URL    string
	Secret string
}

// LinkAttempt is one opening of a link's page (GET/HEAD) or submission of
// it (POST), for the link's audit trail.
type LinkAttempt struct {
	CorporateID int64 // the link's
	LinkID      int64
	At          time.Time
	Method      string // GET, HEAD or POST
	Result      string // viewed, spent, used_up, expired or revoked
	// Address is the client's address, given when recording; the store
	// keeps only Client, a keyed hash of it.
	Address string
	Client  string
	Agent   string // browser, mobile, scanner, bot or unknown
}

package api

// Fuzz targets for request decoding and validation, one per endpoint family.
// Each drives the real handler (NewHandler) over a real SQLite store, made
// once per target and process and reused across inputs, and checks what
// docs/api.md promises of every answer:
//
//   - no panic, no 5xx; the status is one the document lists;
//   - the body is the envelope, keys in order time, code, message, body,
//     body an object; the code goes with the status as the code table says,
//     and body.field names one of the endpoint's parameters;
//   - the checks answer in the document's order: 405 for another method,
//     code 2 for a missing or unknown Authorization, code 3 for a wrong
//     X-WOOS-KEY, 415 for another Content-Type, 413 over 1 MiB, 400 code 5
//     for a body that is not a JSON object (and never code 5 for one that is);
//   - another corporate's bots, users, chats and links answer exactly as if
//     they did not exist (the input is replayed with never-existing ids);
//   - what reaches the store is text PostgreSQL can hold (no NUL, valid
//     UTF-8), although the store under test is SQLite, which takes anything;
//   - a body of up to 1 MiB costs time linear in its size: the macro
//     $MANY<item> repeats item up to 1 MiB, with $I numbering the copies,
//     and the answer may not take much longer than that of the same body
//     with every copy alike.
//
// An input is (mode, [selector,] contentType, auth, key, body):
//
//   - mode's low nibble chooses the credentials (credentialsFor), its high
//     nibble the Content-Type, the method or an oversize body (variant);
//   - contentType, auth and key are raw header values, used by the modes that
//     say so (when they are valid header values);
//   - body is the request body. In bodies and raw headers, placeholders such
//     as $BOT, $CONV, $URL or $OTHERBOT stand for real ids of the store
//     (fuzzWorld.values), so that inputs reach past the references checks.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/writes"
)

// fuzzEndpoint is one API route as the fuzz targets see it.
type fuzzEndpoint struct {
	path    string
	userKey bool       // X-WOOS-KEY is a user's apikey (else the corporate token)
	params  []string   // the documented parameters: what body.field may name
	okKeys  [][]string // the keys a successful answer's body has (one of these sets)
}

var (
	epUserNew = fuzzEndpoint{"/third_parties/user/new", false,
		[]string{"uniqueIdSha", "platform", "deviceName", "hardwareId", "osVersion"},
		[][]string{{"virtualUser", "pass", "apikey", "previously_registered"}}}
	epUserBulk = fuzzEndpoint{"/third_parties/user/bulk", false, []string{"users"},
		[][]string{{"results", "created", "existing", "failed"}}}
	epUserRotate = fuzzEndpoint{"/third_parties/user/rotate", false, []string{"uniqueIdSha"},
		[][]string{{"virtualUser", "pass", "apikey"}}}
	epTokenNew = fuzzEndpoint{"/token/new", false,
		[]string{"virtual_user", "virutal_user", "bot_idsha", "mail", "celullar", "cellular", "max_retries", "date_limit"},
		[][]string{{"url", "user_idsha", "date_limit", "max_retries", "previously_created"}}}
	epTokenStatus = fuzzEndpoint{"/token/status", false, []string{"url"},
		[][]string{{"url", "user_idsha", "bot_idsha", "state", "max_retries", "uses", "uses_left", "date_limit", "revoked", "deliveries", "attempts"}}}
	epTokenRevoke = fuzzEndpoint{"/token/revoke", false, []string{"url", "virtual_user"},
		[][]string{{"url", "user_idsha", "bot_idsha", "state", "max_retries", "uses", "uses_left", "date_limit", "revoked", "deliveries", "previously_revoked"},
			{"virtual_user", "revoked_links"}}}
	epChatCreate = fuzzEndpoint{"/chat/create", true, []string{"type", "contacts", "name"},
		[][]string{{"contacts", "conversationId", "previously_created"}}}
	epMessageSend = fuzzEndpoint{"/chat/message/send", true, []string{"conversationId", "text", "clientMsgId"},
		[][]string{{"message", "previously_sent"}}}
	epMessageList = fuzzEndpoint{"/chat/message/list", true, []string{"conversationId", "afterSeq", "beforeSeq", "limit"},
		[][]string{{"messages", "has_more", "last_seq", "read_seq"}}}
	epChatList = fuzzEndpoint{"/chat/list", true, []string{"limit"}, [][]string{{"chats"}}}
	epChatRead = fuzzEndpoint{"/chat/read", true, []string{"conversationId", "seq"}, [][]string{{"read_seq"}}}
	epBotSend  = fuzzEndpoint{"/bot/message/send", false, []string{"bot_idsha", "conversationId", "text", "clientMsgId"},
		[][]string{{"message", "previously_sent"}}}
	epBotWebhook = fuzzEndpoint{"/bot/webhook", false, []string{"bot_idsha", "url"}, [][]string{{"bot_idsha", "url", "secret"}}}
)

// fuzzCorp is one corporate of the fuzz store and what it owns.
type fuzzCorp struct {
	auth, token string
	bot         string     // a bot
	user, mate  imbee.User // two users
	conv        string     // user's 1:1 chat with the bot
	group       string     // a group of user and mate (no bot)
	link        string     // a link token of user with the bot
}

// fuzzWorld is the API over a real store with two corporates: a, whose
// credentials most inputs use, and b, "the other corporate".
type fuzzWorld struct {
	h      http.Handler
	store  *pgTextStore
	a, b   fuzzCorp
	public string
	// values maps each placeholder to its real value; fakes maps the
	// placeholders of objects to ids of the same shape that exist nowhere.
	values, fakes map[string]string
}

// The placeholders (none is a prefix of another).
var fuzzPlaceholders = []string{
	"$OTHERAUTH", "$OTHERTOKEN", "$OTHERAPIKEY", "$OTHERBOT", "$OTHERUSER", "$OTHERMATE",
	"$OTHERCONV", "$OTHERGROUP", "$OTHERLINK", "$OTHERURL",
	"$AUTH", "$TOKEN", "$APIKEY", "$BOT", "$USER", "$MATE", "$CONV", "$GROUP", "$LINK", "$URL",
	"$TODAY", "$DATE", "$MAXDATE", "$PASTDATE", "$LATEDATE",
}

// The placeholders of objects of corporate a and of corporate b.
var (
	fuzzObjectsA = []string{"$BOT", "$USER", "$MATE", "$CONV", "$GROUP", "$LINK", "$URL"}
	fuzzObjectsB = []string{"$OTHERBOT", "$OTHERUSER", "$OTHERMATE", "$OTHERCONV", "$OTHERGROUP", "$OTHERLINK", "$OTHERURL"}
)

func newFuzzWorld(f *testing.F) *fuzzWorld {
	f.Helper()
	ctx := context.Background()
	key := make([]byte, secret.KeySize)
	keys, err := secret.NewKeyring(key)
	if err != nil {
		f.Fatal(err)
	}
	// synchronous=normal: the file is thrown away, and fsyncs would slow
	// every input that writes.
	s, err := store.Open(ctx, "sqlite:"+filepath.Join(f.TempDir(), "fuzz.db"), keys, store.Options{Synchronous: "normal"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	w := &fuzzWorld{public: "https://chat.example.test"}
	now := time.Now().UTC()
	for i, c := range []*fuzzCorp{&w.a, &w.b} {
		corp, creds, err := s.CreateCorporate(ctx, "Fuzz "+strconv.Itoa(i), "UTC")
		if err != nil {
			f.Fatal(err)
		}
		c.auth, c.token = creds.Auth, creds.CorporateToken
		bot, err := s.CreateBot(ctx, corp.ID, "Bot")
		if err != nil {
			f.Fatal(err)
		}
		c.bot = bot.IDSha
		if c.user, _, err = s.RegisterUser(ctx, corp.ID, "user-"+strconv.Itoa(i), nil); err != nil {
			f.Fatal(err)
		}
		if c.mate, _, err = s.RegisterUser(ctx, corp.ID, "mate-"+strconv.Itoa(i), nil); err != nil {
			f.Fatal(err)
		}
		conv, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: corp.ID, Creator: c.user.IDSha,
			Type: imbee.ConversationChat, Contacts: []string{c.bot}})
		if err != nil {
			f.Fatal(err)
		}
		c.conv = conv.PublicID
		group, err := s.CreateConversation(ctx, imbee.ChatRequest{CorporateID: corp.ID, Creator: c.user.IDSha,
			Type: imbee.ConversationGroup, Name: "group", Contacts: []string{c.mate.IDSha}})
		if err != nil {
			f.Fatal(err)
		}
		c.group = group.PublicID
		last := now.AddDate(0, 0, 30)
		link, err := s.IssueLink(ctx, imbee.LinkRequest{CorporateID: corp.ID, UniqueID: "user-" + strconv.Itoa(i), BotIDSha: c.bot,
			MaxUses: 10, DateLimit: last.Format(time.DateOnly), ExpiresAt: last.AddDate(0, 0, 1),
			Recipients: []imbee.Recipient{{Channel: imbee.ChannelMail, Address: "ana@example.com"}}})
		if err != nil {
			f.Fatal(err)
		}
		c.link = link.Token
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	w.store = &pgTextStore{Store: s}
	w.h = NewHandler(w.store, writes.New(w.store, writes.Effects{}, nil), http.NotFoundHandler(), Config{PublicURL: w.public, RecipientLimit: 5}, log)

	day := func(days int) string { return now.AddDate(0, 0, days).Format(time.DateOnly) }
	w.values = map[string]string{
		"$AUTH": w.a.auth, "$TOKEN": w.a.token, "$APIKEY": w.a.user.APIKey,
		"$OTHERAUTH": w.b.auth, "$OTHERTOKEN": w.b.token, "$OTHERAPIKEY": w.b.user.APIKey,
		"$TODAY": day(0), "$DATE": day(30), "$MAXDATE": day(365), "$PASTDATE": day(-1), "$LATEDATE": day(366),
	}
	w.fakes = map[string]string{}
	for i, c := range []*fuzzCorp{&w.a, &w.b} {
		names := [][]string{fuzzObjectsA, fuzzObjectsB}[i]
		vals := []string{c.bot, c.user.IDSha, c.mate.IDSha, c.conv, c.group, c.link, w.public + "/l/" + c.link}
		for j, name := range names {
			w.values[name] = vals[j]
			prefix := ""
			if strings.HasSuffix(name, "LINK") || strings.HasSuffix(name, "URL") {
				prefix = vals[j][:strings.Index(vals[j], c.link)+len("imbl_")]
			}
			w.fakes[name] = prefix + fuzzRotate(vals[j][len(prefix):])
		}
	}
	if !strings.HasPrefix(w.a.link, "imbl_") {
		f.Fatalf("link token %q: expected the imbl_ prefix", w.a.link)
	}
	return w
}

// fuzzRotate changes every letter and digit of s to the next one of its
// kind: a string of the same shape that names nothing.
func fuzzRotate(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '8', c >= 'a' && c <= 'y', c >= 'A' && c <= 'Y':
			b[i] = c + 1
		case c == '9':
			b[i] = '0'
		case c == 'z':
			b[i] = 'a'
		case c == 'Z':
			b[i] = 'A'
		}
	}
	return string(b)
}

// expand replaces the placeholders in s by their values, and those named in
// faked by their fakes.
func (w *fuzzWorld) expand(s string, faked []string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	args := make([]string, 0, 2*len(fuzzPlaceholders))
	for _, p := range fuzzPlaceholders {
		v := w.values[p]
		if slices.Contains(faked, p) {
			v = w.fakes[p]
		}
		args = append(args, p, v)
	}
	return strings.NewReplacer(args...).Replace(s)
}

// Credentials (mode & 0x0f).
const (
	credValidLast  = 7  // 0..7: corporate a's credentials, written in various ways
	credNoAuth     = 8  // no Authorization: code 2
	credBadAuth    = 9  // an unknown Authorization: code 2
	credNoKey      = 10 // no X-WOOS-KEY: code 3
	credBadKey     = 11 // an unknown X-WOOS-KEY: code 3
	credOtherKey   = 12 // the other corporate's X-WOOS-KEY: code 3
	credWrongKind  = 13 // a user's apikey where the corporate token goes, or the reverse: code 3
	credOtherCorp  = 14 // the other corporate's own credentials: valid
	credRawHeaders = 15 // the fuzzed auth and key strings
)

// Variants (mode >> 4).
const (
	varJSONLast    = 9  // 0..9: application/json, with or without a charset
	varRawType     = 10 // 10, 11: the fuzzed contentType string
	varNoType      = 12 // no Content-Type
	varTextType    = 13 // text/plain
	varOversize    = 14 // application/json, the body padded to over 1 MiB
	varWrongMethod = 15 // another method than POST
)

func fuzzMode(cred, variant int) byte { return byte(variant<<4 | cred) }

// credentialsFor says what Authorization and X-WOOS-KEY an input sends;
// hasAuth and hasKey are false when the header is left out (a raw value no
// client could send is left out too).
func (w *fuzzWorld) credentialsFor(ep fuzzEndpoint, cred int, rawAuth, rawKey string) (auth, key string, hasAuth, hasKey bool) {
	a, b := w.a, w.b
	keyOf := func(c fuzzCorp) string {
		if ep.userKey {
			return c.user.APIKey
		}
		return c.token
	}
	auth, key, hasAuth, hasKey = a.auth, keyOf(a), true, true
	switch cred {
	case 1:
		auth = "Bearer " + a.auth
	case 2:
		auth = "bearer   " + a.auth
	case 3:
		key = " " + key + " "
	case credNoAuth:
		hasAuth = false
	case credBadAuth:
		auth = fuzzRotate(a.auth)
	case credNoKey:
		hasKey = false
	case credBadKey:
		key = fuzzRotate(key)
	case credOtherKey:
		key = keyOf(b)
	case credWrongKind:
		if ep.userKey {
			key = a.token
		} else {
			key = a.user.APIKey
		}
	case credOtherCorp:
		auth, key = b.auth, keyOf(b)
	case credRawHeaders:
		auth, hasAuth = fuzzHeaderValue(w.expand(rawAuth, nil))
		key, hasKey = fuzzHeaderValue(w.expand(rawKey, nil))
	}
	return auth, key, hasAuth, hasKey
}

// fuzzHeaderValue is v as a server would see it, if a client can send it:
// no control characters but tab, surrounding blanks trimmed.
func fuzzHeaderValue(v string) (string, bool) {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return "", false
		}
	}
	return strings.Trim(v, " \t"), true
}

// fuzzResult is an answer, checked to be an envelope.
type fuzzResult struct {
	status  int
	code    int
	message string
	field   string
	body    map[string]json.RawMessage
	header  http.Header
}

// do sends one request to the handler.
func (w *fuzzWorld) do(method, path, contentType string, hasType bool, auth, key string, hasAuth, hasKey bool, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if hasAuth {
		req.Header.Set("Authorization", auth)
	}
	if hasKey {
		req.Header.Set("X-WOOS-KEY", key)
	}
	if hasType {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	w.h.ServeHTTP(rec, req)
	return rec
}

// pgTextStore is the store, noting text PostgreSQL would refuse: NUL, or
// invalid UTF-8. SQLite stores both, so on it such a request succeeds; on
// PostgreSQL it would fail with a 500. Only the methods that put request
// text into SQL are watched (credentials and link tokens are hashed first).
type pgTextStore struct {
	*store.Store
	mu      sync.Mutex
	problem string
}

func (p *pgTextStore) note(op string, args ...any) {
	if what := badText(reflect.ValueOf(args)); what != "" {
		p.mu.Lock()
		if p.problem == "" {
			p.problem = op + ": " + what
		}
		p.mu.Unlock()
	}
}

// take returns the first problem noted since the last call.
func (p *pgTextStore) take() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	what := p.problem
	p.problem = ""
	return what
}

// badText finds a string in v that PostgreSQL cannot store as text.
func badText(v reflect.Value) string {
	switch v.Kind() {
	case reflect.String:
		if s := v.String(); strings.ContainsRune(s, 0) || !utf8.ValidString(s) {
			return strconv.Quote(s)
		}
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return badText(v.Elem())
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			if what := badText(v.Index(i)); what != "" {
				return what
			}
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return ""
		}
		for i := range v.NumField() {
			if what := badText(v.Field(i)); what != "" {
				return v.Type().Field(i).Name + " " + what
			}
		}
	}
	return ""
}

func (p *pgTextStore) KnownUser(ctx context.Context, auth, corporateToken, uniqueID string, dev *imbee.Device) (imbee.Corporate, imbee.User, bool, error) {
	p.note("KnownUser", uniqueID, dev)
	return p.Store.KnownUser(ctx, auth, corporateToken, uniqueID, dev)
}

func (p *pgTextStore) RegisterUser(ctx context.Context, corporateID int64, uniqueID string, dev *imbee.Device) (imbee.User, bool, error) {
	p.note("RegisterUser", uniqueID, dev)
	return p.Store.RegisterUser(ctx, corporateID, uniqueID, dev)
}

func (p *pgTextStore) RotateUser(ctx context.Context, corporateID int64, uniqueID string) (imbee.User, error) {
	p.note("RotateUser", uniqueID)
	return p.Store.RotateUser(ctx, corporateID, uniqueID)
}

func (p *pgTextStore) RevokeUserLinks(ctx context.Context, corporateID int64, uniqueID string) (int64, error) {
	p.note("RevokeUserLinks", uniqueID)
	return p.Store.RevokeUserLinks(ctx, corporateID, uniqueID)
}

func (p *pgTextStore) IssueLink(ctx context.Context, req imbee.LinkRequest) (imbee.Link, error) {
	p.note("IssueLink", req)
	return p.Store.IssueLink(ctx, req)
}

func (p *pgTextStore) KnownChat(ctx context.Context, auth, apikey, contact string) (imbee.Corporate, imbee.User, imbee.Conversation, bool, error) {
	p.note("KnownChat", contact)
	return p.Store.KnownChat(ctx, auth, apikey, contact)
}

func (p *pgTextStore) CreateConversation(ctx context.Context, req imbee.ChatRequest) (imbee.Conversation, error) {
	p.note("CreateConversation", req)
	return p.Store.CreateConversation(ctx, req)
}

func (p *pgTextStore) SendMessage(ctx context.Context, req imbee.MessageRequest) (imbee.Message, bool, error) {
	p.note("SendMessage", req)
	return p.Store.SendMessage(ctx, req)
}

func (p *pgTextStore) Messages(ctx context.Context, corporateID int64, conversationID, member string, pg imbee.MessagePage) ([]imbee.Message, bool, int64, int64, error) {
	p.note("Messages", conversationID, member)
	return p.Store.Messages(ctx, corporateID, conversationID, member, pg)
}

func (p *pgTextStore) MarkRead(ctx context.Context, corporateID int64, conversationID, member string, seq int64) (int64, error) {
	p.note("MarkRead", conversationID, member)
	return p.Store.MarkRead(ctx, corporateID, conversationID, member, seq)
}

func (p *pgTextStore) Chats(ctx context.Context, corporateID int64, member string, limit int) ([]imbee.ChatSummary, error) {
	p.note("Chats", member)
	return p.Store.Chats(ctx, corporateID, member, limit)
}

func (p *pgTextStore) BotByIDSha(ctx context.Context, corporateID int64, idsha string) (imbee.Bot, error) {
	p.note("BotByIDSha", idsha)
	return p.Store.BotByIDSha(ctx, corporateID, idsha)
}

func (p *pgTextStore) SetBotWebhook(ctx context.Context, corporateID int64, botIDSha, url string) (string, error) {
	p.note("SetBotWebhook", botIDSha, url)
	return p.Store.SetBotWebhook(ctx, corporateID, botIDSha, url)
}

// expandMany expands the macro $MANY<item> (the first one, up to the last
// '>'): copies of item, joined by commas, as many as fit in MaxBodyBytes,
// each with $I replaced by its number (same, to number them all 0). It
// returns b unchanged when there is no macro.
func expandMany(b []byte, same bool) []byte {
	start := bytes.Index(b, []byte("$MANY<"))
	if start < 0 {
		return b
	}
	end := bytes.LastIndexByte(b, '>')
	if end < start+len("$MANY<") {
		return b
	}
	item, rest := b[start+len("$MANY<"):end], b[end+1:]
	out := append([]byte{}, b[:start]...)
	room := MaxBodyBytes - len(out) - len(rest)
	size := len(item) + 1 + bytes.Count(item, []byte("$I"))*5 // "$I" becomes 7 digits
	for i := 0; size > 1 && (i+1)*size <= room && i < 1e7; i++ {
		if i > 0 {
			out = append(out, ',')
		}
		n := fmt.Sprintf("%07d", i)
		if same {
			n = "0000000"
		}
		out = append(out, bytes.ReplaceAll(item, []byte("$I"), []byte(n))...)
	}
	return append(out, rest...)
}

// checkEnvelope checks what every API answer must be, whatever the input.
func checkEnvelope(t *testing.T, ep fuzzEndpoint, rec *httptest.ResponseRecorder) fuzzResult {
	t.Helper()
	res := fuzzResult{status: rec.Code, header: rec.Header()}
	raw := rec.Body.Bytes()
	switch rec.Code {
	case 200, 400, 401, 404, 405, 413, 415, 429:
	default:
		t.Fatalf("%s: HTTP %d, not a documented status; body %s", ep.path, rec.Code, raw)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("%s: Content-Type %q", ep.path, ct)
	}
	if rec.Header().Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id", ep.path)
	}

	// The envelope, keys in the document's order.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	fail := func(what string) {
		t.Helper()
		t.Fatalf("%s: HTTP %d: %s; body %q", ep.path, rec.Code, what, raw)
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		fail("not a JSON object")
	}
	for _, want := range []string{"time", "code", "message", "body"} {
		tok, err := dec.Token()
		if err != nil || tok != want {
			fail("key " + want + " missing or out of order")
		}
		switch want {
		case "time":
			var n json.Number
			if err := dec.Decode(&n); err != nil {
				fail("time is not a number")
			}
			if f, err := n.Float64(); err != nil || f < 0 {
				fail("time is not a non-negative number")
			}
		case "code":
			var n json.Number
			if err := dec.Decode(&n); err != nil {
				fail("code is not a number")
			}
			c, err := n.Int64()
			if err != nil || c < 0 || c > 8 {
				fail("code is not one of 0-8")
			}
			res.code = int(c)
		case "message":
			if err := dec.Decode(&res.message); err != nil || res.message == "" {
				fail("message is not a non-empty string")
			}
		case "body":
			if err := dec.Decode(&res.body); err != nil || res.body == nil {
				fail("body is not an object")
			}
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		fail("more keys than time, code, message, body")
	}
	if rest, _ := io.ReadAll(dec.Buffered()); len(bytes.TrimSpace(rest)) != 0 {
		fail("trailing data after the envelope")
	}
	if f, ok := res.body["field"]; ok {
		if err := json.Unmarshal(f, &res.field); err != nil {
			fail("body.field is not a string")
		}
	}

	// The code goes with the status (docs/api.md, "Codes").
	okPair := false
	switch res.code {
	case 0:
		okPair = res.status == 200
	case 1:
		okPair = res.status == 400 || res.status == 405 // 404 on these routes is code 7
	case 2, 3:
		okPair = res.status == 401
	case 4:
		okPair = res.status == 415
	case 5:
		okPair = res.status == 400 || res.status == 413
	case 6:
		okPair = res.status == 400
	case 7:
		okPair = res.status == 404
	case 8:
		okPair = res.status == 429
	}
	if !okPair {
		fail("code " + strconv.Itoa(res.code) + " does not go with this status")
	}
	switch res.code {
	case 0:
		if res.message != "Ok" {
			fail("success without message Ok")
		}
		if !slices.ContainsFunc(ep.okKeys, func(keys []string) bool {
			return !slices.ContainsFunc(keys, func(k string) bool { _, ok := res.body[k]; return !ok })
		}) {
			fail(fmt.Sprintf("success without the keys %v", ep.okKeys))
		}
	case 1:
		if res.status == 405 && rec.Header().Get("Allow") != "POST" {
			fail("405 without Allow: POST")
		}
	case 6, 7:
		if !slices.Contains(ep.params, res.field) {
			fail("body.field " + strconv.Quote(res.field) + " is not a parameter of " + ep.path)
		}
	case 8:
		if n, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || n < 1 {
			fail("429 without a Retry-After of at least 1 s")
		}
		if ep.path != epTokenNew.path || res.field != "mail" && res.field != "celullar" {
			fail("code 8 (no request rate limit is set) without field mail or celullar")
		}
	}
	return res
}

// isObject says whether b is what the document asks for: one JSON object.
func isObject(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(t)
}

// mediaType is the lowercased type/subtype of a Content-Type.
func mediaType(ct string) string {
	mt, _, _ := strings.Cut(ct, ";")
	return strings.ToLower(strings.TrimSpace(mt))
}

// check sends one fuzzed request to ep and checks the answer.
func (w *fuzzWorld) check(t *testing.T, ep fuzzEndpoint, mode byte, rawType, rawAuth, rawKey string, rawBody []byte) {
	cred, variant := int(mode&0x0f), int(mode>>4)
	auth, key, hasAuth, hasKey := w.credentialsFor(ep, cred, rawAuth, rawKey)

	method := http.MethodPost
	contentType, hasType := "application/json", true
	switch {
	case variant <= varJSONLast && variant%2 == 1:
		contentType = "application/json; charset=utf-8"
	case variant == varRawType || variant == varRawType+1:
		if contentType, hasType = fuzzHeaderValue(rawType); !hasType {
			contentType, hasType = "application/json", true
		}
	case variant == varNoType:
		hasType = false
	case variant == varTextType:
		contentType = "text/plain"
	case variant == varWrongMethod:
		method = []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead}[len(rawBody)%5]
	}

	// Corporate b's objects are foreign to corporate a, and the reverse.
	foreign := fuzzObjectsB
	if cred == credOtherCorp {
		foreign = fuzzObjectsA
	}
	body := []byte(w.expand(string(rawBody), nil))
	many := bytes.Contains(body, []byte("$MANY<"))
	plain := body
	body = expandMany(body, false)
	if variant == varOversize {
		body = append(body, bytes.Repeat([]byte(" "), MaxBodyBytes+1-min(len(body), MaxBodyBytes))...)
	}
	w.store.take()
	started := time.Now()
	rec := w.do(method, ep.path, contentType, hasType, auth, key, hasAuth, hasKey, body)
	took := time.Since(started)
	res := checkEnvelope(t, ep, rec)
	if what := w.store.take(); what != "" {
		t.Fatalf("%s: HTTP %d code %d, and the store was given text PostgreSQL refuses (a 500 there): %s", ep.path, res.status, res.code, what)
	}
	if many && took > 500*time.Millisecond {
		// The same size, every copy alike: as much to read, nothing to tell
		// apart. Much slower with distinct copies is work that grows faster
		// than the body.
		same := expandMany(plain, true)
		timed := func(b []byte) time.Duration {
			started := time.Now()
			w.do(method, ep.path, contentType, hasType, auth, key, hasAuth, hasKey, b)
			return time.Since(started)
		}
		if base := timed(same); took > 10*base+200*time.Millisecond {
			// Once more each, in case the machine was busy.
			took, base = min(took, timed(body)), min(base, timed(same))
			if took > 10*base+200*time.Millisecond {
				t.Fatalf("%s: %d bytes took %v; the same size with copies alike %v", ep.path, len(body), took, base)
			}
		}
		w.store.take()
	}

	// The checks' order (docs/api.md): route, Authorization, X-WOOS-KEY,
	// rate limit, Content-Type, body, parameters, references.
	want := func(status, code int, why string) {
		t.Helper()
		if res.status != status || res.code != code {
			t.Fatalf("%s (%s): HTTP %d code %d, want HTTP %d code %d; body %s", ep.path, why, res.status, res.code, status, code, rec.Body)
		}
	}
	validCreds := cred <= credValidLast || cred == credOtherCorp
	switch {
	case method != http.MethodPost:
		want(405, 1, method)
	case cred == credNoAuth || cred == credBadAuth:
		want(401, 2, "missing or unknown Authorization")
	case cred >= credNoKey && cred <= credWrongKind:
		want(401, 3, "wrong X-WOOS-KEY")
	case !validCreds:
		// Raw headers: only the general rules above.
	case !hasType || contentType == "text/plain":
		want(415, 4, "Content-Type "+contentType)
	case variant == varRawType || variant == varRawType+1:
		if mediaType(contentType) != "application/json" {
			want(415, 4, "Content-Type "+contentType)
		} else if strings.EqualFold(strings.TrimSpace(contentType), "application/json") && res.code == 4 {
			t.Fatalf("%s: Content-Type %q refused", ep.path, contentType)
		}
	case variant == varOversize:
		want(413, 5, "body over 1 MiB")
	case !isObject(body):
		want(400, 5, "body not a JSON object")
	case res.code <= 5 && res.code != 0:
		t.Fatalf("%s: a JSON object with valid credentials: HTTP %d code %d; body %s", ep.path, res.status, res.code, rec.Body)
	}

	// Another corporate's objects answer as if they did not exist: replay
	// the input with never-existing ids in their place.
	if !validCreds || method != http.MethodPost || variant > varJSONLast || res.status == 429 {
		return
	}
	var used []string
	for _, p := range foreign {
		if bytes.Contains(rawBody, []byte(p)) {
			used = append(used, p)
		}
	}
	if len(used) == 0 {
		return
	}
	fakeBody := expandMany([]byte(w.expand(string(rawBody), used)), false)
	fake := checkEnvelope(t, ep, w.do(method, ep.path, contentType, hasType, auth, key, hasAuth, hasKey, fakeBody))
	w.store.take()
	if fake.status == 429 {
		return
	}
	// Messages may quote the input: put the real ids back before comparing.
	fakeMsg := fake.message
	for _, p := range used {
		fakeMsg = strings.ReplaceAll(fakeMsg, w.fakes[p], w.values[p])
	}
	if fake.status != res.status || fake.code != res.code || res.status != 200 && (fakeMsg != res.message || fake.field != res.field) {
		t.Fatalf("%s: another corporate's %v answer HTTP %d code %d %q (field %q), never-existing ids HTTP %d code %d %q (field %q)",
			ep.path, used, res.status, res.code, res.message, res.field, fake.status, fake.code, fakeMsg, fake.field)
	}
}

// Seeds.

// fuzzSeed is one input's selector-independent part.
type fuzzSeed struct {
	mode             byte
	ctype, auth, key string
	body             string
}

// fuzzEndpoints are all the endpoints.
var fuzzEndpoints = []fuzzEndpoint{epUserNew, epUserBulk, epUserRotate, epTokenNew, epTokenStatus, epTokenRevoke, epChatCreate,
	epMessageSend, epMessageList, epChatList, epChatRead, epBotSend, epBotWebhook}

// seedsFor returns the seeds of an endpoint: its bodies with valid
// credentials and JSON, the valid body with every other endpoint's
// parameters added with values of odd types (unknown fields are ignored),
// then each credential and variant once with the valid body, then the raw
// headers and the shared edge cases.
func seedsFor(ep fuzzEndpoint, valid string, bodies []string) []fuzzSeed {
	var out []fuzzSeed
	for i, b := range append([]string{valid}, bodies...) {
		out = append(out, fuzzSeed{mode: fuzzMode(0, i%2), body: b})
	}
	for _, odd := range []string{`5`, `[{"x":null}]`, `{"a":"b"}`, `"str"`, `true`} {
		b := strings.TrimSuffix(valid, "}")
		seen := map[string]bool{}
		for _, other := range fuzzEndpoints {
			for _, p := range other.params {
				if !slices.Contains(ep.params, p) && !seen[p] {
					seen[p] = true
					b += `,"` + p + `":` + odd
				}
			}
		}
		out = append(out, fuzzSeed{mode: fuzzMode(0, 0), body: b + "}"})
	}
	for cred := 1; cred < 16; cred++ {
		out = append(out, fuzzSeed{mode: fuzzMode(cred, 0), body: valid})
	}
	for variant := 10; variant < 16; variant++ {
		out = append(out, fuzzSeed{mode: fuzzMode(0, variant), ctype: "application/json", body: valid})
	}
	for _, ct := range []string{
		"application/json;charset=UTF-8", "APPLICATION/JSON", "application/json; charset=latin1", "application/json;",
		"application/json; charset", "application/jsonx", "text/json", "application/json, text/plain",
		"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/*", " application/json ",
		"application/json; charset=\"utf-8\"", "application/json\x00",
	} {
		out = append(out, fuzzSeed{mode: fuzzMode(0, varRawType), ctype: ct, body: valid})
	}
	for _, h := range [][2]string{
		{"$AUTH", "$TOKEN"}, {"Bearer $AUTH", "$APIKEY"}, {"BEARER $AUTH", " $TOKEN\t"}, {"Bearer", "$TOKEN"},
		{"Bearer ", ""}, {"Basic $AUTH", "$TOKEN"}, {"$AUTH$AUTH", "$TOKEN"}, {"$OTHERAUTH", "$TOKEN"},
		{"$AUTH", "$OTHERTOKEN"}, {"$AUTH", "$OTHERAPIKEY"}, {"\xff\xfe", "\x00"}, {"$AUTH\r\nX-WOOS-KEY: $TOKEN", ""},
		{strings.Repeat("A", 10000), strings.Repeat("k", 10000)}, {"Bearer Bearer $AUTH", "$TOKEN"},
	} {
		out = append(out, fuzzSeed{mode: fuzzMode(credRawHeaders, 0), auth: h[0], key: h[1], body: valid})
	}
	for _, b := range fuzzEdgeBodies {
		out = append(out, fuzzSeed{mode: fuzzMode(0, 0), body: b})
	}
	return out
}

// fuzzEdgeBodies are bodies that are not what any endpoint wants.
var fuzzEdgeBodies = []string{
	"", " ", "null", "true", "0", `"{}"`, "[]", "[{}]", `[{"uniqueIdSha":"u"}]`, "{", "}", "{}", " \t\r\n{}\n",
	"{} {}", "{}x", `{"a":1,}`, `{'a':1}`, "\xef\xbb\xbf{}", "{\x00}", "\x00{}", `{"a":NaN}`, `{"a":Infinity}`,
	`{"a":1e999999}`, `{"a":-0}`, `{"":""}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\xfe\"}", `{"a":"\u0000"}`,
	"{\"" + strings.Repeat("k", 70000) + "\":1}",
	"{\"a\":" + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + "}",
	"{\"a\":" + strings.Repeat("{\"a\":", 5000) + "1" + strings.Repeat("}", 5000) + "}",
	strings.Repeat("{\"a\":", 20000),
}

// longText is n characters of c.
func longText(c string, n int) string { return strings.Repeat(c, n) }

// FuzzUserNew fuzzes POST /third_parties/user/new and, with sel odd,
// /third_parties/user/rotate.
func FuzzUserNew(f *testing.F) {
	w := newFuzzWorld(f)
	eps := []fuzzEndpoint{epUserNew, epUserRotate, epUserBulk}
	valid := `{"uniqueIdSha":"8d969eef6ecad3c29a3a","platform":"ios","deviceName":"iPhone 15","hardwareId":"hw-1","osVersion":"18.1"}`
	for _, s := range seedsFor(epUserBulk, `{"users":[{"uniqueIdSha":"b1"},{"uniqueIdSha":"b2","platform":"ios"}]}`, []string{
		`{"users":[]}`, `{"users":null}`, `{}`, `{"users":{"uniqueIdSha":"b1"}}`, `{"users":"b1"}`, `{"users":[5,"x",null,[]]}`,
		`{"users":[{"uniqueIdSha":"b1"},{"uniqueIdSha":"b1"},{"uniqueIdSha":""},{"uniqueIdSha":5}]}`,
		`{"users":[{"uniqueIdSha":"$USER"},{"uniqueIdSha":"$OTHERUSER"},{"uniqueIdSha":"a\u0000b"}]}`,
		`{"users":[$MANY<{"uniqueIdSha":"m$I"}>]}`, `{"users":[$MANY<{"uniqueIdSha":"m"}>]}`,
		`{"users":[{"uniqueIdSha":"b1","platform":{"x":1}},{"uniqueIdSha":"` + longText("é", 256) + `"}]}`,
		`{"users":[{"uniqueIdSha":"b1"}],"users":null}`, `{"USERS":[{"UNIQUEIDSHA":"b3"}]}`,
	}) {
		f.Add(s.mode, byte(2), s.ctype, s.auth, s.key, []byte(s.body))
	}
	for _, s := range seedsFor(epUserRotate, `{"uniqueIdSha":"user-0"}`, []string{
		valid, `{"uniqueIdSha":"mate-0"}`, `{"uniqueIdSha":"user-1"}`, `{"uniqueIdSha":"nobody"}`, `{"uniqueIdSha":""}`,
		`{"uniqueIdSha":5}`, `{"uniqueIdSha":"user-0","uniqueIdSha":null}`, `{"uniqueIdSha":"user-0\u0000"}`,
		`{"uniqueIdSha":"` + longText("u", 256) + `"}`, `{"virtualUser":"$USER"}`, `{"uniqueIdSha":"$USER"}`,
	}) {
		f.Add(s.mode, byte(1), s.ctype, s.auth, s.key, []byte(s.body))
	}
	for _, s := range seedsFor(epUserNew, valid, []string{
		`{"uniqueIdSha":"u1"}`, `{"uniqueIdSha":"u1","x":[$MANY<{"a":$I,"b":"$I"}>]}`, `{"uniqueIdSha":"$MANY<é>"}`, `{"uniqueIdSha":"u1","platform":"android"}`, `{"uniqueIdSha":"   "}`,
		`{"uniqueIdSha":""}`, `{"uniqueIdSha":null}`, `{}`, `{"uniqueIdSha":123}`, `{"uniqueIdSha":"123"}`,
		`{"uniqueIdSha":1e400}`, `{"uniqueIdSha":true}`, `{"uniqueIdSha":["u1"]}`, `{"uniqueIdSha":{"id":"u1"}}`,
		`{"UNIQUEIDSHA":"u1","PLATFORM":"ios"}`, `{"uniqueidsha":"u1"}`, `{"uniqueIdSha":"a","uniqueIdSha":"b"}`,
		`{"uniqueIdSha":"a","uniqueIdSha":null}`, `{"uniqueIdSha":"a","uniqueIdSha":5}`,
		`{"uniqueIdSha":"a\u0000b"}`, "{\"uniqueIdSha\":\"a\x00b\"}", "{\"uniqueIdSha\":\"\xff\"}", `{"uniqueIdSha":"\ud83d"}`,
		`{"uniqueIdSha":"` + longText("a", 255) + `"}`, `{"uniqueIdSha":"` + longText("a", 256) + `"}`,
		`{"uniqueIdSha":"` + longText("é", 255) + `"}`, `{"uniqueIdSha":"` + longText("😀", 256) + `"}`,
		`{"uniqueIdSha":"` + longText("x", 200000) + `"}`,
		`{"uniqueIdSha":"u1","platform":5}`, `{"uniqueIdSha":"u1","deviceName":{"a":1}}`, `{"uniqueIdSha":"u1","hardwareId":"` + longText("h", 256) + `"}`,
		`{"uniqueIdSha":"u1","osVersion":"\u0000"}`, `{"uniqueIdSha":"u1","platform":null,"deviceName":null}`,
		`{"uniqueIdSha":"$USER"}`, `{"uniqueIdSha":"$OTHERUSER"}`, `{"uniqueIdSha":" u1"}`, `{"uniqueIdSha":"u1","unknown":[1,2,{"x":null}]}`,
	}) {
		f.Add(s.mode, byte(0), s.ctype, s.auth, s.key, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, mode, sel byte, ctype, auth, key string, body []byte) {
		w.check(t, eps[int(sel)%len(eps)], mode, ctype, auth, key, body)
	})
}

// FuzzTokenNew fuzzes POST /token/new.
func FuzzTokenNew(f *testing.F) {
	w := newFuzzWorld(f)
	valid := `{"virtual_user":"u1","bot_idsha":"$BOT","mail":"ana@example.com"}`
	for _, s := range seedsFor(epTokenNew, valid, []string{
		`{"virtual_user":"u1","bot_idsha":"$BOT","mail":"ana@example.com","max_retries":10,"date_limit":"$DATE"}`,
		`{"virtual_user":"u1","bot_idsha":"$BOT","mail":"$MANY<a>@example.com"}`,
		`{"virtual_user":"u1","bot_idsha":"$BOT","celullar":"+34$MANY<6>"}`,
		`{"virutal_user":"u2","bot_idsha":"$BOT","celullar":"+34 612 34 56 78"}`,
		`{"virtual_user":"u3","bot_idsha":"$BOT","cellular":"0034612345678","mail":"u3@example.com"}`,
		`{"virtual_user":"u4","bot_idsha":"$BOT","mail":"u4@example.com","max_retries":"10"}`,
		`{"virtual_user":"u4","bot_idsha":"$BOT","mail":"u4@example.com","max_retries":" 7 "}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":1000,"date_limit":"$MAXDATE"}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":1001}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":0}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":-1}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":1.5}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":1e3}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":"1e3"}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":99999999999999999999999}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":-9223372036854775808}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":true}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":null}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":[10]}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":{"n":10}}`,
		`{"virtual_user":"u5","bot_idsha":"$BOT","mail":"u5@example.com","max_retries":"+5"}`,
		`{"virtual_user":"u6","bot_idsha":"$BOT","mail":"u6@example.com","date_limit":"$TODAY"}`,
		`{"virtual_user":"u6","bot_idsha":"$BOT","mail":"u6@example.com","date_limit":"$PASTDATE"}`,
		`{"virtual_user":"u6","bot_idsha":"$BOT","mail":"u6@example.com","date_limit":"$LATEDATE"}`,
		`{"virtual_user":"u6","bot_idsha":"$BOT","mail":"u6@example.com","date_limit":"2026-02-30"}`,
		`{"virtual_user":"u6","bot_idsha":"$BOT","mail":"u6@example.com","date_limit":"27/12/2026"}`,
		`{"virtual_user":"u6","bot_idsha":"$BOT","mail":"u6@example.com","date_limit":"99999-01-01"}`,
		`{"virtual_user":"u6","bot_idsha":"$BOT","mail":"u6@example.com","date_limit":"$DATET00:00:00Z"}`,
		`{"virtual_user":"u6","bot_idsha":"$BOT","mail":"u6@example.com","date_limit":20261227}`,
		`{"virtual_user":"u7","bot_idsha":"$OTHERBOT","mail":"u7@example.com"}`,
		`{"virtual_user":"u7","bot_idsha":"nope","mail":"u7@example.com"}`,
		`{"virtual_user":"$OTHERUSER","bot_idsha":"$BOT","mail":"u7@example.com"}`,
		`{"virtual_user":"u8","bot_idsha":"$BOT"}`, `{"virtual_user":"u8","bot_idsha":"$BOT","mail":"  ","celullar":""}`,
		`{"virtual_user":"u8","bot_idsha":"$BOT","mail":"Ana <ana@example.com>"}`,
		`{"virtual_user":"u8","bot_idsha":"$BOT","mail":"ana@localhost"}`,
		`{"virtual_user":"u8","bot_idsha":"$BOT","mail":"@"}`, `{"virtual_user":"u8","bot_idsha":"$BOT","mail":"a@b@c.com"}`,
		`{"virtual_user":"u8","bot_idsha":"$BOT","mail":"\"a b\"@example.com"}`,
		`{"virtual_user":"u8","bot_idsha":"$BOT","mail":"ñandú@ejemplo.es"}`,
		`{"virtual_user":"u8","bot_idsha":"$BOT","mail":"` + longText("a", 245) + `@example.com"}`,
		`{"virtual_user":"u8","bot_idsha":"$BOT","mail":"a@example.com\u0000"}`,
		`{"virtual_user":"u8","bot_idsha":"$BOT","mail":["a@example.com"]}`,
		`{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"+1"}`, `{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"+"}`,
		`{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"00"}`, `{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"612345678"}`,
		`{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"+34abc"}`, `{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"+999999999999999999999999999999"}`,
		`{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"+34 612 34 56 78 ext. 123"}`,
		`{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"+٣٤٦١٢٣٤٥٦٧٨"}`, `{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"+1 (650) 253-0000"}`,
		`{"virtual_user":"u9","bot_idsha":"$BOT","celullar":34612345678}`, `{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"+34;ext=1"}`,
		`{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"+800 1234 5678"}`, `{"virtual_user":"u9","bot_idsha":"$BOT","celullar":"tel:+34612345678"}`,
		`{"virtual_user":"","virutal_user":"u10","bot_idsha":"$BOT","mail":"u10@example.com"}`,
		`{"virtual_user":"  ","virutal_user":"u10","bot_idsha":"$BOT","mail":"u10@example.com"}`,
		`{"virtual_user":null,"bot_idsha":null,"mail":null,"celullar":null,"max_retries":null,"date_limit":null}`,
		`{"virtual_user":["u"],"bot_idsha":"$BOT","mail":"u@example.com"}`,
		`{"virtual_user":"` + longText("u", 256) + `","bot_idsha":"$BOT","mail":"u@example.com"}`,
		`{"VIRTUAL_USER":"u11","BOT_IDSHA":"$BOT","MAIL":"u11@example.com"}`,
		`{"virtual_user":"u12","bot_idsha":"$BOT","mail":"same@example.com"}`,
	}) {
		f.Add(s.mode, s.ctype, s.auth, s.key, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, mode byte, ctype, auth, key string, body []byte) {
		w.check(t, epTokenNew, mode, ctype, auth, key, body)
	})
}

// FuzzChatCreate fuzzes POST /chat/create.
func FuzzChatCreate(f *testing.F) {
	w := newFuzzWorld(f)
	valid := `{"type":"chat","contacts":[{"idsha":"$BOT"}]}`
	many := make([]string, 257)
	for i := range many {
		many[i] = `{"idsha":"c` + strconv.Itoa(i) + `"}`
	}
	for _, s := range seedsFor(epChatCreate, valid, []string{
		`{"type":"group","contacts":[$MANY<{"idsha":"c$I"}>]}`, `{"type":"chat","contacts":[$MANY<{"bot_idsha":"$I"}>]}`,
		`{"type":"group","name":"$MANY<n>","contacts":[{"idsha":"$MATE"}]}`,
		`{"type":"chat","contacts":[{"idsha":"$MATE"}]}`, `{"type":"chat","contacts":[{"bot_idsha":"$BOT"}]}`,
		`{"type":"group","name":"Team","contacts":[{"idsha":"$MATE"},{"idsha":"$BOT"}]}`,
		`{"type":"group","contacts":[{"idsha":"$MATE"},{"idsha":"$MATE"},{"idsha":"$USER"}]}`,
		`{"type":"chat","contacts":[{"idsha":"$USER"}]}`, `{"type":"group","contacts":[{"idsha":"$USER"}]}`,
		`{"type":"chat","contacts":[{"idsha":"$MATE"},{"idsha":"$BOT"}]}`, `{"type":"chat","contacts":[]}`,
		`{"type":"group","contacts":[]}`, `{"type":"chat"}`, `{"contacts":[{"idsha":"$BOT"}]}`,
		`{"type":"chat","contacts":[{"idsha":"nobody"}]}`, `{"type":"chat","contacts":[{"idsha":"$OTHERUSER"}]}`,
		`{"type":"chat","contacts":[{"idsha":"$OTHERBOT"}]}`, `{"type":"group","contacts":[{"idsha":"$MATE"},{"idsha":"$OTHERMATE"}]}`,
		`{"type":"CHAT","contacts":[{"idsha":"$BOT"}]}`, `{"type":1,"contacts":[{"idsha":"$BOT"}]}`, `{"type":null}`,
		`{"type":"chat","contacts":{"idsha":"$BOT"}}`, `{"type":"chat","contacts":["$BOT"]}`, `{"type":"chat","contacts":[null]}`,
		`{"type":"chat","contacts":[{}]}`, `{"type":"chat","contacts":[{"idsha":"  "}]}`, `{"type":"chat","contacts":[{"idsha":5}]}`,
		`{"type":"chat","contacts":[{"idsha":"","bot_idsha":"$BOT"}]}`, `{"type":"chat","contacts":[[{"idsha":"$BOT"}]]}`,
		`{"type":"chat","contacts":[{"idsha":"$BOT\u0000"}]}`, `{"type":"chat","contacts":[{"idsha":"` + longText("x", 256) + `"}]}`,
		`{"type":"group","name":"` + longText("n", 256) + `","contacts":[{"idsha":"$MATE"}]}`,
		`{"type":"group","name":"a\u0000b","contacts":[{"idsha":"$MATE"}]}`, `{"type":"group","name":5,"contacts":[{"idsha":"$MATE"}]}`,
		`{"type":"group","contacts":[` + strings.Join(many, ",") + `]}`,
		`{"type":"group","contacts":[` + strings.Join(many[:256], ",") + `]}`,
		`{"type":"chat","contacts":[{"idsha":"$BOT"}],"type":"group"}`,
		`{"type":"chat","contacts":[{"idsha":" $BOT "}]}`, `{"Type":"chat","Contacts":[{"IDSHA":"$BOT"}]}`,
	}) {
		f.Add(s.mode, s.ctype, s.auth, s.key, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, mode byte, ctype, auth, key string, body []byte) {
		w.check(t, epChatCreate, mode, ctype, auth, key, body)
	})
}

// FuzzMessages fuzzes the user-level message calls: /chat/message/send,
// /chat/message/list, /chat/list and /chat/read, chosen by sel.
func FuzzMessages(f *testing.F) {
	w := newFuzzWorld(f)
	eps := []fuzzEndpoint{epMessageSend, epMessageList, epChatList, epChatRead}
	valids := []string{
		`{"conversationId":"$CONV","text":"hello","clientMsgId":"c-1"}`,
		`{"conversationId":"$CONV","afterSeq":0,"limit":50}`,
		`{"limit":100}`,
		`{"conversationId":"$CONV","seq":12}`,
	}
	bodies := [][]string{{
		`{"conversationId":"$GROUP","text":"hi all"}`, `{"conversationId":"$CONV","text":"$MANY<x>"}`, `{"conversationId":"$CONV","text":"` + longText("é", 4000) + `"}`,
		`{"conversationId":"$CONV","text":"` + longText("é", 4001) + `"}`, `{"conversationId":"$CONV","text":"   \n\t"}`,
		`{"conversationId":"$CONV","text":""}`, `{"conversationId":"$CONV"}`, `{"text":"hi"}`,
		`{"conversationId":"$CONV","text":"a\u0000b"}`, "{\"conversationId\":\"$CONV\",\"text\":\"\xff\xfe\"}",
		`{"conversationId":"$CONV","text":"\ud800\udc00"}`, `{"conversationId":"$CONV","text":5}`, `{"conversationId":"$CONV","text":["hi"]}`,
		`{"conversationId":"$CONV","text":"hi","clientMsgId":"` + longText("c", 64) + `"}`,
		`{"conversationId":"$CONV","text":"hi","clientMsgId":"` + longText("c", 65) + `"}`,
		`{"conversationId":"$CONV","text":"hi","clientMsgId":"  "}`, `{"conversationId":"$CONV","text":"hi","clientMsgId":"\u0000"}`,
		`{"conversationId":"$CONV","text":"hi","clientMsgId":7}`, `{"conversationId":"$OTHERCONV","text":"hi"}`,
		`{"conversationId":"nope","text":"hi"}`, `{"conversationId":5,"text":"hi"}`,
		`{"conversationId":"$CONV","text":"hi","bot_idsha":"$BOT","clientMsgId":"wh-1"}`,
	}, {
		`{"conversationId":"$CONV"}`, `{"conversationId":"$CONV","afterSeq":"3"}`, `{"conversationId":"$CONV","beforeSeq":5,"limit":200}`,
		`{"conversationId":"$CONV","afterSeq":1,"beforeSeq":5}`, `{"conversationId":"$CONV","afterSeq":-1}`,
		`{"conversationId":"$CONV","afterSeq":9223372036854775807}`, `{"conversationId":"$CONV","afterSeq":9223372036854775808}`,
		`{"conversationId":"$CONV","beforeSeq":1.5}`, `{"conversationId":"$CONV","limit":201}`, `{"conversationId":"$CONV","limit":0}`,
		`{"conversationId":"$CONV","limit":"abc"}`, `{"conversationId":"$CONV","limit":1e2}`, `{"conversationId":"$CONV","afterSeq":null,"beforeSeq":null}`,
		`{"conversationId":"$GROUP","limit":1}`, `{"conversationId":"$OTHERCONV"}`, `{"conversationId":"$OTHERGROUP"}`, `{"conversationId":"  "}`,
		`{"conversationId":{"id":"$CONV"}}`,
	}, {
		`{}`, `{"limit":500}`, `{"limit":501}`, `{"limit":"1"}`, `{"limit":-5}`, `{"limit":null}`, `{"limit":[1]}`,
		`{"limit":18446744073709551616}`,
	}, {
		`{"conversationId":"$CONV","seq":0}`, `{"conversationId":"$CONV","seq":"3"}`, `{"conversationId":"$CONV"}`,
		`{"conversationId":"$CONV","seq":null}`, `{"conversationId":"$CONV","seq":-1}`, `{"conversationId":"$CONV","seq":9223372036854775807}`,
		`{"conversationId":"$CONV","seq":1e400}`, `{"conversationId":"$GROUP","seq":1}`, `{"conversationId":"$OTHERCONV","seq":1}`,
		`{"conversationId":"$CONV","seq":true}`,
	}}
	for sel := range eps {
		for _, s := range seedsFor(eps[sel], valids[sel], bodies[sel]) {
			f.Add(s.mode, byte(sel), s.ctype, s.auth, s.key, []byte(s.body))
		}
	}
	f.Fuzz(func(t *testing.T, mode, sel byte, ctype, auth, key string, body []byte) {
		w.check(t, eps[int(sel)%len(eps)], mode, ctype, auth, key, body)
	})
}

// FuzzTokenStatus fuzzes /token/status and /token/revoke, chosen by sel.
func FuzzTokenStatus(f *testing.F) {
	w := newFuzzWorld(f)
	eps := []fuzzEndpoint{epTokenStatus, epTokenRevoke}
	valid := `{"url":"$URL"}`
	bodies := []string{
		`{"url":"$LINK"}`, `{"url":"/l/$LINK"}`, `{"url":"$MANY</>"}`, `{"url":"https://e.com/l/$MANY<%2F>"}`, `{"url":"$URL?x=1#frag"}`, `{"url":"$URL/"}`, `{"url":" $URL "}`,
		`{"url":"$OTHERURL"}`, `{"url":"$OTHERLINK"}`, `{"url":""}`, `{"url":"   "}`, `{"url":null}`, `{}`,
		`{"url":"https://chat.example.test/l/"}`, `{"url":"/"}`, `{"url":"%zz"}`, `{"url":"http://[::1"}`,
		`{"url":"imbl_` + longText("x", 124) + `"}`, `{"url":"imbl_` + longText("x", 123) + `"}`,
		`{"url":"imbl_\u0000"}`, `{"url":123}`, `{"url":["$URL"]}`, `{"url":{"href":"$URL"}}`, `{"url":"?a=/b"}`,
		`{"url":"$URL","url":"nope"}`, `{"URL":"$URL"}`, `{"url":"` + longText("/", 5000) + `"}`, `{"url":"mailto:a@b.c"}`,
		`{"url":"https://chat.example.test/l/%00"}`, `{"url":"https://chat.example.test/l/..%2F$LINK"}`,
		`{"virtual_user":"user-1"}`, `{"virtual_user":"nobody"}`, `{"virtual_user":"  "}`, `{"virtual_user":5}`,
		`{"url":"","virtual_user":"user-1"}`, `{"url":"$URL","virtual_user":"user-1"}`, `{"url":" ","virtual_user":" "}`,
		`{"virtual_user":"` + longText("u", 256) + `"}`, `{"virtual_user":"u\u0000"}`, `{"virtual_user":["user-0"]}`,
	}
	for sel := range eps {
		for _, s := range seedsFor(eps[sel], valid, bodies) {
			f.Add(s.mode, byte(sel), s.ctype, s.auth, s.key, []byte(s.body))
		}
	}
	f.Fuzz(func(t *testing.T, mode, sel byte, ctype, auth, key string, body []byte) {
		w.check(t, eps[int(sel)%len(eps)], mode, ctype, auth, key, body)
	})
}

// FuzzBot fuzzes /bot/message/send and /bot/webhook, chosen by sel.
func FuzzBot(f *testing.F) {
	w := newFuzzWorld(f)
	eps := []fuzzEndpoint{epBotSend, epBotWebhook}
	valids := []string{
		`{"bot_idsha":"$BOT","conversationId":"$CONV","text":"hello","clientMsgId":"msg_0fe2_13"}`,
		`{"bot_idsha":"$BOT","url":"https://example.com/hook"}`,
	}
	bodies := [][]string{{
		`{"bot_idsha":"$BOT","conversationId":"$CONV","text":"no key"}`, `{"bot_idsha":"$BOT","conversationId":"$GROUP","text":"not a member"}`,
		`{"bot_idsha":"$OTHERBOT","conversationId":"$CONV","text":"hi"}`, `{"bot_idsha":"$OTHERBOT","conversationId":"$OTHERCONV","text":"hi"}`,
		`{"bot_idsha":"$BOT","conversationId":"$OTHERCONV","text":"hi"}`, `{"bot_idsha":"nope","conversationId":"$CONV","text":"hi"}`,
		`{"conversationId":"$CONV","text":"hi"}`, `{"bot_idsha":"","conversationId":"$CONV","text":"hi"}`,
		`{"bot_idsha":"$BOT","text":"hi"}`, `{"bot_idsha":"$BOT","conversationId":"$CONV"}`,
		`{"bot_idsha":"$BOT","conversationId":"$CONV","text":"` + longText("x", 4001) + `"}`,
		`{"bot_idsha":"$BOT","conversationId":"$CONV","text":"hi","clientMsgId":"` + longText("c", 65) + `"}`,
		`{"bot_idsha":5,"conversationId":"$CONV","text":"hi"}`, `{"bot_idsha":"$BOT","conversationId":"$CONV","text":{"t":"hi"}}`,
		`{"bot_idsha":"$USER","conversationId":"$CONV","text":"as the user"}`,
	}, {
		`{"bot_idsha":"$BOT","url":""}`, `{"bot_idsha":"$BOT","url":"https://e.com/$MANY<a>"}`, `{"bot_idsha":"$BOT","url":"http://localhost:8080/x?y=1"}`, `{"bot_idsha":"$BOT","url":"ftp://example.com"}`,
		`{"bot_idsha":"$BOT","url":"https://"}`, `{"bot_idsha":"$BOT","url":"https:///path"}`, `{"bot_idsha":"$BOT","url":"javascript:alert(1)"}`,
		`{"bot_idsha":"$BOT","url":"http://[::1]:80/"}`, `{"bot_idsha":"$BOT","url":"http://[::1"}`, `{"bot_idsha":"$BOT","url":"https://e.com/` + longText("p", 2000) + `"}`,
		`{"bot_idsha":"$BOT","url":"https://e.com/\u0000"}`, `{"bot_idsha":"$BOT","url":5}`, `{"bot_idsha":"$BOT","url":null}`,
		`{"bot_idsha":"$BOT"}`, `{"url":"https://example.com/hook"}`, `{"bot_idsha":"$OTHERBOT","url":"https://example.com/hook"}`,
		`{"bot_idsha":"$OTHERBOT","url":""}`, `{"bot_idsha":"nope","url":"https://example.com/hook"}`, `{"bot_idsha":"$BOT","url":"HTTPS://EXAMPLE.COM"}`,
		`{"bot_idsha":"$BOT","url":" https://example.com/hook "}`, `{"bot_idsha":"$BOT","url":"https://user:pass@example.com/"}`,
	}}
	for sel := range eps {
		for _, s := range seedsFor(eps[sel], valids[sel], bodies[sel]) {
			f.Add(s.mode, byte(sel), s.ctype, s.auth, s.key, []byte(s.body))
		}
	}
	f.Fuzz(func(t *testing.T, mode, sel byte, ctype, auth, key string, body []byte) {
		w.check(t, eps[int(sel)%len(eps)], mode, ctype, auth, key, body)
	})
}

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/pb33f/libopenapi-validator/config"
	valerrors "github.com/pb33f/libopenapi-validator/errors"
	"github.com/pb33f/libopenapi-validator/helpers"
	"github.com/pb33f/libopenapi-validator/paths"
	"github.com/pb33f/libopenapi-validator/responses"
	"github.com/pb33f/libopenapi-validator/schema_validation"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"

	"github.com/imbee/imbee"
)

// contract is docs/openapi.json (as built into the server) ready to check
// responses against, with what a validator does not know of OpenAPI's
// extensions: the answers to paths and methods the document does not list.
type contract struct {
	model     *v3.Document
	validator validator.Validator
	opts      *config.ValidationOptions
	// unmatched answers a path not in the document, otherMethods[path] a
	// method that path does not list: status → response.
	unmatched    map[string]*v3.Response
	otherMethods map[string]map[string]*v3.Response
}

// loadContract parses the document once per test binary; the validator is
// safe for concurrent use.
var loadContract = sync.OnceValues(func() (*contract, error) {
	doc, err := libopenapi.NewDocument(imbee.OpenAPI)
	if err != nil {
		return nil, err
	}
	m, err := doc.BuildV3Model()
	if err != nil {
		return nil, err
	}
	c := &contract{model: &m.Model, opts: config.NewValidationOptions(config.WithFormatAssertions()),
		otherMethods: map[string]map[string]*v3.Response{}}
	// NewValidator keeps doc, for ValidateDocument; it reuses doc's model.
	v, errs := validator.NewValidator(doc, config.WithFormatAssertions())
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.validator = v

	type refs map[string]struct {
		Ref string `json:"$ref"`
	}
	var raw struct {
		Unmatched struct {
			Responses refs `json:"responses"`
		} `json:"x-unmatched"`
		Paths map[string]struct {
			Other refs `json:"x-other-methods"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(imbee.OpenAPI, &raw); err != nil {
		return nil, err
	}
	resolve := func(rs refs) (map[string]*v3.Response, error) {
		out := map[string]*v3.Response{}
		for status, r := range rs {
			name, ok := strings.CutPrefix(r.Ref, "#/components/responses/")
			resp := c.model.Components.Responses.GetOrZero(name)
			if !ok || resp == nil {
				return nil, fmt.Errorf("%q names no response of components.responses", r.Ref)
			}
			out[status] = resp
		}
		return out, nil
	}
	if c.unmatched, err = resolve(raw.Unmatched.Responses); err != nil || len(c.unmatched) == 0 {
		return nil, fmt.Errorf("x-unmatched.responses: %v", err)
	}
	for p, item := range raw.Paths {
		if c.otherMethods[p], err = resolve(item.Other); err != nil || len(c.otherMethods[p]) == 0 {
			return nil, fmt.Errorf("paths[%s].x-other-methods: missing or wrong: %v", p, err)
		}
	}
	return c, nil
})

// check returns how resp, whose body is body, departs from the contract
// for req: an undocumented status, a missing or malformed header, another
// Content-Type, a body that does not match its schema, or an envelope
// whose keys are out of order. resp is not changed.
func (c *contract) check(req *http.Request, resp *http.Response, body []byte) []string {
	cp := *resp
	cp.Body = http.NoBody
	if len(body) > 0 {
		cp.Body = io.NopCloser(bytes.NewReader(body))
	}
	var errs []*valerrors.ValidationError
	item, missing, template := paths.FindPath(req, c.model, c.opts)
	switch {
	case item == nil:
		errs = c.checkFallback(req, &cp, "unknown path", c.unmatched)
	case len(missing) > 0:
		errs = c.checkFallback(req, &cp, "method not listed for "+template, c.otherMethods[template])
	default:
		_, errs = c.validator.ValidateHttpResponse(req, &cp)
	}
	var out []string
	for _, e := range errs {
		msg := e.Message
		if e.Reason != "" && e.Reason != e.Message {
			msg += ": " + e.Reason
		}
		for _, s := range e.SchemaValidationErrors {
			msg += fmt.Sprintf("\n\t\t%s: %s", s.FieldPath, s.Reason)
		}
		out = append(out, msg)
	}
	if err := envelopeOrder(body); err != nil {
		out = append(out, err.Error())
	}
	return out
}

// checkFallback checks an answer to a request the document lists no
// operation for against the responses the document gives for that case.
func (c *contract) checkFallback(req *http.Request, resp *http.Response, what string, rs map[string]*v3.Response) []*valerrors.ValidationError {
	status := strconv.Itoa(resp.StatusCode)
	r := rs[status]
	if r == nil {
		return []*valerrors.ValidationError{{Message: fmt.Sprintf("%s: status %d is not documented", what, resp.StatusCode)}}
	}
	var errs []*valerrors.ValidationError
	if r.Headers != nil {
		_, hErrs := responses.ValidateResponseHeaders(req, resp, r.Headers, req.URL.Path, status, config.WithExistingOpts(c.opts))
		errs = append(errs, hErrs...)
	}
	if r.Content == nil || r.Content.Len() == 0 {
		return errs
	}
	ct := resp.Header.Get("Content-Type")
	mt, ok := helpers.FindMediaType(r.Content, ct)
	if !ok {
		return append(errs, &valerrors.ValidationError{Message: fmt.Sprintf("%s: Content-Type %q is not documented for %d", what, ct, resp.StatusCode)})
	}
	if mt.Schema == nil || !strings.Contains(ct, "json") || req.Method == http.MethodHead {
		return errs
	}
	_, bodyErrs := responses.ValidateResponseSchema(&responses.ValidateResponseSchemaInput{
		Request: req, Response: resp, Schema: mt.Schema.Schema(), Version: 3.1,
		Options: []config.Option{config.WithExistingOpts(c.opts)},
	})
	return append(errs, bodyErrs...)
}

// envelopeOrder checks that a JSON object with the envelope's keys has them
// in the envelope's order, which JSON Schema cannot say.
func envelopeOrder(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		keys = append(keys, t.(string))
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return nil
		}
	}
	got := strings.Join(keys, ",")
	if got != "time,code,message,body" && strings.Contains(got, "time") && strings.Contains(got, "code") && strings.Contains(got, "body") {
		return errors.New("envelope keys out of order: " + got + ", want time,code,message,body")
	}
	return nil
}

// validating is an http.RoundTripper that checks every response against
// the contract.
type validating struct {
	t  testing.TB
	rt http.RoundTripper
	c  *contract
}

func (v validating) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := v.rt.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	var body []byte
	// A 101's body is the WebSocket connection: leave it to the caller.
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	if errs := v.c.check(req, resp, body); len(errs) > 0 {
		v.t.Errorf("%s %s: HTTP %d departs from docs/openapi.json:\n\t%s\nheaders: %v\nbody: %.2000s",
			req.Method, req.URL.Path, resp.StatusCode, strings.Join(errs, "\n\t"), resp.Header, body)
	}
	return resp, nil
}

// validated wraps rt so that every API response passing through it is
// checked against docs/openapi.json, failing t on a mismatch.
func validated(t testing.TB, rt http.RoundTripper) http.RoundTripper {
	c, err := loadContract()
	if err != nil {
		t.Fatalf("docs/openapi.json: %v", err)
	}
	return validating{t: t, rt: rt, c: c}
}

// TestOpenAPIServed: GET /openapi.json is the built-in document, byte for
// byte, as JSON; other methods are the API's 405.
func TestOpenAPIServed(t *testing.T) {
	s := startServer(t)
	client := &http.Client{Transport: validated(t, http.DefaultTransport)}
	resp, err := client.Get(s.URL + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(got, imbee.OpenAPI) {
		t.Errorf("GET /openapi.json: %d %q, %d bytes (same as imbee.OpenAPI: %v)",
			resp.StatusCode, resp.Header.Get("Content-Type"), len(got), bytes.Equal(got, imbee.OpenAPI))
	}
	if resp, err = client.Head(s.URL + "/openapi.json"); err != nil || resp.StatusCode != 200 {
		t.Errorf("HEAD /openapi.json: %v %v", resp, err)
	}
	e := s.call(t, "POST", "/openapi.json", map[string]string{"Content-Type": "application/json"}, "{}")
	expect(t, e, 405, 1)
}

// TestOpenAPIDocument: the document is valid OpenAPI 3.1, and its examples
// match their schemas.
func TestOpenAPIDocument(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	if ok, errs := c.validator.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Errorf("not valid OpenAPI: %s: %s", e.Message, e.Reason)
		}
	}
	examples := 0
	for p, item := range c.model.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			for status, r := range op.Responses.Codes.FromOldest() {
				for ct, mt := range r.Content.FromOldest() {
					if mt.Example == nil || !strings.Contains(ct, "json") {
						continue
					}
					examples++
					var v any
					if err := mt.Example.Decode(&v); err != nil {
						t.Fatal(err)
					}
					b, _ := json.Marshal(v)
					if ok, errs := c.validator.GetResponseBodyValidator().ValidateResponseBody(
						httpRequest(strings.ToUpper(method), p), jsonResponse(mustAtoi(t, status), string(b))); !ok {
						for _, e := range errs {
							t.Errorf("%s %s %s: the example does not match: %s %s", method, p, status, e.Message, e.Reason)
						}
					}
				}
			}
		}
	}
	if examples < 5 {
		t.Errorf("%d examples checked; the document has more", examples)
	}
}

// TestOpenAPISocketFrames: what /chat/socket sends after the handshake is
// the document's SocketFrame: the catch-up, ready, new messages and read
// marks, and ready on an empty conversation.
func TestOpenAPISocketFrames(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	frameSchema := c.model.Components.Schemas.GetOrZero("SocketFrame").Schema()
	frames := schema_validation.NewSchemaValidator(config.WithFormatAssertions())
	s := startServer(t)
	f := newChat(t, s)
	send := func(from user, text, clientMsgID string) {
		t.Helper()
		expect(t, s.post(t, "/chat/message/send", f.c.auth, from.apikey, map[string]string{"conversationId": f.conv, "text": text, "clientMsgId": clientMsgID}), 200, 0)
	}
	dial := func(conv string) *websocket.Conn {
		t.Helper()
		url := strings.Replace(s.URL, "http://", "ws://", 1) + "/chat/socket?conversationId=" + conv
		ws, _, err := websocket.Dial(t.Context(), url, &websocket.DialOptions{
			HTTPHeader: http.Header{"Authorization": {f.c.auth}, "X-WOOS-KEY": {f.bea.apikey}},
			HTTPClient: &http.Client{Transport: validated(t, http.DefaultTransport)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		return ws
	}
	read := func(ws *websocket.Conn, want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		_, b, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for a %s frame: %v", want, err)
		}
		if ok, errs := frames.ValidateSchemaBytesWithVersion(frameSchema, b, 3.1); !ok {
			for _, e := range errs {
				t.Errorf("frame %s: %s %s", b, e.Message, e.Reason)
			}
		}
		var fr struct{ Type string }
		if json.Unmarshal(b, &fr); fr.Type != want {
			t.Errorf("frame %s, want a %s frame", b, want)
		}
	}

	send(f.ana, "hello", "c-1")
	send(f.ana, "again", "")
	ws := dial(f.conv)
	read(ws, "message")
	read(ws, "message")
	read(ws, "ready")
	send(f.ana, "live", "c-2")
	read(ws, "message")
	expect(t, s.post(t, "/chat/read", f.c.auth, f.ana.apikey, map[string]any{"conversationId": f.conv, "seq": 3}), 200, 0)
	read(ws, "read")

	group := s.post(t, "/chat/create", f.c.auth, f.bea.apikey, map[string]any{"type": "group", "name": "quiet", "contacts": []any{map[string]string{"idsha": f.ana.idsha}}})
	expect(t, group, 200, 0)
	read(dial(group.str("conversationId")), "ready")
}

// TestOpenAPIValidatorRejects: the check finds each kind of departure in
// responses made by hand, and validated fails its test with it.
func TestOpenAPIValidatorRejects(t *testing.T) {
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	const userOK = `{"time":0.001,"code":0,"message":"Ok","body":{"virtualUser":"68decf7f5b7c4d2e9a0b1c2d3e4f5a6b7c8d9e0f","pass":"imbp_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","apikey":"imbk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","previously_registered":false}}`
	cases := []struct {
		name         string
		method, path string
		status       int
		body         string
		edit         func(http.Header)
		valid        bool
	}{
		{"user/new as documented", "POST", "/third_parties/user/new", 200, userOK, nil, true},
		{"a required field missing", "POST", "/third_parties/user/new", 200, strings.Replace(userOK, `,"previously_registered":false`, "", 1), nil, false},
		{"a field of the wrong type", "POST", "/third_parties/user/new", 200, strings.Replace(userOK, `"previously_registered":false`, `"previously_registered":"no"`, 1), nil, false},
		{"a field not documented", "POST", "/third_parties/user/new", 200, strings.Replace(userOK, `"pass"`, `"password":"x","pass"`, 1), nil, false},
		{"an undocumented status", "POST", "/token/new", 418, `{"time":0.1,"code":1,"message":"teapot","body":{}}`, nil, false},
		{"a code that does not go with the status", "POST", "/token/new", 401, `{"time":0.1,"code":6,"message":"x","body":{"field":"mail"}}`, nil, false},
		{"code 6 without body.field", "POST", "/token/new", 400, `{"time":0.1,"code":6,"message":"x","body":{}}`, nil, false},
		{"a required header missing", "POST", "/third_parties/user/new", 200, userOK, func(h http.Header) { h.Del("X-Request-Id") }, false},
		{"429 without Retry-After", "POST", "/token/new", 429, `{"time":0.1,"code":8,"message":"slow down","body":{}}`, nil, false},
		{"another Content-Type", "POST", "/third_parties/user/new", 200, userOK, func(h http.Header) { h.Set("Content-Type", "text/plain") }, false},
		{"envelope keys out of order", "POST", "/third_parties/user/new", 200, `{"code":0,"time":0.001,"message":"Ok","body":` + userOK[strings.Index(userOK, `"body":`)+7:], nil, false},
		{"an unknown path's 404", "GET", "/nope", 404, `{"time":0.1,"code":1,"message":"no such endpoint","body":{}}`, nil, true},
		{"an unknown path answered 200", "GET", "/nope", 200, `{"time":0.1,"code":1,"message":"no such endpoint","body":{}}`, nil, false},
		{"a wrong method's 405", "GET", "/token/new", 405, `{"time":0.1,"code":1,"message":"use POST","body":{}}`, func(h http.Header) { h.Set("Allow", "POST") }, true},
		{"405 without Allow", "GET", "/token/new", 405, `{"time":0.1,"code":1,"message":"use POST","body":{}}`, nil, false},
		{"a link page", "GET", "/l/imbl_x", 410, "<!doctype html><p>gone", func(h http.Header) { pageHeaders(h) }, true},
		{"a link page as JSON", "GET", "/l/imbl_x", 410, `{"error":"gone"}`, func(h http.Header) { pageHeaders(h); h.Set("Content-Type", "application/json") }, false},
	}
	for _, tc := range cases {
		resp := jsonResponse(tc.status, tc.body)
		if tc.edit != nil {
			tc.edit(resp.Header)
		}
		if tc.status == 429 && tc.edit == nil {
			resp.Header.Del("Retry-After")
		}
		errs := c.check(httpRequest(tc.method, tc.path), resp, []byte(tc.body))
		if tc.valid != (len(errs) == 0) {
			t.Errorf("%s: valid %v, want %v; errors: %q", tc.name, len(errs) == 0, tc.valid, errs)
		}
	}

	// validated fails its test with the method, path, status and errors.
	rec := &recordingTB{TB: t}
	rt := validated(rec, roundTripFunc(func(*http.Request) (*http.Response, error) {
		return jsonResponse(200, `{"time":0.1,"code":0,"message":"Ok","body":{}}`), nil
	}))
	resp, err := rt.RoundTrip(httpRequest("POST", "/token/new"))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(resp.Body); string(b) != `{"time":0.1,"code":0,"message":"Ok","body":{}}` {
		t.Errorf("the caller got the body %q", b)
	}
	if len(rec.errs) != 1 || !strings.Contains(rec.errs[0], "POST /token/new: HTTP 200") || !strings.Contains(rec.errs[0], "url") {
		t.Errorf("validated reported %q", rec.errs)
	}
}

func pageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Robots-Tag", "noindex, nofollow")
}

func httpRequest(method, path string) *http.Request {
	req, err := http.NewRequest(method, "http://127.0.0.1:8080"+path, nil)
	if err != nil {
		panic(err)
	}
	return req
}

// jsonResponse is an API answer as the server writes it, headers included.
func jsonResponse(status int, body string) *http.Response {
	h := http.Header{}
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Request-Id", "0123456789abcdef")
	h.Set("Retry-After", "1")
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// recordingTB records Errorf instead of failing.
type recordingTB struct {
	testing.TB
	mu   sync.Mutex
	errs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/testkit"
)

// TestAttackOverLimitParameters: every limit docs/openapi.json gives a
// request parameter of the API (maxLength, maxItems and maximum of a body
// field, maxLength of a query parameter or a header) is the server's own,
// on both sides: a valid value at the limit is not refused for its
// parameter, and one past it (longer, blanks included, or larger) is code 6
// naming it. So a client generated from the document never sends what the
// server refuses, and the server holds what the document promises.
func TestAttackOverLimitParameters(t *testing.T) {
	testkit.ForEachBackend(t, testAttackOverLimitParameters)
}

func testAttackOverLimitParameters(t *testing.T) {
	s := startServer(t)
	c := s.demo()
	me := s.newUser(t, c, "limits_user")
	other := s.newUser(t, c, "limits_other")
	token := "imbl_" + strings.Repeat("A", 43)
	// Valid parameters for each call, each checked before anything is
	// looked up: a parameter past its limit answers code 6 whatever else.
	bases := map[string]map[string]any{
		"/third_parties/user/new":    {"uniqueIdSha": "limits_user"},
		"/third_parties/user/bulk":   {"users": []any{map[string]any{"uniqueIdSha": "limits_user"}}},
		"/third_parties/user/rotate": {"uniqueIdSha": "limits_user"},
		"/token/new":                 {"virtual_user": "limits_user", "bot_idsha": c.bot, "mail": "ana@example.com"},
		"/token/status":              {"url": token},
		"/token/revoke":              {"url": token},
		"/chat/create":               {"type": "group", "contacts": []any{map[string]any{"idsha": other.idsha}}, "name": "limits"},
		"/chat/message/send":         {"conversationId": strings.Repeat("0", 40), "text": "hello"},
		"/chat/message/list":         {"conversationId": strings.Repeat("0", 40)},
		"/chat/list":                 {},
		"/chat/read":                 {"conversationId": strings.Repeat("0", 40), "seq": 1},
		"/bot/message/send":          {"bot_idsha": c.bot, "conversationId": strings.Repeat("0", 40), "text": "hello"},
		"/bot/webhook":               {"bot_idsha": c.bot, "url": "https://bot.example.com/hook"},
	}
	// A parameter that stands for another: the other goes while it is tried.
	instead := map[string]string{"virutal_user": "virtual_user", "cellular": "celullar"}
	insteadOn := map[string]map[string]string{"/token/revoke": {"virtual_user": "url"}}

	doc := openAPIMap(t)
	tried := 0
	for _, path := range sortedKeys(doc.at("paths")) {
		item := doc.at("paths", path)
		for _, method := range []string{"get", "post"} {
			op := item.at(method)
			if op == nil || op["x-woos-key"] == nil {
				continue // not an API call
			}
			key := c.token
			if op["x-woos-key"] == "user apikey" {
				key = me.apikey
			}
			send := func(t *testing.T, body map[string]any, query url.Values, header map[string]string) envelope {
				h := map[string]string{"Authorization": c.auth, "X-WOOS-KEY": key}
				for k, v := range header {
					h[k] = v
				}
				if method == "get" {
					return s.call(t, "GET", path+"?"+query.Encode(), h, "")
				}
				h["Content-Type"] = "application/json"
				b, err := json.Marshal(body)
				if err != nil {
					t.Fatal(err)
				}
				return s.call(t, "POST", path, h, string(b))
			}
			// The parameters: query and headers.
			for _, p := range op.list("parameters") {
				p = doc.resolve(p)
				sch := doc.resolve(p.at("schema"))
				n, ok := sch["maxLength"].(float64)
				if !ok || (p["in"] != "query" && p["in"] != "header") {
					continue
				}
				name := p["in"].(string) + " " + p["name"].(string)
				if p["in"] == "header" && p["name"] != "Idempotency-Key" {
					continue // the WebSocket handshake's: the library's 400
				}
				tried++
				t.Run(path+"/"+name, func(t *testing.T) {
					for _, over := range []bool{false, true} {
						v := fill(p["name"].(string), int(n)+btoi(over))
						q, hd := url.Values{"conversationId": {strings.Repeat("0", 40)}}, map[string]string{}
						if p["in"] == "query" {
							q.Set(p["name"].(string), v)
						} else {
							hd[p["name"].(string)] = v
						}
						body := bases[path]
						if body == nil && method == "post" {
							t.Fatalf("no valid body for %s: add one to bases", path)
						}
						checkLimit(t, send(t, body, q, hd), p["name"].(string), over)
					}
				})
			}
			// The body's fields.
			if op.at("requestBody") == nil {
				continue
			}
			base, ok := bases[path]
			if !ok {
				t.Errorf("%s: no valid body: add one to bases", path)
				continue
			}
			schema := doc.resolve(op.at("requestBody", "content", "application/json", "schema"))
			for _, field := range sortedKeys(schema.at("properties")) {
				prop := doc.resolve(schema.at("properties", field))
				for _, lim := range doc.limits(prop) {
					tried++
					t.Run(fmt.Sprintf("%s/%s/%s", path, field, lim.kind), func(t *testing.T) {
						for _, over := range []bool{false, true} {
							body := map[string]any{}
							for k, v := range base {
								body[k] = v
							}
							if alt := instead[field]; alt != "" {
								delete(body, alt)
							}
							if alt := insteadOn[path][field]; alt != "" {
								delete(body, alt)
							}
							switch lim.kind {
							case "maxLength":
								body[field] = fill(field, lim.n+btoi(over))
							case "flexString": // an integer as a string, blanks around it
								body[field] = strings.Repeat(" ", lim.n-1+btoi(over)) + "1"
							case "maxItems":
								items := make([]any, lim.n+btoi(over))
								for i := range items {
									items[i] = base[field].([]any)[0]
								}
								body[field] = items
							case "maximum":
								body[field] = lim.n + btoi(over)
							}
							checkLimit(t, send(t, body, nil, nil), field, over)
						}
					})
				}
			}
		}
	}
	if tried < 30 {
		t.Fatalf("tried %d limits: has the document changed shape?", tried)
	}
}

// checkLimit: past the limit, code 6 naming the parameter; at it, anything
// but that.
func checkLimit(t *testing.T, e envelope, field string, over bool) {
	t.Helper()
	refused := e.Status == 400 && e.Code == int(imbee.CodeParam) && e.str("field") == field
	switch {
	case over && !refused:
		t.Errorf("one past the limit of %s: got HTTP %d code %d, want 400 code 6 naming it: %s", field, e.Status, e.Code, e.Raw)
	case !over && refused:
		t.Errorf("at the limit of %s: refused: %s", field, e.Raw)
	}
}

// fill is a valid value of the parameter, n characters long.
func fill(field string, n int) string {
	switch field {
	case "mail":
		return strings.Repeat("a", n-len("@example.com")) + "@example.com"
	case "celullar", "cellular":
		return strings.Repeat(" ", n-len("+34600111222")) + "+34600111222"
	case "date_limit":
		return strings.Repeat(" ", n-len(time.DateOnly)) + time.Now().UTC().AddDate(0, 0, 7).Format(time.DateOnly)
	case "url": // a link's URL, or a webhook's
		prefix, suffix := "https://chat.example.com/", "/l/imbl_"+strings.Repeat("A", 43)
		return prefix + strings.Repeat("p", n-len(prefix)-len(suffix)) + suffix
	}
	return strings.Repeat("a", n)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// openAPIObject is a JSON object of docs/openapi.json.
type openAPIObject map[string]any

func openAPIMap(t *testing.T) openAPIObject {
	var doc openAPIObject
	if err := json.Unmarshal(imbee.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// at walks keys down from o; nil where there is nothing.
func (o openAPIObject) at(keys ...string) openAPIObject {
	for _, k := range keys {
		next, _ := o[k].(map[string]any)
		if next == nil {
			return nil
		}
		o = next
	}
	return o
}

func (o openAPIObject) list(key string) []openAPIObject {
	var out []openAPIObject
	items, _ := o[key].([]any)
	for _, v := range items {
		out = append(out, v.(map[string]any))
	}
	return out
}

// resolve follows o's $ref, within the document.
func (o openAPIObject) resolve(s openAPIObject) openAPIObject {
	for s != nil {
		ref, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		s = o.at(strings.Split(strings.TrimPrefix(ref, "#/"), "/")...)
	}
	return s
}

type limit struct {
	kind string
	n    int
}

// limits are the bounds a body field's schema sets: its own, and those of
// the schemas it is allOf, down to an integer's string form.
func (o openAPIObject) limits(s openAPIObject) []limit {
	var out []limit
	for _, kind := range []string{"maxLength", "maxItems", "maximum"} {
		if n, ok := s[kind].(float64); ok {
			out = append(out, limit{kind, int(n)})
		}
	}
	if all, ok := s["allOf"].([]any); ok {
		for _, sub := range all {
			alts, _ := o.resolve(sub.(map[string]any))["anyOf"].([]any)
			for _, alt := range alts {
				if a := openAPIObject(alt.(map[string]any)); a["type"] == "string" {
					out = append(out, limit{"flexString", int(a["maxLength"].(float64))})
				}
			}
		}
	}
	return out
}

func sortedKeys(o openAPIObject) []string {
	var keys []string
	for k := range o {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

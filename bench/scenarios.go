package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
)

// creds are what the integrator sends.
type creds struct {
	Auth, Token, Bot string
}

// env is one running imbee with the data the scenarios need.
type env struct {
	url    string
	c      creds
	pool   []poolUser // users made in setup
	links  []string   // one link per pool user, many uses
	chats  []string   // pool user i's 1:1 chat with user i+1
	run    atomic.Int64
	pairs  atomic.Int64 // next new chat pair
	client *http.Client
}

type poolUser struct {
	idsha, apikey string
}

const poolSize = 1000

func (e *env) post(path, key string, body string) (*http.Request, error) {
	req, err := http.NewRequest("POST", e.url+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", e.c.Auth)
	req.Header.Set("X-WOOS-KEY", key)
	req.Header.Set("Content-Type", "application/json")
	return req, nil
}

// call sends one request during setup and decodes the envelope's body.
// headers are added to the request (key, value, …).
func (e *env) call(path, key, body string, headers ...string) (map[string]any, error) {
	req, err := e.post(path, key, body)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Code int            `json:"code"`
		Body map[string]any `json:"body"`
	}
	if err := json.Unmarshal(raw, &env); err != nil || env.Code != 0 {
		return nil, fmt.Errorf("%s: %s", path, raw)
	}
	return env.Body, nil
}

const device = `"platform":"ios","deviceName":"bench","hardwareId":"hw-1","osVersion":"18.1"`

// setup makes the pool: users, a link per user, and chats (i, i+1) to repeat.
func (e *env) setup(ctx context.Context) error {
	e.pool = make([]poolUser, poolSize)
	e.links = make([]string, poolSize)
	e.chats = make([]string, poolSize)
	for i := range poolSize {
		b, err := e.call("/third_parties/user/new", e.c.Token, fmt.Sprintf(`{"uniqueIdSha":"pool-%d",%s}`, i, device))
		if err != nil {
			return err
		}
		e.pool[i] = poolUser{idsha: b["virtualUser"].(string), apikey: b["apikey"].(string)}
		// user_new_replay's key for this user: its answer is stored now.
		if _, err := e.call("/third_parties/user/new", e.c.Token, fmt.Sprintf(`{"uniqueIdSha":"pool-%d",%s}`, i, device), "Idempotency-Key", fmt.Sprintf("replay-%d", i)); err != nil {
			return err
		}
		b, err = e.call("/token/new", e.c.Token, fmt.Sprintf(`{"virtual_user":"pool-%d","bot_idsha":%q,"mail":"pool%d@example.com","max_retries":1000}`, i, e.c.Bot, i))
		if err != nil {
			return err
		}
		e.links[i] = b["url"].(string)
	}
	for i := range poolSize {
		b, err := e.call("/chat/create", e.pool[i].apikey, e.chatBody(e.pool[(i+1)%poolSize].idsha))
		if err != nil {
			return err
		}
		e.chats[i], _ = b["conversationId"].(string)
	}
	return ctx.Err()
}

func (e *env) chatBody(contact string) string {
	return `{"type":"chat","contacts":[{"idsha":"` + contact + `"}]}`
}

// scenario is one endpoint driven one way.
type scenario struct {
	Name string
	Kind string // "create", "repeat" or "page": which target applies
	ok   []int
	make func(e *env) request
}

func pick(w, i int) int { return (w*7919 + i) % poolSize }

var scenarios = []scenario{
	{"user_new", "create", []int{200}, func(e *env) request {
		run := e.run.Add(1)
		return func(w, i int) (*http.Request, error) {
			return e.post("/third_parties/user/new", e.c.Token, fmt.Sprintf(`{"uniqueIdSha":"n%d-%d-%d",%s}`, run, w, i, device))
		}
	}},
	// user_new with a fresh Idempotency-Key on each request: what storing
	// the answer costs over user_new (a claim and a completion per create).
	{"user_new_keyed", "create", []int{200}, func(e *env) request {
		run := e.run.Add(1)
		return func(w, i int) (*http.Request, error) {
			req, err := e.post("/third_parties/user/new", e.c.Token, fmt.Sprintf(`{"uniqueIdSha":"k%d-%d-%d",%s}`, run, w, i, device))
			if err == nil {
				req.Header.Set("Idempotency-Key", fmt.Sprintf("uk-%d-%d-%d", run, w, i))
			}
			return req, err
		}
	}},
	// A client retrying with its key: every request is a replay of the
	// answer stored in setup.
	{"user_new_replay", "repeat", []int{200}, func(e *env) request {
		return func(w, i int) (*http.Request, error) {
			n := pick(w, i)
			req, err := e.post("/third_parties/user/new", e.c.Token, fmt.Sprintf(`{"uniqueIdSha":"pool-%d",%s}`, n, device))
			if err == nil {
				req.Header.Set("Idempotency-Key", fmt.Sprintf("replay-%d", n))
			}
			return req, err
		}
	}},
	{"user_new_repeat", "repeat", []int{200}, func(e *env) request {
		return func(w, i int) (*http.Request, error) {
			return e.post("/third_parties/user/new", e.c.Token, fmt.Sprintf(`{"uniqueIdSha":"pool-%d",%s}`, pick(w, i), device))
		}
	}},
	{"chat_create", "create", []int{200}, func(e *env) request {
		return func(w, i int) (*http.Request, error) {
			// Pairs (a, a+d) for d from 2 to poolSize/2-1 are all distinct
			// and never the (i, i+1) pairs of the repeat scenario.
			k := e.pairs.Add(1) - 1
			a, d := int(k%poolSize), int(2+k/poolSize)
			if d >= poolSize/2 {
				return nil, fmt.Errorf("out of new pairs")
			}
			return e.post("/chat/create", e.pool[a].apikey, e.chatBody(e.pool[(a+d)%poolSize].idsha))
		}
	}},
	{"chat_create_repeat", "repeat", []int{200}, func(e *env) request {
		return func(w, i int) (*http.Request, error) {
			a := pick(w, i)
			return e.post("/chat/create", e.pool[a].apikey, e.chatBody(e.pool[(a+1)%poolSize].idsha))
		}
	}},
	{"token_new", "create", []int{200}, func(e *env) request {
		run := e.run.Add(1)
		return func(w, i int) (*http.Request, error) {
			return e.post("/token/new", e.c.Token, fmt.Sprintf(`{"virtual_user":"t%d-%d-%d","bot_idsha":%q,"mail":"someone@example.com"}`, run, w, i, e.c.Bot))
		}
	}},
	{"token_new_repeat", "repeat", []int{200}, func(e *env) request {
		return func(w, i int) (*http.Request, error) {
			n := pick(w, i)
			return e.post("/token/new", e.c.Token, fmt.Sprintf(`{"virtual_user":"pool-%d","bot_idsha":%q,"mail":"pool%d@example.com"}`, n, e.c.Bot, n))
		}
	}},
	{"message_send", "create", []int{200}, func(e *env) request {
		run := e.run.Add(1)
		return func(w, i int) (*http.Request, error) {
			// A pool user writes into their own 1:1 chat; each message is new.
			a := pick(w, i)
			return e.post("/chat/message/send", e.pool[a].apikey,
				fmt.Sprintf(`{"conversationId":%q,"text":"bench message %d","clientMsgId":"s%d-%d-%d"}`, e.chats[a], i, run, w, i))
		}
	}},
	{"link_get", "repeat", []int{200}, func(e *env) request {
		return func(w, i int) (*http.Request, error) {
			return http.NewRequest("GET", e.links[pick(w, i)], nil)
		}
	}},
	{"link_post", "create", []int{303}, func(e *env) request {
		return func(w, i int) (*http.Request, error) {
			req, err := http.NewRequest("POST", e.links[pick(w, i)], bytes.NewReader(nil))
			if err == nil {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			return req, err
		}
	}},
}

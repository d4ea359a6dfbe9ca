package api

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/linkpage"
)

// openAPIDoc is the part of docs/openapi.json these tests read.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Info    struct {
		Description string `json:"description"`
	} `json:"info"`
	Codes []struct {
		Code                        imbee.Code `json:"code"`
		HTTP                        []int      `json:"http"`
		Retryable                   bool       `json:"retryable"`
		RetryableWithIdempotencyKey []int      `json:"retryableWithIdempotencyKey"`
	} `json:"x-codes"`
	Unmatched struct {
		Responses map[string]json.RawMessage `json:"responses"`
	} `json:"x-unmatched"`
	Paths map[string]map[string]json.RawMessage `json:"paths"`
}

func loadOpenAPI(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(imbee.OpenAPI, &doc); err != nil {
		t.Fatalf("docs/openapi.json is not JSON: %v", err)
	}
	if !regexp.MustCompile(`^3\.1\.[0-9]+$`).MatchString(doc.OpenAPI) {
		t.Fatalf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	return doc
}

var operationMethods = []string{"get", "head", "post", "put", "delete", "patch", "options", "trace"}

// documentedStatuses returns the statuses the document lists for an
// operation: its responses' keys.
func documentedStatuses(t *testing.T, raw json.RawMessage) []string {
	var op struct {
		Responses map[string]json.RawMessage `json:"responses"`
	}
	if err := json.Unmarshal(raw, &op); err != nil {
		t.Fatal(err)
	}
	var out []string
	for s := range op.Responses {
		out = append(out, s)
	}
	return out
}

// registeredRoutes reads the package's source for the patterns the server
// registers: the first argument of every s.handle, s.mux.Handle and
// s.mux.HandleFunc.
func registeredRoutes(t *testing.T) []string {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if fn, ok := n.(*ast.FuncDecl); ok && fn.Name.Name == "handle" {
				return false // it registers its callers' patterns
			}
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			switch recv := types.ExprString(sel.X); {
			case recv == "s" && sel.Sel.Name == "handle", recv == "s.mux" && (sel.Sel.Name == "Handle" || sel.Sel.Name == "HandleFunc"):
			default:
				return true
			}
			if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				p, _ := strconv.Unquote(lit.Value)
				routes = append(routes, p)
			} else {
				t.Errorf("%s: a route that is not a string literal", fset.Position(call.Pos()))
			}
			return true
		})
	}
	if len(routes) < 10 {
		t.Fatalf("found %d routes: has the package changed shape?", len(routes))
	}
	return routes
}

// TestOpenAPIHasEveryRoute: every pattern the server registers is in the
// document's paths (a prefix pattern: some path under it), and the
// catch-all is the document's x-unmatched.
func TestOpenAPIHasEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	for _, route := range registeredRoutes(t) {
		// A pattern may name a method ("GET /healthz").
		if _, p, ok := strings.Cut(route, " "); ok {
			route = p
		}
		switch {
		case route == "/":
			if doc.Unmatched.Responses["404"] == nil {
				t.Error(`the catch-all "/" is registered, but x-unmatched has no 404`)
			}
		case strings.HasSuffix(route, "/"):
			found := false
			for p := range doc.Paths {
				found = found || strings.HasPrefix(p, route)
			}
			if !found {
				t.Errorf("the server routes %s..., the document has no path under it", route)
			}
		case doc.Paths[route] == nil:
			t.Errorf("the server routes %s, the document does not list it", route)
		}
	}
}

// TestOpenAPIPathsAreRouted: every documented path and method reaches a
// handler of its own (not the catch-all "no such endpoint") and answers a
// status the document lists for it; a method it does not list answers as
// its x-other-methods says.
func TestOpenAPIPathsAreRouted(t *testing.T) {
	doc := loadOpenAPI(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pages := linkpage.New(nowhere{}, nowhere{}, linkpage.Config{}, log)
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	})
	// httptest's requests come from 192.0.2.1.
	h := NewHandler(nowhere{}, nowhere{}, pages, Config{PublicURL: "http://x", Metrics: metrics, MetricsAllow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, log)
	param := regexp.MustCompile(`\{[^}]+\}`)
	for p, item := range doc.Paths {
		target := param.ReplaceAllString(p, "x")
		if p == "/assets/{file}" {
			target = "/assets/chat.css"
		}
		var other map[string]json.RawMessage
		if err := json.Unmarshal(item["x-other-methods"], &other); err != nil || len(other) == 0 {
			t.Errorf("%s: no x-other-methods", p)
		}
		for _, m := range operationMethods {
			raw, documented := item[m]
			method := strings.ToUpper(m)
			if !documented {
				if method != "PUT" && method != "HEAD" {
					continue // PUT stands for all the others; GET patterns also answer HEAD
				}
				raw, _ = json.Marshal(map[string]any{"responses": other})
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(method, target, nil))
			if w.Code == http.StatusNotFound && strings.Contains(w.Body.String(), "no such endpoint") {
				t.Errorf("%s %s: the document lists it, NewHandler does not route it", method, p)
				continue
			}
			if statuses := documentedStatuses(t, raw); !slices.Contains(statuses, strconv.Itoa(w.Code)) {
				t.Errorf("%s %s: HTTP %d, the document lists %v", method, p, w.Code, statuses)
			}
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/no/such/path", nil))
	if doc.Unmatched.Responses[strconv.Itoa(w.Code)] == nil {
		t.Errorf("an unknown path: HTTP %d, x-unmatched lists %v", w.Code, doc.Unmatched.Responses)
	}
}

// TestOpenAPICodes: the document's code catalogue (x-codes, and the table
// in info.description) says the HTTP statuses the server gives each code.
func TestOpenAPICodes(t *testing.T) {
	doc := loadOpenAPI(t)
	if len(doc.Codes) != int(imbee.CodeIdempotencyInProgress)+1 {
		t.Fatalf("x-codes lists %d codes, want 0 to %d", len(doc.Codes), imbee.CodeIdempotencyInProgress)
	}
	for i, c := range doc.Codes {
		if c.Code != imbee.Code(i) {
			t.Fatalf("x-codes[%d] is code %d", i, c.Code)
		}
		if c.Code != imbee.CodeOK {
			if got := errorStatus(&imbee.Error{Code: c.Code, Message: "m"}); !slices.Contains(c.HTTP, got) {
				t.Errorf("code %d: the server answers HTTP %d, x-codes says %v", c.Code, got, c.HTTP)
			}
		}
		statuses := make([]string, len(c.HTTP))
		for j, s := range c.HTTP {
			statuses[j] = strconv.Itoa(s)
		}
		row := fmt.Sprintf(`\n\| %d \| [^|\n]+ \| %s \|`, c.Code, strings.Join(statuses, ", "))
		if !regexp.MustCompile(row).MatchString(doc.Info.Description) {
			t.Errorf("code %d: info.description's table has no row with HTTP %s", c.Code, strings.Join(statuses, ", "))
		}
		retry := c.Code == imbee.CodeRateLimited || c.Code == imbee.CodeIdempotencyInProgress
		if c.Retryable != retry {
			t.Errorf("code %d: retryable %v", c.Code, c.Retryable)
		}
	}
	if got := errorStatus(&imbee.Error{Code: imbee.CodeGeneric}); !slices.Contains(doc.Codes[1].RetryableWithIdempotencyKey, got) {
		t.Errorf("an internal error is HTTP %d, x-codes[1].retryableWithIdempotencyKey says %v", got, doc.Codes[1].RetryableWithIdempotencyKey)
	}
}

// nowhere is a store where no credential, link or session exists, for
// both the API and the pages (the methods no request here reaches are
// left nil).
type nowhere struct {
	Store
	Writes
}

func (nowhere) RecordLinkAttempts(context.Context, []imbee.LinkAttempt) error { return nil }

func (nowhere) Authenticate(context.Context, string, string) (imbee.Corporate, error) {
	return imbee.Corporate{}, imbee.Errorf(imbee.CodeAuth, "unknown Authorization")
}

func (nowhere) AuthenticateUser(context.Context, string, string) (imbee.Corporate, imbee.User, error) {
	return imbee.Corporate{}, imbee.User{}, imbee.Errorf(imbee.CodeAuth, "unknown Authorization")
}

func (nowhere) LinkByToken(context.Context, string) (imbee.LinkPage, error) {
	return imbee.LinkPage{}, imbee.Errorf(imbee.CodeNotFound, "no such link")
}

func (nowhere) SpendLink(context.Context, string, imbee.LinkAttempt) (imbee.Session, imbee.LinkState, error) {
	return imbee.Session{}, 0, imbee.Errorf(imbee.CodeNotFound, "no such link")
}

func (nowhere) SessionByToken(context.Context, string) (imbee.Session, error) {
	return imbee.Session{}, imbee.Errorf(imbee.CodeNotFound, "no such session")
}

func (nowhere) AppSessionByToken(context.Context, string) (imbee.AppSession, error) {
	return imbee.AppSession{}, imbee.Errorf(imbee.CodeNotFound, "no such session")
}

func (nowhere) SignIn(context.Context, string, string, time.Duration) (imbee.AppSession, error) {
	return imbee.AppSession{}, imbee.Errorf(imbee.CodeAuth, "virtualUser or pass is not valid")
}

func (nowhere) SignOut(context.Context, string) error { return nil }

func (nowhere) ListBots(context.Context, int64) ([]imbee.Bot, error) { return nil, nil }

func (nowhere) MemberChat(context.Context, int64, string, string) (imbee.Conversation, error) {
	return imbee.Conversation{}, imbee.Errorf(imbee.CodeNotFound, "no such chat")
}

func (nowhere) SavePushSubscription(context.Context, imbee.PushSubscription) error { return nil }

func (nowhere) DeletePushSubscription(context.Context, int64, int64, string) error { return nil }

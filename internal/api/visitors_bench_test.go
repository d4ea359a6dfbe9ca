package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/clientaddr"
	"github.com/imbee/imbee/internal/ratelimit"
)

// BenchmarkUnauthenticated is a request with a wrong Authorization: its
// cost must not grow with what its body holds beyond reading it (no JSON
// is looked at before the credentials are good). Compare the 1 MiB cases
// with tiny in one run.
func BenchmarkUnauthenticated(b *testing.B) {
	hb := newHandlerBench(b)
	for _, tc := range []struct{ name, path, body string }{
		{"tiny", "/third_parties/user/new", `{"uniqueIdSha":"u1"}`},
		{"1MiB-not-JSON", "/third_parties/user/new", strings.Repeat("[", 1<<20-1)},
		{"1MiB-object", "/third_parties/user/new", `{"uniqueIdSha":"` + strings.Repeat("a", 1<<20-20) + `"}`},
		{"1MiB-object-no-repeat", "/token/new", `{"virtual_user":"` + strings.Repeat("a", 1<<20-20) + `"}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.body)))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", tc.path, strings.NewReader(tc.body))
				req.Header.Set("Authorization", "imba_wrong")
				req.Header.Set("X-WOOS-KEY", hb.token)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				hb.h.ServeHTTP(w, req)
				if w.Code != http.StatusUnauthorized {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkVisitorLimits is the hot path (a repeat, a user-level call) with
// this package's per-address and per-user checks off and on (the
// corporate's rate limit on in both, as it is by default), in one run:
// their cost is the difference.
func BenchmarkVisitorLimits(b *testing.B) {
	clients, _ := clientaddr.New([]string{"10.0.0.0/8"})
	corporate := Config{RateLimit: 1e9, RateBurst: 1e9}
	on := corporate
	on.UserRateShare, on.AuthFailLimit, on.AuthFailBurst, on.Clients = 0.1, 1, 30, clients
	body := `{"uniqueIdSha":"u1","platform":"ios","deviceName":"d","hardwareId":"h","osVersion":"18"}`
	type target struct {
		hb     *handlerBench
		apikey string
	}
	targets := map[string]target{}
	for name, cfg := range map[string]Config{"off": corporate, "on": on} {
		hb := newHandlerBenchWith(b, cfg)
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/third_parties/user/new", strings.NewReader(body))
		req.Header.Set("Authorization", hb.auth)
		req.Header.Set("X-WOOS-KEY", hb.token)
		req.Header.Set("Content-Type", "application/json")
		hb.h.ServeHTTP(w, req)
		var reg struct{ Body userNewResponse }
		if err := json.Unmarshal(w.Body.Bytes(), &reg); err != nil || reg.Body.APIKey == "" {
			b.Fatalf("register: %v %s", err, w.Body)
		}
		targets[name] = target{hb, reg.Body.APIKey}
	}
	for _, mode := range []string{"off", "on"} {
		tg := targets[mode]
		b.Run("user-new-repeat/"+mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tg.hb.do(b, "/third_parties/user/new", tg.hb.token, body)
			}
		})
	}
	for _, mode := range []string{"off", "on"} {
		tg := targets[mode]
		b.Run("chat-list/"+mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tg.hb.do(b, "/chat/list", tg.apikey, `{}`)
			}
		})
	}
}

// BenchmarkVisitorChecks is what the checks add to every call, alone: the
// failed-authentication limit's look at the client's bucket, the user's
// share, and the client address for the access log.
func BenchmarkVisitorChecks(b *testing.B) {
	clients, _ := clientaddr.New([]string{"10.0.0.0/8"})
	s := &Server{cfg: Config{RateLimit: 1e9, RateBurst: 1e9, UserRateShare: 0.1, Clients: clients, Limits: newLocalLimits()},
		authFails: ratelimit.NewFailures[netip.Prefix](1, 30, 0)}
	req := httptest.NewRequest("POST", "/chat/list", nil)
	req.RemoteAddr = "10.1.2.3:5000"
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	w := httptest.NewRecorder()
	c := &call{corporate: imbee.Corporate{ID: 1}, user: imbee.User{ID: 2}}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.authAllowed(w, req, time.Time{}); !ok {
			b.Fatal("refused")
		}
		if err := s.allowUser(req.Context(), w, c); err != nil {
			b.Fatal(err)
		}
		_ = clients.Addr(req).String()
	}
}

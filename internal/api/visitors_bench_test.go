package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/imbee/imbee/internal/clientaddr"
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
// this package's per-address and per-user checks off and on, in one run:
// their cost is the difference.
func BenchmarkVisitorLimits(b *testing.B) {
	clients, _ := clientaddr.New([]string{"10.0.0.0/8"})
	for _, mode := range []struct {
		name string
		cfg  Config
	}{
		{"off", Config{}},
		{"on", Config{RateLimit: 1e9, RateBurst: 1e9, UserRateShare: 0.1, AuthFailLimit: 1, AuthFailBurst: 30, Clients: clients}},
	} {
		hb := newHandlerBenchWith(b, mode.cfg)
		body := `{"uniqueIdSha":"u1","platform":"ios","deviceName":"d","hardwareId":"h","osVersion":"18"}`
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
		b.Run("user-new-repeat/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				hb.do(b, "/third_parties/user/new", hb.token, body)
			}
		})
		b.Run("chat-list/"+mode.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				hb.do(b, "/chat/list", reg.Body.APIKey, `{}`)
			}
		})
	}
}

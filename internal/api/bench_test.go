package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/writes"
)

func BenchmarkEnvelope(b *testing.B) {
	body := userNewResponse{VirtualUser: strings.Repeat("a", 40), Pass: "imbp_" + strings.Repeat("b", 43), APIKey: "imbk_" + strings.Repeat("c", 43)}
	w := httptest.NewRecorder()
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		w.Body.Reset()
		writeEnvelope(w, http.StatusOK, start, 0, "Ok", body)
	}
}

// handlerBench is the API over a real store on a temporary SQLite file.
type handlerBench struct {
	h           http.Handler
	auth, token string
	bot         string
}

func newHandlerBench(b *testing.B) *handlerBench {
	return newHandlerBenchWith(b, Config{})
}

// newHandlerBenchWith is newHandlerBench with cfg's limits.
func newHandlerBenchWith(b *testing.B, cfg Config) *handlerBench {
	b.Helper()
	key := make([]byte, secret.KeySize)
	keys, _ := secret.NewKeyring(key)
	s, err := store.Open(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "b.db"), keys, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	c, creds, err := s.CreateCorporate(context.Background(), "Bench", "UTC")
	if err != nil {
		b.Fatal(err)
	}
	bot, err := s.CreateBot(context.Background(), c.ID, "Bot")
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	cfg.PublicURL = "http://x"
	h := NewHandler(s, writes.New(s, writes.Effects{}, nil), http.NotFoundHandler(), cfg, log)
	return &handlerBench{h: h, auth: creds.Auth, token: creds.CorporateToken, bot: bot.IDSha}
}

func (hb *handlerBench) do(b *testing.B, path, key, body string) {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Authorization", hb.auth)
	req.Header.Set("X-WOOS-KEY", key)
	req.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	hb.h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
}

func BenchmarkUserNewRepeat(b *testing.B) {
	hb := newHandlerBench(b)
	body := `{"uniqueIdSha":"u1","platform":"ios","deviceName":"d","hardwareId":"h","osVersion":"18"}`
	hb.do(b, "/third_parties/user/new", hb.token, body)
	b.ReportAllocs()
	for b.Loop() {
		hb.do(b, "/third_parties/user/new", hb.token, body)
	}
}

func BenchmarkTokenNewRepeat(b *testing.B) {
	hb := newHandlerBench(b)
	body := `{"virtual_user":"u1","bot_idsha":"` + hb.bot + `","mail":"a@example.com"}`
	b.ReportAllocs()
	for b.Loop() {
		hb.do(b, "/token/new", hb.token, body)
	}
}

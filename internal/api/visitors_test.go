package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/secret"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/writes"
)

// countingStore counts the credential lookups, the one thing a stranger's
// request may cost the database.
type countingStore struct {
	*store.Store
	lookups atomic.Int64
}

func (s *countingStore) Authenticate(ctx context.Context, auth, token string) (imbee.Corporate, error) {
	s.lookups.Add(1)
	return s.Store.Authenticate(ctx, auth, token)
}

func (s *countingStore) AuthenticateUser(ctx context.Context, auth, apikey string) (imbee.Corporate, imbee.User, error) {
	s.lookups.Add(1)
	return s.Store.AuthenticateUser(ctx, auth, apikey)
}

func (s *countingStore) KnownUser(ctx context.Context, auth, token, uniqueID string, dev *imbee.Device) (imbee.Corporate, imbee.User, bool, error) {
	s.lookups.Add(1)
	return s.Store.KnownUser(ctx, auth, token, uniqueID, dev)
}

func (s *countingStore) KnownChat(ctx context.Context, auth, apikey, contact string) (imbee.Corporate, imbee.User, imbee.Conversation, bool, error) {
	s.lookups.Add(1)
	return s.Store.KnownChat(ctx, auth, apikey, contact)
}

// countingReader counts the bytes of a body that were read.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func newCountingHandler(t *testing.T, cfg Config) (http.Handler, *countingStore, imbee.CorporateCredentials) {
	t.Helper()
	keys, _ := secret.NewKeyring(make([]byte, secret.KeySize))
	s, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "t.db"), keys, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	_, creds, err := s.CreateCorporate(context.Background(), "Acme", "UTC")
	if err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: s}
	cfg.PublicURL = "http://x"
	return NewHandler(cs, writes.New(s, writes.Effects{}, nil), http.NotFoundHandler(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil))), cs, creds
}

// TestUnauthenticatedCost: a request with wrong credentials costs one
// lookup and at most maxRepeatBody+1 bytes of its body, whatever the body,
// on calls with and without the repeat fast path.
func TestUnauthenticatedCost(t *testing.T) {
	h, cs, creds := newCountingHandler(t, Config{})
	bodies := map[string]string{
		"tiny":          `{"uniqueIdSha":"u1"}`,
		"1MiB not JSON": strings.Repeat("[", 1<<20-1),
		"1MiB object":   `{"uniqueIdSha":"` + strings.Repeat("a", 1<<20-20) + `"}`,
	}
	for _, path := range []string{"/third_parties/user/new", "/chat/create", "/token/new", "/chat/list"} {
		for name, body := range bodies {
			cs.lookups.Store(0)
			cr := &countingReader{r: strings.NewReader(body)}
			req := httptest.NewRequest("POST", path, cr)
			req.Header.Set("Authorization", "imba_wrong")
			req.Header.Set("X-WOOS-KEY", creds.CorporateToken)
			req.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != 401 || !strings.Contains(w.Body.String(), `"code":2`) {
				t.Errorf("%s, %s: %d %s, want 401 code 2", path, name, w.Code, w.Body)
			}
			if n := cs.lookups.Load(); n != 1 {
				t.Errorf("%s, %s: %d lookups, want 1", path, name, n)
			}
			if cr.n > maxRepeatBody+1 {
				t.Errorf("%s, %s: %d bytes of the body read before the credentials were known", path, name, cr.n)
			}
		}
	}
}

// TestAuthFailureLimit: past its burst of failures an address is refused
// with code 8 and Retry-After before any lookup; another address is not.
func TestAuthFailureLimit(t *testing.T) {
	h, cs, creds := newCountingHandler(t, Config{AuthFailLimit: 0.001, AuthFailBurst: 2})
	call := func(addr, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/token/status", strings.NewReader(`{"url":"x"}`))
		req.RemoteAddr = addr
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-WOOS-KEY", creds.CorporateToken)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w
	}
	for range 2 {
		if w := call("[2001:db8:1:2::1]:1000", "imba_wrong"); w.Code != 401 {
			t.Fatalf("failure within the burst: %d", w.Code)
		}
	}
	cs.lookups.Store(0)
	// Another address of the same /64 shares the bucket.
	w := call("[2001:db8:1:2::ffff]:1000", creds.Auth)
	if w.Code != 429 || !strings.Contains(w.Body.String(), `"code":8`) || w.Header().Get("Retry-After") == "" {
		t.Fatalf("past the burst: %d %s (Retry-After %q), want 429 code 8", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if n := cs.lookups.Load(); n != 0 {
		t.Errorf("a refused address cost %d lookups", n)
	}
	if w := call("[2001:db8:1:3::1]:1000", creds.Auth); w.Code != 400 && w.Code != 404 && w.Code != 200 {
		t.Errorf("another /64: %d %s", w.Code, w.Body)
	}
}

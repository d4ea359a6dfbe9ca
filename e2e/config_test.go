package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigFile starts the real server with a config file and sees its
// settings take effect, the command line still winning.
func TestConfigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "imbee.toml")
	err := os.WriteFile(path, []byte(`
# imbee serve's settings, named as its flags
public-url = "https://chat.example.test"
idempotency-ttl = "1h"
rate-limit = 1
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// startServer passes --rate-limit 0: the flag wins over the file.
	s := startServer(t, "--config", path)
	c := s.demo()
	for range 5 {
		e := s.post(t, "/token/new", c.auth, c.token, map[string]any{"virtual_user": "conf", "bot_idsha": c.bot, "mail": "conf@example.com"})
		expect(t, e, 200, 0)
		if !strings.HasPrefix(e.str("url"), "https://chat.example.test/l/") {
			t.Fatalf("url %q does not use the file's public-url", e.str("url"))
		}
	}

	bad := filepath.Join(t.TempDir(), "bad.toml")
	os.WriteFile(bad, []byte("public-ulr = \"x\"\n"), 0o600)
	out, err := s.imbee("serve", "--addr", "127.0.0.1:0", "--config", bad)
	if err == nil || !strings.Contains(err.Error(), `unknown setting "public-ulr"`) {
		t.Fatalf("a typo in the config file: %v %s", err, out)
	}
}

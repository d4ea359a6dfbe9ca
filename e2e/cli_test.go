package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imbee/imbee/internal/cli"
	"github.com/imbee/imbee/internal/testkit"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := cli.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestCLI(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "cli.db")

	t.Run("CorporateCreateJSON", func(t *testing.T) {
		out, _, err := runCLI(t, nil, "corporate", "create", "--name", "Acme", "--timezone", "Europe/Madrid", "--json", "--db", db)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Fatal(err, out)
		}
		for _, k := range []string{"id", "name", "auth", "corporate_token"} {
			if c[k] == nil || c[k] == "" {
				t.Errorf("corporate create --json lacks %s: %s", k, out)
			}
		}
		if c["timezone"] != "Europe/Madrid" {
			t.Errorf("timezone: %s", out)
		}
	})
	t.Run("EnvironmentFallback", func(t *testing.T) {
		out, _, err := runCLI(t, map[string]string{"IMBEE_DB": db}, "corporate", "list", "--json")
		if err != nil {
			t.Fatal(err)
		}
		var list []map[string]any
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0]["name"] != "Acme" {
			t.Fatalf("IMBEE_DB was not used: %v %s", err, out)
		}
		if strings.Contains(out, "imba_") || strings.Contains(out, "imbc_") {
			t.Error("corporate list shows credentials")
		}
	})
	t.Run("BotCreateAndList", func(t *testing.T) {
		out, _, err := runCLI(t, nil, "bot", "create", "--corporate", "1", "--name", "Helper", "--json", "--db", db)
		if err != nil {
			t.Fatal(err)
		}
		var b map[string]any
		if json.Unmarshal([]byte(out), &b); b["bot_idsha"] == nil || b["bot_idsha"] == "" {
			t.Fatalf("bot create --json: %s", out)
		}
		out, _, err = runCLI(t, nil, "bot", "list", "--corporate", "1", "--db", db)
		if err != nil || !strings.Contains(out, b["bot_idsha"].(string)) {
			t.Fatalf("bot list: %v %s", err, out)
		}
		if _, _, err := runCLI(t, nil, "bot", "create", "--corporate", "99", "--name", "X", "--db", db); err == nil {
			t.Error("a bot in a missing corporate was created")
		}
	})
	t.Run("Help", func(t *testing.T) {
		for _, cmd := range [][]string{{"serve"}, {"migrate"}, {"corporate", "create"}, {"corporate", "list"}, {"corporate", "rotate"}, {"corporate", "update"}, {"bot", "create"}, {"bot", "list"}, {"bot", "webhook"}, {"bot", "revoke"}, {"user", "rotate"}, {"users", "import"}, {"link", "revoke"}, {"deliveries", "list"}, {"deliveries", "retry"}, {"webhooks", "list"}, {"webhooks", "retry"}} {
			_, errOut, err := runCLI(t, nil, append(cmd, "--help")...)
			if !errors.Is(err, flag.ErrHelp) || !strings.Contains(errOut, "Usage: imbee "+strings.Join(cmd, " ")) || !strings.Contains(errOut, "-db") {
				t.Errorf("%v --help: %v %s", cmd, err, errOut)
			}
		}
		out, _, err := runCLI(t, nil, "help")
		if err != nil || !strings.Contains(out, "imbee serve") {
			t.Errorf("help: %v %s", err, out)
		}
		if _, _, err := runCLI(t, nil, "frobnicate"); err == nil {
			t.Error("an unknown command succeeded")
		}
	})
	t.Run("Migrate", func(t *testing.T) {
		out, _, err := runCLI(t, nil, "migrate", "--db", "sqlite:"+filepath.Join(t.TempDir(), "m.db"))
		if err != nil || !strings.Contains(out, "applied") {
			t.Fatalf("migrate: %v %s", err, out)
		}
	})
	t.Run("KeyFileOthersCanReadIsRefused", func(t *testing.T) {
		dir := t.TempDir()
		key := filepath.Join(dir, "server.key")
		if _, _, err := runCLI(t, nil, "corporate", "list", "--db", "sqlite:"+filepath.Join(dir, "k.db"), "--key-file", key); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(key, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := runCLI(t, nil, "serve", "--addr", "127.0.0.1:0", "--db", "sqlite:"+filepath.Join(dir, "k.db"), "--key-file", key)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+key) {
			t.Fatalf("serve with a key file others can read: want a refusal naming the chmod, got %v", err)
		}
	})

	t.Run("WrongKeyIsRefused", func(t *testing.T) {
		other := filepath.Join(t.TempDir(), "other.key")
		_, _, err := runCLI(t, nil, "corporate", "list", "--db", db, "--key-file", other)
		if err == nil || !strings.Contains(err.Error(), "key") {
			t.Fatalf("a different server key was accepted: %v", err)
		}
	})
}

func TestBootstrap(t *testing.T) { testkit.ForEachBackend(t, testBootstrap) }

func testBootstrap(t *testing.T) {
	d := newDB(t)
	s := startServerOn(t, d)
	if s.auth == "" || s.token == "" || s.bot == "" || !strings.Contains(s.stdout.String(), "curl --request POST --url "+s.URL) {
		t.Fatalf("first start printed no demo credentials: %s", s.stdout.String())
	}
	// The printed curl line works as printed.
	expect(t, s.post(t, "/third_parties/user/new", s.auth, s.token, docUserNew), 200, 0)
	if err := s.stop(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	// A second start on the same database creates nothing and prints no secret.
	s2 := startServerOn(t, d)
	if s2.auth != "" || strings.Contains(s2.stdout.String(), s.auth) {
		t.Fatalf("second start bootstrapped again: %s", s2.stdout.String())
	}
	expect(t, s2.post(t, "/third_parties/user/new", s.auth, s.token, docUserNew), 200, 0)

	// On an address others can reach, no demo corporate: its credentials
	// would sit in the log of a public server. stdout says what to do.
	for _, addr := range []string{"0.0.0.0:0", "[::]:0"} {
		pub := startServer(t, "--addr", addr)
		if pub.auth != "" || pub.token != "" || !strings.Contains(pub.stdout.String(), "imbee corporate create --name") {
			t.Errorf("--addr %s: want no demo corporate and how to create one, got: %s", addr, pub.stdout.String())
		}
		if out, err := pub.imbee("corporate", "list", "--json"); err != nil || strings.TrimSpace(out) != "[]" {
			t.Errorf("--addr %s: corporates on the public address: %v %s", addr, err, out)
		}
	}

	// --bootstrap=false leaves an empty database empty.
	s3 := startServer(t, "--bootstrap=false")
	if s3.auth != "" {
		t.Fatal("--bootstrap=false still created a demo corporate")
	}
	out, err := s3.imbee("corporate", "list", "--json")
	if err != nil || strings.TrimSpace(out) != "[]" {
		t.Fatalf("corporates after --bootstrap=false: %v %s", err, out)
	}
}

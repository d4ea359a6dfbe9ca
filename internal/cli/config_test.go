package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, mode os.FileMode, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "imbee.toml")
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, 0o600, `
addr = "0.0.0.0:9000"
rate-limit = 100
rate-burst = 7
bootstrap = false
write-timeout = "45s"
log-level = "debug"
`)
	env := map[string]string{"IMBEE_RATE_BURST": "9", "IMBEE_LOG_LEVEL": "warn"}
	var stderr bytes.Buffer
	c := &cli{getenv: func(k string) string { return env[k] }, stderr: &stderr}
	fs := c.flagSet("serve", "test")
	addr := fs.String("addr", "127.0.0.1:8080", "")
	rate := fs.Float64("rate-limit", 5000, "")
	burst := fs.Int("rate-burst", 10000, "")
	boot := fs.Bool("bootstrap", true, "")
	wt := fs.Duration("write-timeout", 30*time.Second, "")
	level := fs.String("log-level", "info", "")
	format := fs.String("log-format", "json", "")
	if err := c.parse(fs, []string{"--config", path, "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]any{
		"addr (file)": *addr, "rate-limit (file)": *rate, "rate-burst (env over file)": *burst,
		"bootstrap (file)": *boot, "write-timeout (file)": *wt, "log-level (flag over env and file)": *level,
		"log-format (default)": *format,
	} {
		want := map[string]any{
			"addr (file)": "0.0.0.0:9000", "rate-limit (file)": 100.0, "rate-burst (env over file)": 9,
			"bootstrap (file)": false, "write-timeout (file)": 45 * time.Second, "log-level (flag over env and file)": "error",
			"log-format (default)": "json",
		}[name]
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("unexpected warning: %s", stderr.String())
	}
}

func TestConfigFromEnvironment(t *testing.T) {
	path := writeConfig(t, 0o600, `db = "sqlite:/tmp/from-file.db"`)
	c := &cli{getenv: func(k string) string {
		if k == "IMBEE_CONFIG" {
			return path
		}
		return ""
	}, stderr: &bytes.Buffer{}}
	fs := c.flagSet("corporate list", "test")
	sf := c.addStoreFlags(fs)
	if err := c.parse(fs, nil); err != nil {
		t.Fatal(err)
	}
	if sf.db != "sqlite:/tmp/from-file.db" {
		t.Fatalf("db = %q", sf.db)
	}
}

func TestConfigRefusals(t *testing.T) {
	for name, tc := range map[string]struct {
		command, text, want string
	}{
		"typo on serve":    {"serve", `rate-limt = 5`, `unknown setting "rate-limt"`},
		"nested":           {"serve", "[serve]\naddr = \"x\"", "settings are flat"},
		"array":            {"serve", `addr = ["a", "b"]`, "settings are flat"},
		"bad value":        {"serve", `rate-limit = "lots"`, "rate-limit"},
		"not TOML":         {"serve", `addr: x`, "config file"},
		"config in config": {"corporate list", `config = "other.toml"`, `unknown setting "config"`},
	} {
		t.Run(name, func(t *testing.T) {
			path := writeConfig(t, 0o600, tc.text)
			c := &cli{getenv: func(string) string { return "" }, stderr: &bytes.Buffer{}}
			fs := c.flagSet(tc.command, "test")
			fs.Float64("rate-limit", 5000, "")
			fs.String("addr", "", "")
			c.addStoreFlags(fs)
			err := c.parse(fs, []string{"--config", path})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		c := &cli{getenv: func(string) string { return "" }, stderr: &bytes.Buffer{}}
		fs := c.flagSet("serve", "test")
		if err := c.parse(fs, []string{"--config", filepath.Join(t.TempDir(), "none.toml")}); err == nil {
			t.Fatal("a missing config file was accepted")
		}
	})
	t.Run("other commands skip serve's settings", func(t *testing.T) {
		path := writeConfig(t, 0o600, "db = \"sqlite:x.db\"\nrate-limit = 5\n")
		c := &cli{getenv: func(string) string { return "" }, stderr: &bytes.Buffer{}}
		fs := c.flagSet("corporate list", "test")
		sf := c.addStoreFlags(fs)
		if err := c.parse(fs, []string{"--config", path}); err != nil || sf.db != "sqlite:x.db" {
			t.Fatalf("db = %q, err = %v", sf.db, err)
		}
	})
}

func TestConfigWarnsOfReadableSecrets(t *testing.T) {
	path := writeConfig(t, 0o644, `smtp-password = "hunter2"`)
	var stderr bytes.Buffer
	c := &cli{getenv: func(string) string { return "" }, stderr: &stderr}
	fs := c.flagSet("serve", "test")
	pw := fs.String("smtp-password", "", "")
	if err := c.parse(fs, []string{"--config", path}); err != nil {
		t.Fatal(err)
	}
	if *pw != "hunter2" {
		t.Fatalf("smtp-password = %q", *pw)
	}
	if !strings.Contains(stderr.String(), "smtp-password") || strings.Contains(stderr.String(), "hunter2") {
		t.Fatalf("warning %q: want the setting named, its value not shown", stderr.String())
	}
}

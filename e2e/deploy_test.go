package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestSystemdUnit: the unit in deploy/ passes systemd-analyze verify with
// nothing to say, its exposure score (systemd-analyze security) stays
// under 3.0, and it keeps what the service needs: its own user, the state
// directory, the config file, a restart on failure. The example config
// it names is one imbee serve accepts.
//
// It needs systemd-analyze (Debian's package "systemd"): without it the
// test is skipped, or fails when CI is set.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		msg := "systemd-analyze not found: the systemd unit is NOT checked. Install it: apt-get install -y systemd"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPED: " + msg)
	}
	unit, err := os.ReadFile("../deploy/imbee.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"\nUser=imbee\n", "\nStateDirectory=imbee\n", "ExecStart=/usr/local/bin/imbee serve --config /etc/imbee/imbee.toml\n",
		"\nRestart=on-failure\n", "\nNoNewPrivileges=yes\n", "\nProtectSystem=strict\n", "\nPrivateTmp=yes\n",
		"\nRestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX\n", "\nSystemCallFilter=@system-service\n",
	} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	// verify checks that ExecStart's program exists: point it at this
	// tree's build.
	path := filepath.Join(t.TempDir(), "imbee.service")
	local := strings.Replace(string(unit), "ExecStart=/usr/local/bin/imbee ", "ExecStart="+imbeeBinary(t)+" ", 1)
	if err := os.WriteFile(path, []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(analyze, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(analyze, "security", "--offline=true", path).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for imbee\.service: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score >= 3.0 {
		t.Errorf("exposure %.1f, want under 3.0:\n%s", score, out)
	} else {
		t.Logf("systemd-analyze security: exposure %.1f", score)
	}

	// The example config is one serve takes (it refuses unknown
	// settings); the test's flags win over its addresses and paths.
	dir := t.TempDir()
	s := startProcess(t, dbSpec{db: "sqlite:" + filepath.Join(dir, "imbee.db"), keyFile: filepath.Join(dir, "imbee.key")}, "--config", "../deploy/imbee.toml")
	if s.URL == "" {
		t.Fatal("serve did not start with the example config")
	}
}

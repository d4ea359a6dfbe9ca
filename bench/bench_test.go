package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// The harness runs its own binary as the baseline server.
	if addr := os.Getenv(baselineEnv); addr != "" {
		serveBaseline(addr)
		return
	}
	os.Exit(m.Run())
}

// TestHarness runs the whole harness briefly, scale run included, so that it
// keeps working; the figures of so short a run mean nothing.
func TestHarness(t *testing.T) {
	if testing.Short() {
		t.Skip("builds imbee and runs servers")
	}
	// The harness builds ./cmd/imbee from the repository root.
	t.Chdir("..")
	dir := t.TempDir()
	cfg := config{
		duration: 300 * time.Millisecond, reps: 1, conc: []int{4}, modes: []string{"full"}, scale: 3000, postgres: "auto",
		only: regexp.MustCompile(""), out: filepath.Join(dir, "B.md"), jsonOut: filepath.Join(dir, "B.json"),
		msg: msgConfig{Chats: 10, Messages: 40, Rate: 400, Group: 10, GroupMessages: 10},
	}
	rep, err := runAll(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Baseline) != 1 || rep.Baseline[0].Requests == 0 {
		t.Fatalf("baseline not measured: %+v", rep.Baseline)
	}
	if rep.PostgresSkipped != "" {
		t.Logf("PostgreSQL not measured: %s", rep.PostgresSkipped)
		if os.Getenv("CI") != "" {
			t.Errorf("PostgreSQL is required in CI: %s", rep.PostgresSkipped)
		}
	}
	wantRuns := 2 * len(scenarios)
	if rep.PostgresSkipped != "" {
		wantRuns = len(scenarios)
	}
	if len(rep.Runs) != wantRuns || len(rep.Scale) != len(scenarios) {
		t.Fatalf("%d runs and %d scale runs, want %d and %d", len(rep.Runs), len(rep.Scale), wantRuns, len(scenarios))
	}
	// A run's CPU is read in clock ticks (10 ms): a 0.3 s run on a busy
	// machine may do too little to tick, so CPU is checked over all runs.
	var cpu float64
	for _, r := range append(rep.Runs, rep.Scale...) {
		if r.Requests == 0 || r.Errors != 0 || r.CPUPerReq < 0 || r.PeakRSSMB <= 0 {
			t.Errorf("%s: %+v", r.Scenario, r.result)
		}
		cpu += r.CPUPerReq
	}
	if cpu <= 0 {
		t.Error("no run measured any CPU")
	}
	wantMsg := []string{"full", "postgres"}
	if rep.PostgresSkipped != "" {
		wantMsg = wantMsg[:1]
	}
	if len(rep.Messaging) != len(wantMsg) {
		t.Fatalf("%d messaging runs, want %d", len(rep.Messaging), len(wantMsg))
	}
	for i, m := range rep.Messaging {
		l, f := m.Latency, m.Fanout
		if m.Mode != wantMsg[i] || l.Sockets != 20 || l.Deliveries != 2*40 || l.Errors != 0 || l.P99 <= 0 || l.PerSecond <= 0 || l.PeakRSSMB <= 0 {
			t.Errorf("messaging latency (%s): %+v", m.Mode, l)
		}
		if f.Members != 10 || f.Errors != 0 || f.P99 <= 0 || f.DeliveriesPerSecond <= 0 {
			t.Errorf("messaging fan-out (%s): %+v", m.Mode, f)
		}
	}
	if err := rep.write(cfg.out, cfg.jsonOut); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(cfg.out)
	for _, want := range []string{"## Targets", "| user_new | 4 |", "## Scale: 3000", "Machine:", "Commit:", "side by side",
		"## Messaging", "| SQLite full |", "### Fan-out: a group of 10"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

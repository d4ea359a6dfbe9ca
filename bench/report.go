package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

type row struct {
	Mode     string `json:"mode,omitempty"`
	Scenario string `json:"scenario"`
	Kind     string `json:"kind,omitempty"`
	Conc     int    `json:"concurrency"`
	result
	// LocalBaseline is the baseline's throughput measured between this
	// scenario's runs; VsBaseline is the throughput over it.
	LocalBaseline float64 `json:"baseline_per_second,omitempty"`
	VsBaseline    float64 `json:"vs_baseline,omitempty"`
	// VsEmpty and P99VsEmpty compare a scale run with the empty database.
	VsEmpty    float64 `json:"vs_empty,omitempty"`
	P99VsEmpty float64 `json:"p99_vs_empty,omitempty"`
}

type report struct {
	Date           string  `json:"date"`
	Machine        string  `json:"machine"`
	Commit         string  `json:"commit"`
	Command        string  `json:"command"`
	DurationS      float64 `json:"duration_s"`
	Reps           int     `json:"reps"`
	Baseline       []row   `json:"baseline"`
	Runs           []row   `json:"runs"`
	Scale          []row   `json:"scale,omitempty"`
	ScaleRows      int     `json:"scale_rows,omitempty"`
	PreloadSeconds float64 `json:"preload_s,omitempty"`
	StartupEmptyMS float64 `json:"startup_empty_ms"`
	// PostgresSkipped says why there is no PostgreSQL column, if there is none.
	PostgresSkipped string  `json:"postgres_skipped,omitempty"`
	StartupScaleMS  float64 `json:"startup_scale_ms,omitempty"`
	// Messaging is the messaging measurement of each backend.
	Messaging []messagingResult `json:"messaging,omitempty"`
}

func newReport(cfg config) *report {
	return &report{
		Date:      time.Now().UTC().Format(time.RFC3339),
		Machine:   machine(),
		Commit:    commit(),
		DurationS: cfg.duration.Seconds(),
		Reps:      cfg.reps,
	}
}

func (r *report) baselineAt(conc int) float64 {
	for _, b := range r.Baseline {
		if b.Conc == conc {
			return b.PerSecond
		}
	}
	return 0
}

// vsBaseline is x's throughput over the baseline measured beside it, or
// over the run's first baseline at that concurrency.
func (r *report) vsBaseline(x row) float64 {
	b := x.LocalBaseline
	if b <= 0 {
		b = r.baselineAt(x.Conc)
	}
	if b <= 0 {
		return 0
	}
	return x.PerSecond / b
}

func (r *report) addRuns(mode string, rows []row) {
	for _, x := range rows {
		x.Mode = mode
		x.VsBaseline = r.vsBaseline(x)
		r.Runs = append(r.Runs, x)
	}
}

func (r *report) addMessaging(mode string, m *messagingResult) {
	if m != nil {
		m.Mode = mode
		r.Messaging = append(r.Messaging, *m)
	}
}

func (r *report) addScale(rows []row) {
	for _, x := range rows {
		x.Mode = "full"
		x.VsBaseline = r.vsBaseline(x)
		r.Scale = append(r.Scale, x)
	}
	r.compareScale()
}

// compareScale sets each scale row's ratios to the empty database's row.
// Throughput compares the two ratios to their own baselines, which cancels
// the machine's drift between the two runs; p99 compares raw figures.
func (r *report) compareScale() {
	for i, x := range r.Scale {
		for _, e := range r.Runs {
			if e.Mode != "full" || e.Scenario != x.Scenario || e.Conc != x.Conc {
				continue
			}
			if e.VsBaseline > 0 {
				r.Scale[i].VsEmpty = x.VsBaseline / e.VsBaseline
			}
			if e.P99 > 0 {
				r.Scale[i].P99VsEmpty = x.P99 / e.P99
			}
		}
	}
}

func (r *report) write(mdPath, jsonPath string) error {
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(jsonPath, append(j, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(mdPath, []byte(r.markdown()), 0o644)
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Benchmarks\n\n")
	p("Measured by `%s` on %s.\n\n", r.Command, r.Date)
	p("- Machine: %s\n- Commit: %s\n- Each figure is the median of %d closed-loop runs of %.0f s; the load generator shares the machine's cores with the server.\n", r.Machine, r.Commit, r.Reps, r.DurationS)
	p("- Baseline: a bare Go net/http handler, in its own process, that decodes the same JSON body and writes an envelope of the same size, driven by the same load generator. A baseline run at the same concurrency goes before each imbee run, and each ratio (\"vs baseline\") is imbee's median over the median of those baseline runs made seconds apart, because this machine's speed drifts over minutes (the baseline table below is from the start of the run).\n")
	p("- CPU is the server process's user+system time per request; RSS is its peak resident memory during the run.\n\n")

	p("## Targets (SQLite, `full` durability, 32 connections)\n\n")
	p("| target | measured | |\n|---|---|---|\n")
	for _, t := range r.targets() {
		verdict := "met"
		if !t.ok {
			verdict = "**missed**"
		}
		p("| %s | %s | %s |\n", t.name, t.got, verdict)
	}
	if pg := r.postgresTargets(); len(pg) > 0 {
		p("\n## Targets (PostgreSQL against SQLite `full`, same run, 32 connections)\n\n")
		p("| target | measured | |\n|---|---|---|\n")
		for _, t := range pg {
			verdict := "met"
			if !t.ok {
				verdict = "**missed**"
			}
			p("| %s | %s | %s |\n", t.name, t.got, verdict)
		}
	}
	p("\n## Baseline\n\n| concurrency | req/s | p50 ms | p99 ms | p99.9 ms | CPU µs/req | peak RSS MB |\n|---|---|---|---|---|---|---|\n")
	for _, x := range r.Baseline {
		p("| %d | %.0f | %.2f | %.2f | %.2f | %.0f | %.0f |\n", x.Conc, x.PerSecond, x.P50, x.P99, x.P999, x.CPUPerReq, x.PeakRSSMB)
	}
	modes := []string{}
	for _, x := range r.Runs {
		if !contains(modes, x.Mode) {
			modes = append(modes, x.Mode)
		}
	}
	r.sideBySide(&b, modes)
	r.machineUse(&b, modes)
	for _, m := range modes {
		switch m {
		case "postgres":
			p("\n## imbee, PostgreSQL, empty database\n\nA throwaway PostgreSQL server on the same machine, durable as in production (fsync and synchronous_commit on); imbee with its default pool of 16 connections.\n\n")
		case "full":
			p("\n## imbee, SQLite `synchronous=full`, empty database\n\nAn acknowledged write survives a power loss.\n\n")
		default:
			p("\n## imbee, SQLite `synchronous=%s`, empty database\n\nAn acknowledged write survives a process crash; a power loss may lose the last commits.\n\n", m)
		}
		r.table(&b, filter(r.Runs, m), false)
	}
	if r.PostgresSkipped != "" {
		p("\nPostgreSQL was not measured: %s\n", r.PostgresSkipped)
	}
	r.messaging(&b)
	if len(r.Scale) > 0 {
		p("\n## Scale: %d users, chats and links preloaded (`full`)\n\n", r.ScaleRows)
		p("\"vs empty\" divides this run's ratio to its baseline by the empty database's, which cancels the machine's drift between the two runs; \"p99 vs empty\" compares raw p99s.\n\n")
		p("Preloaded through the bulk path in %.0f s. Start-up: %.0f ms on this database, %.0f ms on an empty one.\n\n", r.PreloadSeconds, r.StartupScaleMS, r.StartupEmptyMS)
		r.table(&b, r.Scale, true)
	}
	return b.String()
}

// messaging writes the messaging measurement's section.
func (r *report) messaging(b *strings.Builder) {
	if len(r.Messaging) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	name := map[string]string{"full": "SQLite full", "normal": "SQLite normal", "postgres": "PostgreSQL"}
	l, f := r.Messaging[0].Latency, r.Messaging[0].Fanout
	p("\n## Messaging (empty database)\n\n")
	p("One run per backend, after its scenarios, not a median: users, chats and the group are made for it; each socket is a WebSocket on `/chat/socket` from this process, which also reads and times every frame on the same cores as the server. ")
	p("Errors are failed sends, seqs a socket missed, received twice or out of order, and sockets that failed; any of them is a bug.\n\n")
	p("### End-to-end latency: %d sockets, %d messages offered at %.0f/s\n\n", l.Sockets, l.Messages, l.Offered)
	p("%d 1:1 chats with both members' sockets connected; message k goes to chat k mod %d, from its two members in turn, sent on schedule by up to 256 requests in flight (\"sender late\" is how far behind its schedule the latest send started). ", l.Chats, l.Chats)
	p("Latency is from the start of the `/chat/message/send` request to a socket receiving the message's frame, over every delivery (both sockets of the chat, the sender's own included: %d per run). ", 2*l.Messages)
	p("msg/s counts the messages both sockets received, from the first send to the last frame; \"vs offered\" divides it by the rate offered. CPU is the server's per message sent, its deliveries included; RSS its peak with the sockets connected.\n\n")
	p("| backend | connect s | msg/s | vs offered | p50 ms | p99 ms | p99.9 ms | send p50 ms | send p99 ms | sender late ms | errors | CPU µs/msg | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range r.Messaging {
		x := m.Latency
		p("| %s | %.2f | %.0f | %.0f %% | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f | %s | %.0f | %.0f |\n", name[m.Mode], x.ConnectS, x.PerSecond, 100*x.PerSecond/x.Offered,
			x.P50, x.P99, x.P999, x.SendP50, x.SendP99, x.LateMS, x.errorCounts.String(), x.CPUPerMsg, x.PeakRSSMB)
	}
	if f.Members == 0 {
		return
	}
	p("\n### Fan-out: a group of %d, %d messages\n\n", f.Members, f.Messages)
	p("Its creator and %d contacts (made with `/chat/create` type `group`), every member's socket connected; the creator sends each message as soon as the last is answered. ", f.Members-1)
	p("\"last receiver\" is from the start of the send to the last of the %d other members' sockets receiving the message (\"max\" is the slowest message); deliveries/s counts the frames those sockets received, from the first send to the last frame. CPU is the server's per message sent, its %d deliveries included.\n\n", f.Members-1, f.Members)
	p("| backend | deliveries/s | last receiver p50 ms | p99 ms | max ms | send p50 ms | send p99 ms | errors | CPU µs/msg | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range r.Messaging {
		x := m.Fanout
		p("| %s | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %s | %.0f | %.0f |\n", name[m.Mode], x.DeliveriesPerSecond, x.P50, x.P99, x.Max, x.SendP50, x.SendP99, x.errorCounts.String(), x.CPUPerMsg, x.PeakRSSMB)
	}
}

// sideBySide puts each backend's throughput and p99 next to the others'
// (nothing when no scenario ran: -only messaging).
func (r *report) sideBySide(b *strings.Builder, modes []string) {
	if len(modes) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	name := map[string]string{"full": "SQLite full", "normal": "SQLite normal", "postgres": "PostgreSQL"}
	p("\n## Backends side by side (req/s, p99 ms; empty database)\n\n| scenario | conc |")
	for _, m := range modes {
		p(" %s |", name[m])
	}
	p("\n|---|---|")
	for range modes {
		p("---|")
	}
	p("\n")
	for _, x := range filter(r.Runs, modes[0]) {
		p("| %s | %d |", x.Scenario, x.Conc)
		for _, m := range modes {
			for _, y := range filter(r.Runs, m) {
				if y.Scenario == x.Scenario && y.Conc == x.Conc {
					p(" %.0f (%.1f) |", y.PerSecond, y.P99)
				}
			}
		}
		p("\n")
	}
}

func (r *report) table(b *strings.Builder, rows []row, scale bool) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("| scenario | conc | req/s | baseline req/s | vs baseline |")
	if scale {
		p(" vs empty | p99 vs empty |")
	}
	p(" p50 ms | p99 ms | p99.9 ms | errors | CPU µs/req | peak RSS MB |\n|---|---|---|---|---|")
	if scale {
		p("---|---|")
	}
	p("---|---|---|---|---|---|\n")
	for _, x := range rows {
		p("| %s | %d | %.0f | %.0f | %.0f %% |", x.Scenario, x.Conc, x.PerSecond, x.LocalBaseline, 100*x.VsBaseline)
		if scale {
			p(" %.0f %% | %.2f× |", 100*x.VsEmpty, x.P99VsEmpty)
		}
		p(" %.2f | %.2f | %.2f | %d | %.0f | %.0f |\n", x.P50, x.P99, x.P999, x.Errors, x.CPUPerReq, x.PeakRSSMB)
	}
}

type target struct {
	name, got string
	ok        bool
}

// targets checks issue #3's targets on the figures of this run.
func (r *report) targets() []target {
	var out []target
	maxRSS := 0.0
	for _, x := range filter(r.Runs, "full") {
		maxRSS = max(maxRSS, x.PeakRSSMB)
		if x.Conc != 32 {
			continue
		}
		want := 0.30
		if x.Kind == "repeat" {
			want = 0.60
		}
		out = append(out, target{fmt.Sprintf("%s ≥ %.0f %% of baseline", x.Scenario, want*100), fmt.Sprintf("%.0f %%", 100*x.VsBaseline), x.VsBaseline >= want})
		out = append(out, target{fmt.Sprintf("%s p99 ≤ 20 ms", x.Scenario), fmt.Sprintf("%.2f ms", x.P99), x.P99 <= 20})
	}
	for _, x := range r.Scale {
		if x.Conc != 32 {
			continue
		}
		out = append(out, target{fmt.Sprintf("%s with %d rows ≥ 90 %% of empty, p99 ≤ 1.5×", x.Scenario, r.ScaleRows),
			fmt.Sprintf("%.0f %%, %.2f×", 100*x.VsEmpty, x.P99VsEmpty), x.VsEmpty >= 0.9 && x.P99VsEmpty <= 1.5})
	}
	if r.ScaleRows > 0 {
		out = append(out, target{"start-up with the scale database < 1 s", fmt.Sprintf("%.0f ms", r.StartupScaleMS), r.StartupScaleMS < 1000})
	}
	// The messaging runs hold 1,000 sockets open: the target counts them.
	for _, m := range r.Messaging {
		if m.Mode == "full" {
			maxRSS = max(maxRSS, m.Latency.PeakRSSMB, m.Fanout.PeakRSSMB)
		}
	}
	if maxRSS > 0 {
		out = append(out, target{"server RSS under load ≤ 150 MB, sockets included", fmt.Sprintf("%.0f MB", maxRSS), maxRSS <= 150})
	}
	return out
}

// postgresTargets checks issue #14's targets: every scenario on
// PostgreSQL at half SQLite full's rate or more, message_send's p99 within
// 20 ms.
func (r *report) postgresTargets() []target {
	var out []target
	for _, x := range filter(r.Runs, "postgres") {
		if x.Conc != 32 {
			continue
		}
		for _, y := range filter(r.Runs, "full") {
			if y.Scenario == x.Scenario && y.Conc == x.Conc && y.PerSecond > 0 {
				share := x.PerSecond / y.PerSecond
				out = append(out, target{fmt.Sprintf("%s ≥ 50 %% of SQLite full", x.Scenario), fmt.Sprintf("%.0f %%", 100*share), share >= 0.5})
			}
		}
		if x.Scenario == "message_send" {
			out = append(out, target{"message_send p99 ≤ 20 ms", fmt.Sprintf("%.2f ms", x.P99), x.P99 <= 20})
		}
	}
	return out
}

// machineUse says where each run's CPU went: imbee's, PostgreSQL's (its
// processes on this machine), the whole machine's per request, and how busy
// the machine's cores were; a machine near 100 % busy is bound by its
// cores, one well below by waiting (disk, locks).
func (r *report) machineUse(b *strings.Builder, modes []string) {
	if len(modes) == 0 {
		return
	}
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	name := map[string]string{"full": "SQLite full", "normal": "SQLite normal", "postgres": "PostgreSQL"}
	p("\n## Where the CPU goes (32 connections)\n\n")
	p("Per request: imbee's CPU, PostgreSQL's (every `postgres` process on this machine; none for SQLite, which runs inside imbee), and the whole machine's (all cores' busy time over the run, the load generator's and the baseline's idle share included). Busy and I/O wait are shares of all %d cores over the run.\n\n", runtime.NumCPU())
	p("| scenario | backend | req/s | imbee CPU µs/req | PostgreSQL CPU µs/req | machine CPU µs/req | busy %% | I/O wait %% |\n|---|---|---|---|---|---|---|---|\n")
	for _, x := range filter(r.Runs, modes[0]) {
		if x.Conc != 32 {
			continue
		}
		for _, m := range modes {
			for _, y := range filter(r.Runs, m) {
				if y.Scenario != x.Scenario || y.Conc != x.Conc || y.PerSecond == 0 {
					continue
				}
				machine := y.BusyPct / 100 * float64(runtime.NumCPU()) * 1e6 / y.PerSecond
				db := "—"
				if m == "postgres" {
					db = fmt.Sprintf("%.0f", y.DBCPUPerReq)
				}
				p("| %s | %s | %.0f | %.0f | %s | %.0f | %.0f | %.0f |\n", y.Scenario, name[m], y.PerSecond, y.CPUPerReq, db, machine, y.BusyPct, y.IOWaitPct)
			}
		}
	}
}

func filter(rows []row, mode string) []row {
	var out []row
	for _, x := range rows {
		if x.Mode == mode {
			out = append(out, x)
		}
	}
	return out
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s, %d cores%s, %s %s/%s", cpu, runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, _ := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

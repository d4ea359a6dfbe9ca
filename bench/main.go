// Command bench measures imbee against a bare net/http baseline on the same
// machine, with the same load generator, in one run, and writes the figures
// to BENCHMARKS.md and a JSON file. Run it from the repository root:
//
//	go run ./bench                 # everything: both durability modes and the 1M-row scale run
//	go run ./bench -scale 0 -duration 2s -conc 32
//
// imbee and the baseline each run as a separate process; the load generator
// runs here, closed-loop: each of C connections sends its next request as
// soon as the previous one is answered.
//
// After the scenarios, on each backend, the messaging measurement (see
// messaging.go) connects WebSockets and times messages from the send to the
// sockets: a paced sender over many 1:1 chats, then a group's fan-out.
//
//	go run ./bench -only messaging -modes full -postgres '' -scale 0
//
// With -against REV it compares this tree's imbee with REV's instead, scenario
// by scenario (compare.go).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/imbee/imbee/internal/pgtest"
)

type config struct {
	duration time.Duration
	reps     int
	conc     []int
	modes    []string
	scale    int
	only     *regexp.Regexp
	out      string
	jsonOut  string
	profile  string
	postgres string
	msg      msgConfig
}

// baselineEnv, when set, makes this program the baseline server on that
// address: the harness starts itself that way.
const baselineEnv = "IMBEE_BENCH_BASELINE"

func main() {
	if addr := os.Getenv(baselineEnv); addr != "" {
		log.Fatal(serveBaseline(addr))
	}
	duration := flag.Duration("duration", 2*time.Second, "how long each closed-loop run lasts")
	reps := flag.Int("reps", 3, "runs of each measurement; the report gives their median")
	conc := flag.String("conc", "1,32,128", "concurrencies (connections) to run each scenario at")
	modes := flag.String("modes", "full,normal", "SQLite durability modes to measure (--sqlite-synchronous)")
	scale := flag.Int("scale", 1_000_000, "rows of each kind to preload for the scale run; 0 skips it")
	only := flag.String("only", "", `run only the scenarios whose name matches this regexp; "messaging" names the messaging measurement`)
	out := flag.String("out", "BENCHMARKS.md", "Markdown report")
	jsonOut := flag.String("json", "bench/results.json", "JSON report")
	postgres := flag.String("postgres", "auto", `PostgreSQL to measure too: "auto" starts a throwaway durable server from the installed binaries, a URL names a server (a database is created on it), "" skips it`)
	profile := flag.String("profile", "", "if set, save a CPU profile of imbee for each scenario at 32 connections into this directory")
	fromJSON := flag.String("from-json", "", "only rewrite the Markdown report from this JSON report")
	against := flag.String("against", "", "compare with the imbee of this git revision instead (see compare.go): the scenarios only, both servers in one run")
	againstArgs := flag.String("against-args", "", "with -against: extra serve flags for this tree's server only")
	againstOut := flag.String("against-out", "bench/compare.md", "with -against: the Markdown report")
	var mc msgConfig
	flag.IntVar(&mc.Chats, "msg-chats", 500, "messaging: 1:1 chats, each with both members' sockets connected")
	flag.IntVar(&mc.Messages, "msg-count", 2000, "messaging: messages sent into those chats")
	flag.Float64Var(&mc.Rate, "msg-rate", 500, "messaging: messages per second offered to those chats")
	flag.IntVar(&mc.Group, "msg-group", 100, "messaging: members of the fan-out group, its sender included")
	flag.IntVar(&mc.GroupMessages, "msg-group-count", 200, "messaging: messages sent to the group, one after another")
	flag.Parse()
	if mc.Chats < 1 || mc.Messages < 1 || mc.Rate <= 0 || mc.GroupMessages < 1 {
		log.Fatal("the -msg- flags need positive values")
	}
	cfg := config{duration: *duration, reps: max(1, *reps), scale: *scale, out: *out, jsonOut: *jsonOut, profile: *profile, postgres: *postgres, modes: strings.Split(*modes, ","), msg: mc}
	for _, c := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			log.Fatalf("bad -conc %q", *conc)
		}
		cfg.conc = append(cfg.conc, n)
	}
	if *fromJSON != "" {
		if err := rewrite(*fromJSON, *out); err != nil {
			log.Fatal(err)
		}
		return
	}
	var err error
	if cfg.only, err = regexp.Compile(*only); err != nil {
		log.Fatal(err)
	}
	if *against != "" {
		if err := compare(context.Background(), cfg, *against, *againstArgs, *againstOut); err != nil {
			log.Fatal(err)
		}
		return
	}
	rep, err := runAll(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	rep.Command = "go run ./bench " + strings.Join(os.Args[1:], " ")
	if err := rep.write(cfg.out, cfg.jsonOut); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("wrote %s and %s\n", cfg.out, cfg.jsonOut)
}

func runAll(ctx context.Context, cfg config) (*report, error) {
	tmp, err := os.MkdirTemp("", "imbee-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	raiseFileLimit()
	bin := filepath.Join(tmp, "imbee")
	log.Printf("building imbee")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/imbee").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build: %v: %s", err, out)
	}
	rep := newReport(cfg)

	// The yardstick, measured in this same run.
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	bp, err := startProc(self, nil, []string{baselineEnv + "=127.0.0.1:0"})
	if err != nil {
		return nil, err
	}
	defer bp.stop()
	ys := &yardstick{p: bp, e: &env{url: bp.URL}}
	for _, c := range cfg.conc {
		client := newClient(c)
		r, _ := measure(ctx, cfg, bp, client, c, ys.request, nil, nil, 200)
		log.Printf("baseline c=%d: %.0f/s p99 %.2f ms", c, r.PerSecond, r.P99)
		rep.Baseline = append(rep.Baseline, row{Scenario: "baseline", Conc: c, result: r})
	}

	for _, mode := range cfg.modes {
		dir := filepath.Join(tmp, "db-"+mode)
		os.MkdirAll(dir, 0o755)
		rows, msg, startup, err := runImbee(ctx, cfg, ys, bin, dir, mode, "", nil, true)
		if err != nil {
			return nil, err
		}
		rep.addRuns(mode, rows)
		rep.addMessaging(mode, msg)
		if mode == "full" {
			rep.StartupEmptyMS = startup.Seconds() * 1000
		}
	}

	if cfg.postgres != "" {
		url, stop, err := postgresDatabase(cfg.postgres)
		if err != nil {
			log.Printf("PostgreSQL skipped: %v", err)
			rep.PostgresSkipped = err.Error()
		} else {
			dir := filepath.Join(tmp, "db-postgres")
			os.MkdirAll(dir, 0o755)
			rows, msg, _, err := runImbee(ctx, cfg, ys, bin, dir, "postgres", url, nil, true)
			stop()
			if err != nil {
				return nil, err
			}
			rep.addRuns("postgres", rows)
			rep.addMessaging("postgres", msg)
		}
	}

	if cfg.scale > 0 {
		dir := filepath.Join(tmp, "db-scale")
		os.MkdirAll(dir, 0o755)
		log.Printf("preloading %d users, chats and links", cfg.scale)
		t0 := time.Now()
		c, err := preload(ctx, dir, cfg.scale)
		if err != nil {
			return nil, err
		}
		rep.PreloadSeconds = time.Since(t0).Seconds()
		rows, _, startup, err := runImbee(ctx, cfg, ys, bin, dir, "full", "", &c, false)
		if err != nil {
			return nil, err
		}
		rep.ScaleRows = cfg.scale
		rep.StartupScaleMS = startup.Seconds() * 1000
		rep.addScale(rows)
	}
	return rep, nil
}

// runImbee starts imbee on dir (SQLite in the given synchronous mode) or on
// the PostgreSQL database pgURL (mode "postgres"), prepares the pool and
// runs every scenario at every concurrency, then, with messaging set and
// unless -only excludes it, the messaging measurement. With c nil, the
// credentials come from the first-run bootstrap.
func runImbee(ctx context.Context, cfg config, ys *yardstick, bin, dir, mode, pgURL string, c *creds, messaging bool) ([]row, *messagingResult, time.Duration, error) {
	args := []string{"serve", "--addr", "127.0.0.1:0", "--rate-limit", "0", "--recipient-limit", "0"}
	if mode == "postgres" {
		args = append(args, "--db", pgURL, "--key-file", filepath.Join(dir, "imbee.key"))
	} else {
		args = append(args, "--db", "sqlite:"+filepath.Join(dir, "imbee.db"), "--sqlite-synchronous", mode)
	}
	if cfg.profile != "" {
		args = append(args, "--debug-addr", debugAddr)
	}
	p, err := startProc(bin, args, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	defer p.stop()
	if c == nil {
		out := p.stdout.String()
		c = &creds{Auth: after(out, "Authorization:"), Token: after(out, "X-WOOS-KEY:"), Bot: after(out, "bot_idsha:")}
	}
	e := &env{url: p.URL, c: *c, client: newClient(8)}
	log.Printf("imbee (%s) started in %v; setting up the pool", mode, p.start)
	if err := e.setup(ctx); err != nil {
		return nil, nil, 0, err
	}
	var rows []row
	for _, s := range scenarios {
		if !cfg.only.MatchString(s.Name) {
			continue
		}
		for _, conc := range cfg.conc {
			client := newClient(conc)
			var prof chan error
			var profile func()
			if cfg.profile != "" && conc == 32 {
				prof = make(chan error, 1)
				profile = func() {
					go func() {
						prof <- saveProfile(cfg.duration, filepath.Join(cfg.profile, fmt.Sprintf("%s-%s-c%d.pprof", mode, s.Name, conc)))
					}()
				}
			}
			r, base := measure(ctx, cfg, p, client, conc, s.make(e), ys, profile, s.ok...)
			if prof != nil {
				if err := <-prof; err != nil {
					log.Printf("profile: %v", err)
				}
			}
			client.CloseIdleConnections()
			log.Printf("%s %s c=%d: %.0f/s (baseline %.0f/s) p99 %.2f ms errors %d", mode, s.Name, conc, r.PerSecond, base, r.P99, r.Errors)
			rows = append(rows, row{Scenario: s.Name, Kind: s.Kind, Conc: conc, result: r, LocalBaseline: base})
		}
	}
	var msg *messagingResult
	if messaging && cfg.msg.Chats > 0 && cfg.only.MatchString("messaging") {
		log.Printf("imbee (%s): messaging", mode)
		if msg, err = runMessaging(ctx, cfg.msg, p, e); err != nil {
			return nil, nil, 0, fmt.Errorf("messaging (%s): %w", mode, err)
		}
	}
	return rows, msg, p.start, nil
}

// yardstick is the baseline server, kept running through the whole run.
type yardstick struct {
	p *proc
	e *env
}

func (y *yardstick) request(w, i int) (*http.Request, error) {
	return y.e.post("/third_parties/user/new", "k", fmt.Sprintf(`{"uniqueIdSha":"b-%d-%d",%s}`, w, i, device))
}

// measure runs cfg.reps closed loops, each with the server's CPU time and
// peak memory, and returns their median. With ys set, a baseline run at the
// same concurrency goes before each of them, and base is the median of
// those: this machine's speed drifts, so each ratio compares runs made
// seconds apart. profile, if set, is called once, as imbee's first run starts
// (not during a baseline run).
func measure(ctx context.Context, cfg config, p *proc, client *http.Client, conc int, next request, ys *yardstick, profile func(), ok ...int) (r result, base float64) {
	var runs []result
	var bases []float64
	for i := range cfg.reps {
		if ys != nil {
			bc := newClient(conc)
			bases = append(bases, closedLoop(ctx, bc, conc, cfg.duration, ys.request, 200).PerSecond)
			bc.CloseIdleConnections()
		}
		if i == 0 && profile != nil {
			profile()
		}
		p.resetPeakRSS()
		cpu0, m0 := p.cpuTime(), sampleCPU()
		r := closedLoop(ctx, client, conc, cfg.duration, next, ok...)
		var db time.Duration
		r.BusyPct, r.IOWaitPct, db = machineUse(m0, sampleCPU())
		if r.Requests > 0 {
			r.CPUPerReq = float64((p.cpuTime() - cpu0).Microseconds()) / float64(r.Requests)
			r.DBCPUPerReq = float64(db.Microseconds()) / float64(r.Requests)
		}
		r.PeakRSSMB = p.peakRSS()
		runs = append(runs, r)
	}
	if len(bases) > 0 {
		slices.Sort(bases)
		base = bases[len(bases)/2]
	}
	return median(runs), base
}

func after(out, label string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if i := strings.Index(line, label); i >= 0 {
			if f := strings.Fields(line[i+len(label):]); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

const debugAddr = "127.0.0.1:16060"

// saveProfile fetches a CPU profile of imbee covering most of a run.
func saveProfile(d time.Duration, path string) error {
	secs := max(1, int(d.Seconds())-1)
	resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", debugAddr, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// postgresDatabase gives the benchmark a new database: on a throwaway
// durable server ("auto") or on the server spec names.
func postgresDatabase(spec string) (url string, stop func(), err error) {
	admin, stop := spec, func() {}
	if spec == "auto" {
		if admin, stop, err = pgtest.Start(true); err != nil {
			return "", nil, err
		}
	}
	url, err = pgtest.CreateDatabase(admin, fmt.Sprintf("imbee_bench_%d", time.Now().Unix()))
	if err != nil {
		stop()
		return "", nil, err
	}
	return url, stop, nil
}

// rewrite makes the Markdown report again from a JSON one.
func rewrite(jsonPath, mdPath string) error {
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return err
	}
	rep.compareScale()
	return rep.write(mdPath, jsonPath)
}

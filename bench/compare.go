package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/imbee/imbee/internal/pgtest"
)

// compare measures the imbee of this tree against the one of another git
// revision, in one run: both servers run side by side, each on its own new
// database, and every repetition of a scenario measures both, one right
// after the other, so that the ratio compares runs made seconds apart on
// a machine whose speed drifts. It answers "how much slower did this
// change make each endpoint?" better than two runs minutes apart can.
//
//	go run ./bench -against main~3 -modes full -postgres auto -conc 32 -reps 5
func compare(ctx context.Context, cfg config, rev, newArgs, out string) error {
	tmp, err := os.MkdirTemp("", "imbee-compare-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	raiseFileLimit()
	newBin, oldBin := filepath.Join(tmp, "imbee-new"), filepath.Join(tmp, "imbee-old")
	log.Printf("building imbee (this tree) and imbee (%s)", rev)
	if b, err := exec.Command("go", "build", "-o", newBin, "./cmd/imbee").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v: %s", err, b)
	}
	src := filepath.Join(tmp, "old-src")
	if b, err := exec.Command("git", "worktree", "add", "--detach", src, rev).CombinedOutput(); err != nil {
		return fmt.Errorf("git worktree add %s: %v: %s", rev, err, b)
	}
	defer exec.Command("git", "worktree", "remove", "--force", src).Run()
	build := exec.Command("go", "build", "-o", oldBin, "./cmd/imbee")
	build.Dir = src
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build %s: %v: %s", rev, err, b)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# This tree against %s\n\nMeasured by `go run ./bench %s` on %s (%s). Each figure is the median of %d closed-loop runs of %v; the two servers' runs alternate, each going first in turn. Ratio: new req/s over old req/s; CPU: the server process's user+system time per request (the figure least moved by the disk and the other process), median of the runs; CPU ratio: new over old.\n\n",
		rev, strings.Join(os.Args[1:], " "), time.Now().UTC().Format(time.RFC3339), machine(), cfg.reps, cfg.duration)
	modes := cfg.modes
	if cfg.postgres != "" {
		modes = append(modes, "postgres")
	}
	for _, mode := range modes {
		fmt.Fprintf(&b, "## %s\n\n| scenario | conc | old req/s | new req/s | ratio | old CPU µs/req | new CPU µs/req | CPU ratio | old p99 ms | new p99 ms |\n|---|---|---|---|---|---|---|---|---|---|\n", mode)
		var pgOld, pgNew string
		if mode == "postgres" {
			admin, stop := cfg.postgres, func() {}
			if cfg.postgres == "auto" {
				if admin, stop, err = pgtest.Start(true); err != nil {
					return err
				}
			}
			defer stop()
			suffix := time.Now().Unix()
			if pgOld, err = pgtest.CreateDatabase(admin, fmt.Sprintf("imbee_old_%d", suffix)); err != nil {
				return err
			}
			if pgNew, err = pgtest.CreateDatabase(admin, fmt.Sprintf("imbee_new_%d", suffix)); err != nil {
				return err
			}
		}
		oldP, oldE, err := startCompared(ctx, oldBin, filepath.Join(tmp, "old-"+mode), mode, pgOld, nil)
		if err != nil {
			return err
		}
		newP, newE, err := startCompared(ctx, newBin, filepath.Join(tmp, "new-"+mode), mode, pgNew, strings.Fields(newArgs))
		if err != nil {
			oldP.stop()
			return err
		}
		for _, s := range scenarios {
			if !cfg.only.MatchString(s.Name) {
				continue
			}
			for _, conc := range cfg.conc {
				// What the last scenario queued (deliveries sent through
				// the logging transport) is done before this one is timed.
				settle(oldP)
				settle(newP)
				oldNext, newNext := s.make(oldE), s.make(newE)
				var olds, news []result
				run := func(p *proc, next request) result {
					c := newClient(conc)
					defer c.CloseIdleConnections()
					cpu0 := p.cpuTime()
					r := closedLoop(ctx, c, conc, cfg.duration, next, s.ok...)
					if r.Requests > 0 {
						r.CPUPerReq = float64((p.cpuTime() - cpu0).Microseconds()) / float64(r.Requests)
					}
					return r
				}
				for i := range cfg.reps {
					// Each goes first in turn: a run can warm or cool
					// the machine for the next.
					if i%2 == 0 {
						olds = append(olds, run(oldP, oldNext))
						news = append(news, run(newP, newNext))
					} else {
						news = append(news, run(newP, newNext))
						olds = append(olds, run(oldP, oldNext))
					}
				}
				o, n := median(olds), median(news)
				ratio := n.PerSecond / o.PerSecond
				oCPU, nCPU := medianCPU(olds), medianCPU(news)
				log.Printf("%s %s c=%d: old %.0f/s %.0f µs, new %.0f/s %.0f µs (%.2f×, CPU %.2f×); errors %d, %d", mode, s.Name, conc, o.PerSecond, oCPU, n.PerSecond, nCPU, ratio, nCPU/oCPU, o.Errors, n.Errors)
				fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.2f | %.0f | %.0f | %.2f | %.2f | %.2f |\n", s.Name, conc, o.PerSecond, n.PerSecond, ratio, oCPU, nCPU, nCPU/oCPU, o.P99, n.P99)
			}
		}
		b.WriteString("\n")
		oldP.stop()
		newP.stop()
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		return err
	}
	fmt.Print(b.String())
	return nil
}

// startCompared starts one of the compared servers on a new database and
// sets up its pool.
func startCompared(ctx context.Context, bin, dir, mode, pgURL string, extra []string) (*proc, *env, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--rate-limit", "0", "--recipient-limit", "0"}
	if mode == "postgres" {
		args = append(args, "--db", pgURL, "--key-file", filepath.Join(dir, "imbee.key"))
	} else {
		args = append(args, "--db", "sqlite:"+filepath.Join(dir, "imbee.db"), "--sqlite-synchronous", mode)
	}
	p, err := startProc(bin, append(args, extra...), nil)
	if err != nil {
		return nil, nil, err
	}
	out := p.stdout.String()
	e := &env{url: p.URL, c: creds{Auth: after(out, "Authorization:"), Token: after(out, "X-WOOS-KEY:"), Bot: after(out, "bot_idsha:")}, client: newClient(8)}
	log.Printf("%s (%s) started; setting up the pool", filepath.Base(bin), mode)
	if err := e.setup(ctx); err != nil {
		p.stop()
		return nil, nil, err
	}
	return p, e, nil
}

// medianCPU is the median of the runs' CPU time per request: median()
// takes the run of median throughput, whose CPU figure may be an outlier.
func medianCPU(runs []result) float64 {
	cpu := make([]float64, len(runs))
	for i, r := range runs {
		cpu[i] = r.CPUPerReq
	}
	slices.Sort(cpu)
	return cpu[len(cpu)/2]
}

// settle waits, at most 30 s, until p is idle: less than 2 ms of CPU in
// 250 ms. A server still sending what a scenario queued would otherwise
// charge that work to the next scenario's requests.
func settle(p *proc) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cpu0 := p.cpuTime()
		time.Sleep(250 * time.Millisecond)
		if p.cpuTime()-cpu0 < 2*time.Millisecond {
			return
		}
	}
	log.Printf("pid %d still busy after 30 s", p.cmd.Process.Pid)
}

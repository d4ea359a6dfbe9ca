package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
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
	fmt.Fprintf(&b, "# This tree against %s\n\nMeasured by `go run ./bench %s` on %s (%s). Each figure is the median of %d closed-loop runs of %v; the two servers' runs alternate, each going first in turn. Ratio: new req/s over old req/s.\n\n",
		rev, strings.Join(os.Args[1:], " "), time.Now().UTC().Format(time.RFC3339), machine(), cfg.reps, cfg.duration)
	modes := cfg.modes
	if cfg.postgres != "" {
		modes = append(modes, "postgres")
	}
	for _, mode := range modes {
		fmt.Fprintf(&b, "## %s\n\n| scenario | conc | old req/s | new req/s | ratio | old p99 ms | new p99 ms |\n|---|---|---|---|---|---|---|\n", mode)
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
				oldNext, newNext := s.make(oldE), s.make(newE)
				var olds, news []result
				for i := range cfg.reps {
					oc, nc := newClient(conc), newClient(conc)
					// Each goes first in turn: a run can warm or cool
					// the machine for the next.
					if i%2 == 0 {
						olds = append(olds, closedLoop(ctx, oc, conc, cfg.duration, oldNext, s.ok...))
						news = append(news, closedLoop(ctx, nc, conc, cfg.duration, newNext, s.ok...))
					} else {
						news = append(news, closedLoop(ctx, nc, conc, cfg.duration, newNext, s.ok...))
						olds = append(olds, closedLoop(ctx, oc, conc, cfg.duration, oldNext, s.ok...))
					}
					oc.CloseIdleConnections()
					nc.CloseIdleConnections()
				}
				o, n := median(olds), median(news)
				ratio := n.PerSecond / o.PerSecond
				log.Printf("%s %s c=%d: old %.0f/s, new %.0f/s (%.2f×); errors %d, %d", mode, s.Name, conc, o.PerSecond, n.PerSecond, ratio, o.Errors, n.Errors)
				fmt.Fprintf(&b, "| %s | %d | %.0f | %.0f | %.2f | %.2f | %.2f |\n", s.Name, conc, o.PerSecond, n.PerSecond, ratio, o.P99, n.P99)
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

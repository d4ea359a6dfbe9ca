package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// proc is a server process the harness started.
type proc struct {
	cmd    *exec.Cmd
	URL    string
	stdout *bytes.Buffer
	start  time.Duration // from exec to listening
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startProc runs a server and waits for its "listening on" line.
func startProc(name string, args []string, env []string) (*proc, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = nil // the access log: discarded, but still written by the server
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdout: &bytes.Buffer{}}
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			p.stdout.WriteString(line + "\n")
			if m := listening.FindStringSubmatch(line); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case u := <-found:
		p.URL = u
		p.start = time.Since(t0)
		return p, nil
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not start: %s", name, p.stdout.String())
	}
}

func (p *proc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// cpuTime is the process's user+system CPU time so far.
func (p *proc) cpuTime() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after ")".
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks
}

// resetPeakRSS starts a new peak-RSS measurement (Linux clear_refs 5).
func (p *proc) resetPeakRSS() {
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// peakRSS is the process's peak resident set since the last reset, in MB.
func (p *proc) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuSample is the machine's CPU time so far (/proc/stat, all cores) and
// that of every process named postgres: when the benchmark's PostgreSQL
// runs on this machine, its whole cost per request, next to imbee's.
type cpuSample struct {
	busy, iowait, total int64 // clock ticks
	postgres            int64 // clock ticks
}

func sampleCPU() cpuSample {
	var s cpuSample
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := bytes.Cut(b, []byte("\n"))
		// cpu user nice system idle iowait irq softirq steal ...
		f := strings.Fields(string(line))
		for i, v := range f[1:min(len(f), 9)] {
			n, _ := strconv.ParseInt(v, 10, 64)
			s.total += n
			switch i {
			case 3: // idle
			case 4:
				s.iowait += n
			default:
				s.busy += n
			}
		}
	}
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		i := bytes.LastIndexByte(b, ')')
		if err != nil || i < 0 || !bytes.HasSuffix(b[:i], []byte("(postgres")) {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		s.postgres += utime + stime
	}
	return s
}

// machineUse is what happened on the machine between two samples: the
// share of all cores busy and waiting on I/O, and PostgreSQL's CPU time.
func machineUse(a, b cpuSample) (busyPct, iowaitPct float64, postgres time.Duration) {
	const ticks = 100 // USER_HZ on Linux
	if total := b.total - a.total; total > 0 {
		busyPct = 100 * float64(b.busy-a.busy) / float64(total)
		iowaitPct = 100 * float64(b.iowait-a.iowait) / float64(total)
	}
	return busyPct, iowaitPct, time.Duration(b.postgres-a.postgres) * time.Second / ticks
}

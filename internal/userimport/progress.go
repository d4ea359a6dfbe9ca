package userimport

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

const (
	progressEvery    = 5 * time.Second
	progressEveryRow = 100000
)

// progress reports an import's advance: a bar with rate and ETA on a
// terminal, plain lines (every progressEvery or progressEveryRow rows)
// otherwise, for logs.
type progress interface {
	add(rows int64)
	finish()
}

// newProgress reports on w about total rows (0: unknown), done of them
// already.
func newProgress(w io.Writer, total, done int64) progress {
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		max := int64(-1)
		if total > done {
			max = total - done
		}
		desc := "importing"
		if done > 0 {
			desc = fmt.Sprintf("importing after row %d", done)
		}
		return barProgress{progressbar.NewOptions64(max,
			progressbar.OptionSetWriter(f),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("rows"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionSetWidth(30),
			progressbar.OptionSetRenderBlankState(true), // starts the clock: the first rate is right
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(f) }),
		)}
	}
	now := time.Now()
	return &lineProgress{w: w, total: total, done: done, from: done, start: now, last: now, lastDone: done, now: time.Now}
}

type barProgress struct{ bar *progressbar.ProgressBar }

func (b barProgress) add(rows int64) { b.bar.Add64(rows) }
func (b barProgress) finish()        { b.bar.Finish() }

type lineProgress struct {
	w                 io.Writer
	total, done, from int64 // from: done when this run started
	start, last       time.Time
	lastDone          int64
	now               func() time.Time
}

func (p *lineProgress) add(rows int64) {
	p.done += rows
	now := p.now()
	if now.Sub(p.last) < progressEvery && p.done-p.lastDone < progressEveryRow {
		return
	}
	p.last, p.lastDone = now, p.done
	rate := float64(p.done-p.from) / now.Sub(p.start).Seconds()
	line := fmt.Sprintf("imported %d rows", p.done)
	if p.total > 0 {
		line += fmt.Sprintf(" of %d (%d%%)", p.total, min(100, 100*p.done/p.total))
	}
	line += fmt.Sprintf(", %.0f rows/s", rate)
	if p.total > p.done && rate > 0 {
		line += ", ETA " + time.Duration(float64(p.total-p.done)/rate*float64(time.Second)).Round(time.Second).String()
	}
	fmt.Fprintln(p.w, line)
}

func (p *lineProgress) finish() {}

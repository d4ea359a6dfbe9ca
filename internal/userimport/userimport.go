// Package userimport creates (or finds) the users an import file lists, in
// one corporate, each as /third_parties/user/new would, and writes their
// credentials to a CSV file readable by its owner only. It reads CSV with a
// header row or JSON Lines, skips and reports invalid rows, checkpoints
// after each batch so that an interrupted import continues where it
// stopped, and reports its advance. The command (imbee users import) parses
// the flags and prints the summary.
package userimport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/imbee/imbee"
)

// Columns are the fields of a user in an import file: CSV columns or JSONL
// keys, named as /third_parties/user/new's parameters.
var Columns = []string{"uniqueIdSha", "platform", "deviceName", "hardwareId", "osVersion"}

const (
	// MaxBatch is the most input rows one transaction (and checkpoint) takes.
	MaxBatch = 10000

	maxInvalidShown = 10      // invalid rows the summary lists
	maxJSONLine     = 1 << 20 // longer JSONL lines are invalid rows
)

// Registrar creates (or finds) users in bulk, as the store does.
type Registrar interface {
	RegisterUsers(ctx context.Context, corporateID int64, specs []imbee.UserSpec) ([]imbee.Registration, error)
}

// Config is one import's input, output and destination.
type Config struct {
	Store     Registrar
	Corporate int64
	File      string    // the input's path; "-": Stdin
	Stdin     io.Reader // read when File is "-"
	Format    string    // "csv", "jsonl", or "auto" (JSONL when it starts with "{")
	Out       string    // the credentials file; its checkpoint is Out + ".state"
	Batch     int       // input rows per transaction and checkpoint, 1 to MaxBatch
	Progress  io.Writer // where the advance is reported (stderr); nil: nowhere
}

// Summary is what an import has done.
type Summary struct {
	Rows      int64 // input rows done, by this run and the ones it resumed
	ResumedAt int64 // input rows an earlier, interrupted run had done
	Created   int64
	Existing  int64
	Invalid   int64
	Examples  []InvalidRow // the first invalid rows
}

// InvalidRow is an input row that is not a user, and why.
type InvalidRow struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

// Import is an import ready to run: its input open (and skipped to the
// checkpoint when an earlier run was interrupted) and its output open.
type Import struct {
	cfg       Config
	in        io.Closer
	rows      rowReader
	out       *credentialsFile
	statePath string
	state     importState
	total     int64 // input rows (0: unknown)
	resumedAt int64
}

// Open opens the input and the credentials file and resumes from the
// checkpoint when there is one; it fails when the checkpoint is another
// import's or the input is not the one it was made from.
func Open(cfg Config) (_ *Import, err error) {
	if cfg.Batch < 1 || cfg.Batch > MaxBatch {
		return nil, fmt.Errorf("batch %d: it must be from 1 to %d", cfg.Batch, MaxBatch)
	}
	if cfg.Progress == nil {
		cfg.Progress = io.Discard
	}
	in, total, err := openInput(cfg.File, cfg.Stdin)
	if err != nil {
		return nil, err
	}
	imp := &Import{cfg: cfg, in: in, total: total, statePath: cfg.Out + ".state"}
	defer func() {
		if err != nil {
			imp.Close()
		}
	}()
	if imp.out, err = openCredentials(cfg.Out, in); err != nil {
		return nil, err
	}
	prev, err := loadState(imp.statePath)
	if err != nil {
		return nil, err
	}

	br := bufio.NewReaderSize(in, maxJSONLine)
	format := cfg.Format
	if format == "auto" {
		format = sniffFormat(br)
	}
	if imp.rows, err = newRowReader(format, br); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.File, err)
	}
	if format == "csv" && imp.total > 0 {
		imp.total-- // the header
	}
	imp.state = importState{Corporate: cfg.Corporate, Format: format}
	if prev != nil {
		if prev.Corporate != cfg.Corporate || prev.Format != format {
			return nil, fmt.Errorf("%s is the checkpoint of an import into corporate %d (%s): resume it with the same arguments, or remove the file to start over",
				imp.statePath, prev.Corporate, prev.Format)
		}
		if err := imp.resume(*prev); err != nil {
			return nil, fmt.Errorf("%s: %w (remove %s to start over)", cfg.File, err, imp.statePath)
		}
	} else if err := imp.out.restart(); err != nil {
		return nil, err
	}
	imp.resumedAt = imp.state.Rows
	return imp, nil
}

// Close closes the input and the credentials file.
func (imp *Import) Close() error {
	var err error
	if imp.out != nil {
		err = imp.out.f.Close()
	}
	return errors.Join(err, imp.in.Close())
}

// Run imports the rest of the input, reporting its advance. Once it is
// done, the checkpoint goes: a later run starts over, and finds every user.
// After an error (ctx's included) the checkpoint stays, and a run with the
// same Config continues after the last batch committed.
func (imp *Import) Run(ctx context.Context) error {
	p := newProgress(imp.cfg.Progress, imp.total, imp.resumedAt)
	err := imp.run(ctx, p.add)
	p.finish()
	if err == nil {
		_, err = imp.out.sync() // the header, when there were no rows
	}
	if err == nil {
		err = os.Remove(imp.statePath)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	}
	return err
}

// Summary is what the import has done so far.
func (imp *Import) Summary() Summary {
	st := imp.state
	return Summary{Rows: st.Rows, ResumedAt: imp.resumedAt, Created: st.Created, Existing: st.Existing, Invalid: st.Invalid, Examples: st.Examples}
}

// resume skips the input rows the checkpoint says are done and cuts the
// credentials file back to their rows. Rows written after the checkpoint
// are written again: their users now exist, so they say
// previously_registered true, with the same credentials.
func (imp *Import) resume(st importState) error {
	for n := int64(0); n < st.Rows; n++ {
		if _, err := imp.rows.next(); err == io.EOF {
			return fmt.Errorf("the input has %d rows, but the interrupted import had done %d: is it the same file?", n, st.Rows)
		} else if err != nil {
			return err
		}
	}
	if got := imp.rows.offset(); got != st.Offset {
		return fmt.Errorf("the input differs from the interrupted import's (its first %d rows end at byte %d, not %d)", st.Rows, got, st.Offset)
	}
	info, err := imp.out.f.Stat()
	if err != nil {
		return err
	}
	if info.Size() < st.Output {
		return fmt.Errorf("the credentials file is shorter (%d bytes) than at the checkpoint (%d)", info.Size(), st.Output)
	}
	imp.state = st
	return imp.out.truncate(st.Output)
}

// run imports the rest of the input, Batch rows per transaction, and
// checkpoints after each: the credentials rows durable first, then the state.
func (imp *Import) run(ctx context.Context, progress func(rows int64)) error {
	batch := imp.cfg.Batch
	rows := make([]inputRow, 0, batch)
	specs := make([]imbee.UserSpec, 0, batch)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		rows, specs = rows[:0], specs[:0]
		var err error
		for len(rows) < batch {
			var r inputRow
			if r, err = imp.rows.next(); err != nil {
				break
			}
			rows = append(rows, r)
			if r.bad == "" {
				specs = append(specs, r.spec)
			}
		}
		if err != nil && err != io.EOF {
			return err
		}
		if len(rows) > 0 {
			if cerr := imp.commit(ctx, rows, specs); cerr != nil {
				return cerr
			}
			progress(int64(len(rows)))
		}
		if err == io.EOF {
			return nil
		}
	}
}

func (imp *Import) commit(ctx context.Context, rows []inputRow, specs []imbee.UserSpec) error {
	regs, err := imp.cfg.Store.RegisterUsers(ctx, imp.cfg.Corporate, specs)
	if err != nil {
		return err
	}
	st := imp.state
	k := 0
	for _, r := range rows {
		if r.bad != "" {
			st.Invalid++
			if len(st.Examples) < maxInvalidShown {
				st.Examples = append(st.Examples, InvalidRow{Line: r.line, Reason: r.bad})
			}
			continue
		}
		reg := regs[k]
		k++
		if reg.Existed {
			st.Existing++
		} else {
			st.Created++
		}
		err := imp.out.csv.Write([]string{reg.User.UniqueID, reg.User.IDSha, reg.User.Pass, reg.User.APIKey, strconv.FormatBool(reg.Existed)})
		if err != nil {
			return err
		}
	}
	if st.Output, err = imp.out.sync(); err != nil {
		return err
	}
	st.Rows += int64(len(rows))
	st.Offset = imp.rows.offset()
	if err := saveState(imp.statePath, st); err != nil {
		return err
	}
	imp.state = st
	return nil
}

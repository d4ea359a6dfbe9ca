package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/api"
	"github.com/imbee/imbee/internal/store"
)

// importColumns are the fields of a user in an import file: CSV columns or
// JSONL keys, named as /third_parties/user/new's parameters.
var importColumns = []string{"uniqueIdSha", "platform", "deviceName", "hardwareId", "osVersion"}

// credentialsHeader is the header row of the credentials file.
var credentialsHeader = []string{"uniqueIdSha", "virtualUser", "pass", "apikey", "previously_registered"}

const (
	maxImportBatch   = 10000
	maxInvalidShown  = 10      // invalid rows the summary lists
	maxJSONLine      = 1 << 20 // longer JSONL lines are invalid rows
	progressEvery    = 5 * time.Second
	progressEveryRow = 100000
)

func (c *cli) usersImport(ctx context.Context, args []string) error {
	summary := `Create (or find) the users listed in FILE in a corporate, each as /third_parties/user/new
would, and write their credentials to a CSV file readable by its owner only. FILE ("-": stdin)
is CSV with a header row naming its columns among ` + strings.Join(importColumns, ", ") + `
(uniqueIdSha required), or JSON Lines with those keys. Invalid rows are reported and skipped.
An interrupted import continues where it stopped when run again with the same arguments;
a finished one run again creates nothing and writes the same credentials.`
	fs := c.flagSet("users import", summary)
	sf := c.addStoreFlags(fs)
	corp := fs.Int64("corporate", 0, "the corporate's id (required)")
	format := fs.String("format", "auto", `FILE's format: csv, jsonl, or auto (JSONL when it starts with "{")`)
	outPath := fs.String("out", "", `the credentials file (default: FILE + ".credentials.csv"; required with stdin)`)
	batch := fs.Int("batch", 1000, fmt.Sprintf("input rows per transaction (and per checkpoint), 1 to %d", maxImportBatch))
	fs.Usage = func() {
		fmt.Fprintf(c.stderr, "Usage: imbee users import --corporate ID [flags] FILE\n\n%s\n\nFlags (each also read from IMBEE_<NAME>, then from the --config file):\n", summary)
		fs.PrintDefaults()
	}
	file, err := c.parseWithFile(fs, args)
	if err != nil {
		return err
	}
	switch {
	case *corp <= 0:
		return errors.New("--corporate is required")
	case *batch < 1 || *batch > maxImportBatch:
		return fmt.Errorf("--batch must be from 1 to %d", maxImportBatch)
	case !slices.Contains([]string{"auto", "csv", "jsonl"}, *format):
		return errors.New("--format must be auto, csv or jsonl")
	case *outPath == "" && file == "-":
		return errors.New("--out is required when reading stdin")
	case *outPath == "":
		*outPath = file + ".credentials.csv"
	}

	start := time.Now()
	s, err := sf.open(ctx, store.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	corps, err := s.ListCorporates(ctx)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(corps, func(co imbee.Corporate) bool { return co.ID == *corp }) {
		return fmt.Errorf("there is no corporate %d (imbee corporate list)", *corp)
	}
	if err := s.GrowWriteCache(ctx, 64); err != nil {
		return err
	}
	in, total, err := openImportInput(file)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := openCredentials(*outPath, in)
	if err != nil {
		return err
	}
	defer out.f.Close()
	statePath := *outPath + ".state"
	prev, err := loadImportState(statePath)
	if err != nil {
		return err
	}

	br := bufio.NewReaderSize(in, maxJSONLine)
	if *format == "auto" {
		*format = sniffFormat(br)
	}
	rows, err := newRowReader(*format, br)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if *format == "csv" && total > 0 {
		total-- // the header
	}
	imp := &importer{store: s, corporate: *corp, rows: rows, out: out, statePath: statePath,
		state: importState{Corporate: *corp, Format: *format}}
	if prev != nil {
		if prev.Corporate != *corp || prev.Format != *format {
			return fmt.Errorf("%s is the checkpoint of an import into corporate %d (%s): resume it with the same arguments, or remove the file to start over",
				statePath, prev.Corporate, prev.Format)
		}
		if err := imp.resume(*prev); err != nil {
			return fmt.Errorf("%s: %w (remove %s to start over)", file, err, statePath)
		}
	} else if err := out.restart(); err != nil {
		return err
	}

	resumedAt := imp.state.Rows
	p := c.newProgress(total, resumedAt)
	err = imp.run(ctx, *batch, p.add)
	p.finish()
	if err == nil {
		_, err = out.sync() // the header, when there were no rows
	}
	if err == nil {
		// Done: a later run starts over, and finds every user.
		err = os.Remove(statePath)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
	}
	c.importSummary(imp.state, resumedAt, *outPath, time.Since(start), err)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted: run the same command again to continue after row %d", imp.state.Rows)
	}
	return err
}

// parseWithFile parses flags around one positional FILE argument, then
// fills the flags not given as parse does.
func (c *cli) parseWithFile(fs *flag.FlagSet, args []string) (string, error) {
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := c.parse(fs, nil); err != nil {
		return "", err
	}
	if len(files) != 1 {
		fs.Usage()
		return "", errors.New("give one FILE to import")
	}
	return files[0], nil
}

// openImportInput opens FILE ("-": stdin) and counts its lines when it is
// a regular file (for the progress; 0 when unknown).
func openImportInput(file string) (io.ReadCloser, int64, error) {
	if file == "-" {
		return io.NopCloser(os.Stdin), 0, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, 0, err
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return f, 0, err
	}
	lines, last := int64(0), byte('\n')
	buf := make([]byte, 1<<20)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
			last = buf[n-1]
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, 0, err
		}
	}
	if last != '\n' {
		lines++
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, lines, nil
}

// sniffFormat is JSONL when the input's first non-blank character is "{".
func sniffFormat(br *bufio.Reader) string {
	head, _ := br.Peek(4096)
	head = bytes.TrimLeft(bytes.TrimPrefix(head, []byte("\ufeff")), " \t\r\n")
	if len(head) > 0 && head[0] == '{' {
		return "jsonl"
	}
	return "csv"
}

// inputRow is one row of the input: a user, or why it is not one.
type inputRow struct {
	line int64 // where the row starts in the input, from 1
	spec imbee.UserSpec
	bad  string
}

// rowReader reads an import file's rows. next returns io.EOF after the
// last; other errors end the import. offset is the input bytes consumed
// through the last row returned.
type rowReader interface {
	next() (inputRow, error)
	offset() int64
}

func newRowReader(format string, br *bufio.Reader) (rowReader, error) {
	if format == "jsonl" {
		return &jsonlRows{r: br}, nil
	}
	return newCSVRows(br)
}

// userRow validates a row's fields as /third_parties/user/new does.
func userRow(line int64, uniqueID string, dev imbee.Device) inputRow {
	spec, err := api.NewUserSpec(uniqueID, dev)
	var e *imbee.Error
	if errors.As(err, &e) {
		return inputRow{line: line, bad: e.Message}
	}
	return inputRow{line: line, spec: spec}
}

type csvRows struct {
	r     *csv.Reader
	col   [5]int // importColumns' positions in a record; -1: absent
	width int    // fields in the header
	empty bool   // no header either
}

func newCSVRows(in io.Reader) (*csvRows, error) {
	r := csv.NewReader(in)
	r.FieldsPerRecord = -1 // a row of another width is an invalid row, not the end
	r.ReuseRecord = true
	c := &csvRows{r: r, col: [5]int{-1, -1, -1, -1, -1}}
	header, err := r.Read()
	if err == io.EOF {
		c.empty = true
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("the header row: %w", err)
	}
	c.width = len(header)
	var unknown []string
	for i, name := range header {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // spreadsheets' byte order mark
		}
		name = strings.TrimSpace(name)
		k := slices.IndexFunc(importColumns, func(col string) bool { return strings.EqualFold(col, name) })
		switch {
		case k < 0:
			unknown = append(unknown, strconv.Quote(name))
		case c.col[k] >= 0:
			return nil, fmt.Errorf("the header row names %s twice", importColumns[k])
		default:
			c.col[k] = i
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("the header row has unknown columns %s: the columns are %s", strings.Join(unknown, ", "), strings.Join(importColumns, ", "))
	}
	if c.col[0] < 0 {
		return nil, errors.New("the header row has no uniqueIdSha column (a CSV file starts with a header row naming its columns)")
	}
	return c, nil
}

func (c *csvRows) next() (inputRow, error) {
	if c.empty {
		return inputRow{}, io.EOF
	}
	rec, err := c.r.Read()
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return inputRow{line: int64(pe.StartLine), bad: pe.Err.Error()}, nil
	}
	if err != nil {
		return inputRow{}, err
	}
	line, _ := c.r.FieldPos(0)
	if len(rec) != c.width {
		return inputRow{line: int64(line), bad: fmt.Sprintf("the header has %d fields, this row %d", c.width, len(rec))}, nil
	}
	field := func(k int) string {
		if c.col[k] < 0 {
			return ""
		}
		return rec[c.col[k]]
	}
	return userRow(int64(line), field(0), imbee.Device{Platform: field(1), DeviceName: field(2), HardwareID: field(3), OSVersion: field(4)}), nil
}

func (c *csvRows) offset() int64 { return c.r.InputOffset() }

type jsonlRows struct {
	r    *bufio.Reader
	line int64
	off  int64
}

func (j *jsonlRows) next() (inputRow, error) {
	for {
		b, err := j.r.ReadSlice('\n')
		j.off += int64(len(b))
		if len(b) == 0 && err != nil {
			return inputRow{}, err
		}
		j.line++
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) {
				b, err = j.r.ReadSlice('\n')
				j.off += int64(len(b))
			}
			if err != nil && err != io.EOF {
				return inputRow{}, err
			}
			return inputRow{line: j.line, bad: fmt.Sprintf("longer than %d bytes", maxJSONLine)}, nil
		}
		if err != nil && err != io.EOF {
			return inputRow{}, err
		}
		if j.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff"))
		}
		if len(bytes.TrimSpace(b)) > 0 {
			return jsonRow(j.line, b), nil
		}
	}
}

func (j *jsonlRows) offset() int64 { return j.off }

// jsonRow reads a JSONL line: one object with importColumns' keys.
func jsonRow(line int64, b []byte) inputRow {
	var rec struct {
		UniqueIDSha string `json:"uniqueIdSha"`
		Platform    string `json:"platform"`
		DeviceName  string `json:"deviceName"`
		HardwareID  string `json:"hardwareId"`
		OSVersion   string `json:"osVersion"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a misspelt key would lose its value silently
	err := dec.Decode(&rec)
	if err == nil {
		if _, end := dec.Token(); end != io.EOF {
			err = errors.New("more than one JSON value on the line")
		}
	}
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return inputRow{line: line, bad: te.Field + " must be a string"}
	case errors.As(err, &te):
		return inputRow{line: line, bad: "not a JSON object"}
	case errors.As(err, &se):
		return inputRow{line: line, bad: "not valid JSON: " + se.Error()}
	case err != nil:
		return inputRow{line: line, bad: strings.TrimPrefix(err.Error(), "json: ")}
	}
	return userRow(line, rec.UniqueIDSha, imbee.Device{Platform: rec.Platform, DeviceName: rec.DeviceName, HardwareID: rec.HardwareID, OSVersion: rec.OSVersion})
}

// credentialsFile is the import's output: CSV, mode 0600.
type credentialsFile struct {
	f    *os.File
	size countingWriter
	csv  *csv.Writer
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// openCredentials opens (or creates) the credentials file. It refuses a
// file that others can read, rather than chmod it: its content may
// already have leaked, and whoever widened it may rely on that.
func openCredentials(path string, in io.Reader) (*credentialsFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file", path)
	}
	if err == nil && info.Mode().Perm()&0o077 != 0 {
		err = fmt.Errorf("%s has mode %04o: credentials must be readable by their owner only; chmod 600 it or remove it", path, info.Mode().Perm())
	}
	if inFile, ok := in.(*os.File); err == nil && ok {
		if inInfo, ierr := inFile.Stat(); ierr == nil && os.SameFile(info, inInfo) {
			err = fmt.Errorf("%s is the input file: choose another --out", path)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	o := &credentialsFile{f: f, size: countingWriter{w: f}}
	o.csv = csv.NewWriter(bufio.NewWriterSize(&o.size, 256<<10))
	return o, nil
}

// restart empties the file and writes the header.
func (o *credentialsFile) restart() error {
	if err := o.truncate(0); err != nil {
		return err
	}
	return o.csv.Write(credentialsHeader)
}

func (o *credentialsFile) truncate(size int64) error {
	if err := o.f.Truncate(size); err != nil {
		return err
	}
	if _, err := o.f.Seek(size, io.SeekStart); err != nil {
		return err
	}
	o.size.n = size
	return nil
}

// sync makes what was written durable, and returns the file's size.
func (o *credentialsFile) sync() (int64, error) {
	o.csv.Flush()
	if err := o.csv.Error(); err != nil {
		return 0, err
	}
	return o.size.n, o.f.Sync()
}

// importState is the checkpoint of an import, kept in OUT.state: the input
// rows done, and the credentials file's size once their rows were durable.
// It is replaced atomically after each batch and removed at the end.
type importState struct {
	Corporate int64        `json:"corporate"`
	Format    string       `json:"format"`
	Rows      int64        `json:"rows"`   // input rows done
	Offset    int64        `json:"offset"` // input bytes they take
	Output    int64        `json:"output"` // credentials file bytes that hold their rows
	Created   int64        `json:"created"`
	Existing  int64        `json:"existing"`
	Invalid   int64        `json:"invalid"`
	Examples  []invalidRow `json:"examples,omitempty"` // the first invalid rows
}

type invalidRow struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

func loadImportState(path string) (*importState, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st importState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s is damaged (%v): remove it to start the import over", path, err)
	}
	return &st, nil
}

// saveImportState replaces the checkpoint: written aside, synced, renamed.
func saveImportState(path string, st importState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

type importer struct {
	store     *store.Store
	corporate int64
	rows      rowReader
	out       *credentialsFile
	statePath string
	state     importState
}

// resume skips the input rows the checkpoint says are done and cuts the
// credentials file back to their rows. Rows written after the checkpoint
// are written again: their users now exist, so they say
// previously_registered true, with the same credentials.
func (imp *importer) resume(st importState) error {
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

// run imports the rest of the input, batch rows per transaction, and
// checkpoints after each: the credentials rows durable first, then the state.
func (imp *importer) run(ctx context.Context, batch int, progress func(rows int64)) error {
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

func (imp *importer) commit(ctx context.Context, rows []inputRow, specs []imbee.UserSpec) error {
	regs, err := imp.store.RegisterUsers(ctx, imp.corporate, specs)
	if err != nil {
		return err
	}
	st := imp.state
	k := 0
	for _, r := range rows {
		if r.bad != "" {
			st.Invalid++
			if len(st.Examples) < maxInvalidShown {
				st.Examples = append(st.Examples, invalidRow{Line: r.line, Reason: r.bad})
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
	if err := saveImportState(imp.statePath, st); err != nil {
		return err
	}
	imp.state = st
	return nil
}

func (c *cli) importSummary(st importState, resumedAt int64, out string, elapsed time.Duration, err error) {
	w := c.stdout
	read := fmt.Sprintf("%d rows", st.Rows)
	if resumedAt > 0 {
		read += fmt.Sprintf(" (resumed after row %d)", resumedAt)
	}
	if err != nil {
		read += ", then stopped: " + err.Error()
	}
	fmt.Fprintf(w, "read:      %s\n", read)
	fmt.Fprintf(w, "created:   %d\n", st.Created)
	fmt.Fprintf(w, "existing:  %d\n", st.Existing)
	fmt.Fprintf(w, "invalid:   %d\n", st.Invalid)
	for _, r := range st.Examples {
		fmt.Fprintf(w, "  line %d: %s\n", r.Line, r.Reason)
	}
	if st.Invalid > int64(len(st.Examples)) {
		fmt.Fprintf(w, "  (and %d more)\n", st.Invalid-int64(len(st.Examples)))
	}
	fmt.Fprintf(w, "output:    %s\n", out)
	fmt.Fprintf(w, "elapsed:   %s\n", elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "rate:      %.0f rows/s\n", float64(st.Rows-resumedAt)/elapsed.Seconds())
}

// progress reports an import's advance on stderr: a bar with rate and ETA
// on a terminal, plain lines (every progressEvery or progressEveryRow rows)
// otherwise, for logs.
type progress interface {
	add(rows int64)
	finish()
}

// newProgress reports on total rows (0: unknown), done of them already.
func (c *cli) newProgress(total, done int64) progress {
	if f, ok := c.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
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
	return &lineProgress{w: c.stderr, total: total, done: done, from: done, start: now, last: now, lastDone: done, now: time.Now}
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

package userimport

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/api"
)

// openInput opens file ("-": stdin) and counts its lines when it is a
// regular file (for the progress; 0 when unknown).
func openInput(file string, stdin io.Reader) (io.ReadCloser, int64, error) {
	if file == "-" {
		return io.NopCloser(stdin), 0, nil
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
	col   [5]int // Columns' positions in a record; -1: absent
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
		k := slices.IndexFunc(Columns, func(col string) bool { return strings.EqualFold(col, name) })
		switch {
		case k < 0:
			unknown = append(unknown, strconv.Quote(name))
		case c.col[k] >= 0:
			return nil, fmt.Errorf("the header row names %s twice", Columns[k])
		default:
			c.col[k] = i
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("the header row has unknown columns %s: the columns are %s", strings.Join(unknown, ", "), strings.Join(Columns, ", "))
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

// jsonRow reads a JSONL line: one object with Columns' keys.
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

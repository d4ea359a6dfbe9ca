package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/imbee/imbee"
	"github.com/imbee/imbee/internal/store"
	"github.com/imbee/imbee/internal/userimport"
)

func (c *cli) usersImport(ctx context.Context, args []string) error {
	summary := `Create (or find) the users listed in FILE in a corporate, each as /third_parties/user/new
would, and write their credentials to a CSV file readable by its owner only. FILE ("-": stdin)
is CSV with a header row naming its columns among ` + strings.Join(userimport.Columns, ", ") + `
(uniqueIdSha required), or JSON Lines with those keys. Invalid rows are reported and skipped.
An interrupted import continues where it stopped when run again with the same arguments;
a finished one run again creates nothing and writes the same credentials.`
	fs := c.flagSet("users import", summary)
	sf := c.addStoreFlags(fs)
	corp := fs.Int64("corporate", 0, "the corporate's id (required)")
	format := fs.String("format", "auto", `FILE's format: csv, jsonl, or auto (JSONL when it starts with "{")`)
	outPath := fs.String("out", "", `the credentials file (default: FILE + ".credentials.csv"; required with stdin)`)
	batch := fs.Int("batch", 1000, fmt.Sprintf("input rows per transaction (and per checkpoint), 1 to %d", userimport.MaxBatch))
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
	case *batch < 1 || *batch > userimport.MaxBatch:
		return fmt.Errorf("--batch must be from 1 to %d", userimport.MaxBatch)
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
	imp, err := userimport.Open(userimport.Config{Store: commandWrites(s), Corporate: *corp, File: file, Stdin: os.Stdin,
		Format: *format, Out: *outPath, Batch: *batch, Progress: c.stderr})
	if err != nil {
		return err
	}
	defer imp.Close()
	err = imp.Run(ctx)
	sum := imp.Summary()
	c.importSummary(sum, *outPath, time.Since(start), err)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("interrupted: run the same command again to continue after row %d", sum.Rows)
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

func (c *cli) importSummary(st userimport.Summary, out string, elapsed time.Duration, err error) {
	w := c.stdout
	read := fmt.Sprintf("%d rows", st.Rows)
	if st.ResumedAt > 0 {
		read += fmt.Sprintf(" (resumed after row %d)", st.ResumedAt)
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
	fmt.Fprintf(w, "rate:      %.0f rows/s\n", float64(st.Rows-st.ResumedAt)/elapsed.Seconds())
}

package userimport

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"os"
)

// credentialsHeader is the header row of the credentials file.
var credentialsHeader = []string{"uniqueIdSha", "virtualUser", "pass", "apikey", "previously_registered"}

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

package userimport

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

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
	Examples  []InvalidRow `json:"examples,omitempty"` // the first invalid rows
}

func loadState(path string) (*importState, error) {
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

// saveState replaces the checkpoint: written aside, synced, renamed.
func saveState(path string, st importState) error {
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

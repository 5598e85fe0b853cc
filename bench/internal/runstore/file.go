package runstore

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/batchlab/batchlab/engine/atomicfile"
)

// Load reads the result saved at path and refuses a file that is not one of
// this run: anything that parses (null, another run's result copied under
// this name, a file of an older layout) would otherwise be counted. check is
// the store's own test of a result (its schema, identity and settings).
func Load[R any](path string, check func(R) error) (R, error) {
	var r R
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("unreadable result: %w", err)
	}
	if err := check(r); err != nil {
		return r, fmt.Errorf("not a result of this run: %w", err)
	}
	return r, nil
}

// Save writes v at path as marshal encodes it, atomically: a crash leaves
// the old file or the new one, never part of one.
func Save(path string, v any, marshal func(any) ([]byte, error)) error {
	b, err := marshal(v)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, b)
}

// Indented is encoding/json's indented form ending in a newline, the layout
// of a run directory's JSON files.
func Indented(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}

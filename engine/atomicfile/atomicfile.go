// Package atomicfile replaces files so that readers and crashes only ever
// see the old file or the new one, complete: MNIST's files, checkpoints,
// the study's runs and report and every plot go through it.
//
// It lives in engine/ rather than an internal/ folder because both engine
// (data, checkpoint) and bench (study, advise, the plots) write through it,
// and Go's internal rule would hide engine/internal from bench.
//
// github.com/google/renameio/v2 does the temporary file (O_EXCL, a random
// name, in the target's directory), its fsync, the rename and the cleanup on
// failure; it deliberately stops at atomicity, so the fsync of the directory
// that makes the rename itself survive a power loss is added here.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// bufSize is the buffer between write and the file.
const bufSize = 64 << 10

// Write replaces the file at path with what write writes (through a
// buffer). If anything before the rename fails (write's error, a full disk,
// even a panic in write) the temporary file is removed and path is
// untouched. Errors name path.
//
// A new file gets mode 0666 less the umask, as with os.WriteFile. A process
// killed mid-write leaves a hidden ".NAME…" temporary file beside path,
// which is safe to delete.
func Write(path string, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	// WithTempDir: the temporary file goes beside path, never to $TMPDIR,
	// which may be another file system that a rename cannot cross.
	f, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithPermissions(0o666))
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer f.Cleanup() // a no-op once replaced
	bw := bufio.NewWriterSize(f, bufSize)
	if err := write(bw); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("%s is written, but it may not survive a power loss: %w", path, err)
	}
	return nil
}

// WriteFile replaces the file at path with data, as Write does.
func WriteFile(path string, data []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// RemoveStale removes the temporary files that writes of path left behind
// when their process was killed mid-write (renameio names them "." + the
// base name + a random number, beside path) and returns their names. Call
// it only while no other process writes path (checkpoint.Lock).
func RemoveStale(path string) ([]string, error) {
	dir, prefix := filepath.Dir(path), "."+filepath.Base(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || rest == "" || strings.Trim(rest, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil {
			return removed, err
		}
		removed = append(removed, p)
	}
	return removed, nil
}

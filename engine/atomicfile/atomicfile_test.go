package atomicfile

import (
	"github.com/batchlab/batchlab/engine/internal/testutil"

	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fullDisk accepts left bytes, then fails as a full disk does.
type fullDisk struct {
	w    io.Writer
	left int
}

func (d *fullDisk) Write(p []byte) (int, error) {
	n := min(len(p), d.left)
	n, err := d.w.Write(p[:n])
	d.left -= n
	if err == nil && n < len(p) {
		err = syscall.ENOSPC
	}
	return n, err
}

func TestWriteReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	for _, data := range []string{"first", "second, longer"} {
		if err := WriteFile(path, []byte(data)); err != nil {
			t.Fatal(err)
		}
		testutil.OnlyFile(t, path, []byte(data))
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o644 != 0o644 {
		t.Errorf("mode %v, %v: want at least rw-r--r-- (0666 less a usual umask)", fi.Mode(), err)
	}
}

// Filling the disk at every byte of the new file must leave the previous
// one whole and no temporary file behind.
func TestFullDiskKeepsPrevious(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt")
	old := []byte("the previous contents")
	if err := WriteFile(path, old); err != nil {
		t.Fatal(err)
	}
	next := bytes.Repeat([]byte("next "), 30)
	for left := range len(next) {
		err := Write(path, func(w io.Writer) error {
			_, err := (&fullDisk{w: w, left: left}).Write(next)
			return err
		})
		if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), path) {
			t.Fatalf("disk full after %d of %d bytes: got %v, want ENOSPC naming %s", left, len(next), err, path)
		}
		testutil.OnlyFile(t, path, old)
	}
}

func TestFailedWriteCleansUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.json")
	if err := WriteFile(path, []byte("old")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(path, func(w io.Writer) error {
		io.WriteString(w, strings.Repeat("new", bufSize)) // more than the buffer: reaches the file
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	testutil.OnlyFile(t, path, []byte("old"))

	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		Write(path, func(w io.Writer) error {
			io.WriteString(w, strings.Repeat("new", bufSize))
			panic("write panicked")
		})
	}()
	testutil.OnlyFile(t, path, []byte("old"))
}

func TestMissingDirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "f")
	if err := WriteFile(missing, []byte("x")); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("write into a missing directory: got %v, want an error naming %s", err, missing)
	}
}

// A path without a directory writes into the working directory (whose
// fsync is of ".").
func TestRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := WriteFile("plain", []byte("x")); err != nil {
		t.Fatal(err)
	}
	testutil.OnlyFile(t, "plain", []byte("x"))
}

package checkpoint

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Save writes c to path atomically (see WriteFileAtomic): path holds either
// the previous checkpoint or the new one, whole, whatever happens.
//
// No copy of the previous checkpoint is kept (no path.prev): the rename
// already guarantees that a failed save leaves it in place, and a second
// copy would double the disk space needed on the disk most likely to be
// full. A caller that wants history saves under different names.
func Save(path string, c *Checkpoint) error {
	return WriteFileAtomic(path, func(w io.Writer) error { return Write(w, c) })
}

// Load reads the checkpoint at path; its errors name the file, and a
// missing file gives an error wrapping fs.ErrNotExist.
func Load(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WriteFileAtomic replaces the file at path with what write writes (through
// a buffer), so that readers and crashes only ever see the old file or the
// new one, complete: it writes a temporary file in the same directory
// (a rename cannot cross file systems), fsyncs and closes it, renames it
// over path, and fsyncs the directory so the rename itself is durable. If
// anything before the rename fails (write's error, a full disk, even a
// panic) the temporary file is removed and path is untouched.
//
// A new file gets mode 0666 less the umask, as with os.WriteFile. A process
// killed mid-write leaves a hidden ".NAME.*.tmp" beside path, which is
// safe to delete.
func WriteFileAtomic(path string, write func(io.Writer) error) error {
	dir, base := filepath.Split(path)
	// O_EXCL and a random name: a clash with another writer is an error,
	// never two writers sharing one file.
	tmp := filepath.Join(dir, fmt.Sprintf(".%s.%016x.tmp", base, rand.Uint64()))
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			f.Close()
			os.Remove(tmp)
		}
	}()

	bw := bufio.NewWriterSize(f, chunk)
	if err := write(bw); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	for _, step := range []func() error{bw.Flush, f.Sync, f.Close} {
		if err := step(); err != nil {
			return fmt.Errorf("writing %s: %w", path, err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	renamed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("%s is written, but it may not survive a power loss: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	if dir == "" {
		dir = "."
	}
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

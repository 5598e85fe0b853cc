package checkpoint

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/batchlab/batchlab/engine/atomicfile"
)

// Lock is a run's exclusive hold on a checkpoint path, so that two runs
// never write the same checkpoint, the last writer silently winning. It is
// an flock(2) on PATH.lock, which holds the owner's PID for the message of
// whoever is refused; the kernel releases it when the process dies.
type Lock struct {
	f    *os.File
	path string
	// Stale lists the temporary files of earlier, killed writes of the
	// checkpoint that TakeLock removed.
	Stale []string
}

// TakeLock takes the lock of the checkpoint at path, or says which process
// holds it, and then removes the temporary files killed writes of path left.
// A path that cannot hold a checkpoint (empty, a directory, in a directory
// that cannot be written) is refused here, before a run starts.
func TakeLock(path string) (*Lock, error) {
	if path == "" {
		return nil, errors.New("the checkpoint path is empty")
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("checkpoint %s is a directory or another non-file", path)
	}
	lockPath := path + ".lock"
	for {
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s cannot be written: %w", path, err)
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			pid, _ := os.ReadFile(lockPath)
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("checkpoint %s is in use by another run (process %s, see %s)", path, strings.TrimSpace(string(pid)), lockPath)
			}
			return nil, fmt.Errorf("locking checkpoint %s: %w", path, err)
		}
		// The previous owner removes the file as it unlocks: a lock taken on
		// the removed file locks nothing, so take it again on the new one.
		if same, err := sameFile(f, lockPath); err != nil || !same {
			f.Close()
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			continue
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return nil, fmt.Errorf("checkpoint %s cannot be written: %w", path, err)
		}
		if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("checkpoint %s cannot be written: %w", path, err)
		}
		l := &Lock{f: f, path: lockPath}
		if l.Stale, err = atomicfile.RemoveStale(path); err != nil {
			l.Release()
			return nil, fmt.Errorf("removing stale temporary files of checkpoint %s: %w", path, err)
		}
		return l, nil
	}
}

func sameFile(f *os.File, path string) (bool, error) {
	a, err := f.Stat()
	if err != nil {
		return false, err
	}
	b, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(a, b), nil
}

// Release removes the lock file and lets the lock go.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}

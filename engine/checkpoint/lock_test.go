package checkpoint

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestLock is issue 12's cases 6 to 8 below the CLI: one holder at a time,
// named by PID to whoever is refused; stale temporary files of the
// checkpoint (and only those) removed; paths that cannot hold a checkpoint
// refused at once.
func TestLock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "run.ckpt")
	stale := []string{filepath.Join(dir, ".run.ckpt5577006791947779410"), filepath.Join(dir, ".run.ckpt42")}
	keep := []string{filepath.Join(dir, ".run.ckpt.notours"), filepath.Join(dir, ".other.ckpt123"), filepath.Join(dir, "run.ckpt7")}
	for _, p := range append(slices.Clone(stale), keep...) {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l, err := TakeLock(path)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(stale)
	slices.Sort(l.Stale)
	if !slices.Equal(l.Stale, stale) {
		t.Errorf("removed %v, want %v", l.Stale, stale)
	}
	for _, p := range keep {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s, not a temporary file of run.ckpt: %v", p, err)
		}
	}
	_, err = TakeLock(path)
	if err == nil || !strings.Contains(err.Error(), "in use by another run (process "+strconv.Itoa(os.Getpid())+",") {
		t.Errorf("a second lock: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := TakeLock(path)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
	for _, bad := range []struct{ path, want string }{
		{"", "empty"},
		{dir, "is a directory"},
		{filepath.Join(dir, "missing", "run.ckpt"), "cannot be written"},
	} {
		if _, err := TakeLock(bad.path); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.path, err, bad.want)
		}
	}
}

package checkpoint

import (
	"github.com/batchlab/batchlab/engine/internal/testutil"

	"errors"
	"math/rand/v2"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSaveOnFullTmpfs fills a real (tiny) file system, where the kernel, not
// a test writer, says the disk is full. Mounting needs root (or
// CAP_SYS_ADMIN); elsewhere TestFullDiskKeepsPrevious covers the same path.
func TestSaveOnFullTmpfs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v); TestFullDiskKeepsPrevious simulates the full disk instead", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Error(err)
		}
	})
	path := filepath.Join(dir, "run.ckpt")
	small := sample()
	if err := Save(path, small); err != nil {
		t.Fatal(err)
	}
	big := &Checkpoint{Tensors: []Tensor{{Name: "w", Shape: []int{256, 256}, Data: make([]float32, 256*256)}}}
	for i := range big.Tensors[0].Data {
		big.Tensors[0].Data[i] = rand.Float32()
	}
	err := Save(path, big)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("saving 256 KiB on a 64 KiB tmpfs: got %v, want ENOSPC", err)
	}
	t.Logf("as expected: %v", err)
	testutil.OnlyFile(t, path, encode(t, small))
	// The space of the failed attempt is free again: a small save succeeds.
	small.Meta = []byte(`{"after":"full"}`)
	if err := Save(path, small); err != nil {
		t.Fatal(err)
	}
	testutil.OnlyFile(t, path, encode(t, small))
}

package checkpoint

import (
	"github.com/batchlab/batchlab/engine/internal/testutil"

	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSaveLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run.ckpt")
	first := sample()
	if err := Save(path, first); err != nil {
		t.Fatal(err)
	}
	second := sample()
	second.Meta = []byte(`{"epoch":3}`)
	second.Tensors[0].Data[0] = 42
	if err := Save(path, second); err != nil {
		t.Fatal(err)
	}
	testutil.OnlyFile(t, path, encode(t, second))
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Meta) != `{"epoch":3}` {
		t.Errorf("meta %s", got.Meta)
	}
	sameTensors(t, got.Tensors, second.Tensors)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o600 != 0o600 {
		t.Errorf("mode %v, %v: want at least rw for the owner", fi.Mode(), err)
	}
}

func TestSaveErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no", "such", "dir", "run.ckpt")
	if err := Save(missing, sample()); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("save into a missing directory: got %v", err)
	}
	// A checkpoint write refuses never touches the file.
	path := filepath.Join(dir, "run.ckpt")
	if err := Save(path, sample()); err != nil {
		t.Fatal(err)
	}
	bad := &Checkpoint{Tensors: []Tensor{{Name: "w", Shape: []int{2}, Data: []float32{1}}}}
	if err := Save(path, bad); err == nil || !strings.Contains(err.Error(), "tensor w has shape [2] but 1 values") {
		t.Errorf("save of a bad checkpoint: got %v", err)
	}
	testutil.OnlyFile(t, path, encode(t, sample()))
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.ckpt")
	if _, err := Load(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: got %v", err)
	}
	b := encode(t, sample())
	cut := filepath.Join(dir, "cut.ckpt")
	if err := os.WriteFile(cut, b[:len(b)-1], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(cut)
	if !errors.Is(err, errCorrupt) || !strings.HasPrefix(err.Error(), cut+": corrupt checkpoint: truncated") {
		t.Errorf("truncated file: got %v", err)
	}
	flipped := filepath.Join(dir, "flipped.ckpt")
	b = slices.Clone(b)
	b[len(b)/2] ^= 4
	if err := os.WriteFile(flipped, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(flipped); !errors.Is(err, errCorrupt) || !strings.HasPrefix(err.Error(), flipped+": corrupt checkpoint: ") {
		t.Errorf("damaged file: got %v", err)
	}
}

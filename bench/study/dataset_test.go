package study

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine/data"
)

// TestCheckDataset: a study directory keeps to the dataset it began on.
func TestCheckDataset(t *testing.T) {
	dir := t.TempDir()
	if err := checkDataset(dir, data.FashionMNIST); err != nil {
		t.Fatal(err)
	}
	if err := checkDataset(dir, data.FashionMNIST); err != nil {
		t.Errorf("same dataset again: %v", err)
	}
	if err := checkDataset(dir, data.MNIST); err == nil || !strings.Contains(err.Error(), "holds a study on fashion-mnist, not mnist") {
		t.Errorf("other dataset: %v", err)
	}
	// A study from before the record, with runs, was on MNIST.
	old := t.TempDir()
	if err := os.MkdirAll(filepath.Join(old, "runs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "runs", "a.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := checkDataset(old, data.FashionMNIST); err == nil || !strings.Contains(err.Error(), "holds a study on mnist, not fashion-mnist") {
		t.Errorf("old study, other dataset: %v", err)
	}
	if err := checkDataset(old, data.MNIST); err != nil {
		t.Errorf("old study, MNIST: %v", err)
	}
}

package runplot

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/runlog"
)

// TestPlot draws two runs, one of which diverged in its last epoch (a NaN
// that gonum/plot would panic on), and finds both plots in both formats.
func TestPlot(t *testing.T) {
	runs := []*runlog.Run{
		{Epochs: []engine.EpochStats{{Epoch: 1, TestAccuracy: 0.8, TestLoss: 0.6}, {Epoch: 2, TestAccuracy: 0.9, TestLoss: 0.4}}},
		{Epochs: []engine.EpochStats{{Epoch: 1, TestAccuracy: 0.7, TestLoss: 0.9}, {Epoch: 2, TestAccuracy: 0.1, TestLoss: math.NaN()}}},
	}
	dir := t.TempDir()
	files, err := Plot(runs, []string{"b64", "b4096"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4 {
		t.Fatalf("wrote %v, want compare-accuracy and compare-loss as .svg and .png", files)
	}
	for _, name := range []string{"compare-accuracy.svg", "compare-accuracy.png", "compare-loss.svg", "compare-loss.png"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Plot(runs, []string{"one label"}, dir); err == nil {
		t.Error("two runs with one label were drawn")
	}
}

package epoch

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// TestEpochs: on the MNIST subset, larger batches make fewer updates and
// fewer copies, move the same bytes, and the split adds up.
func TestEpochs(t *testing.T) {
	train, test, err := data.LoadMNIST("../../testdata/mnist-subset")
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.DefaultConfig()
	cfg.Hidden = []int{32}
	r, err := Measure(context.Background(), Config{
		Device: device.NewCPU(), Train: train.Subset(1000), Test: test.Subset(200), Base: cfg, Batches: []int{10, 100, 1000},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Points) != 3 {
		t.Fatalf("%d points", len(r.Points))
	}
	for i, e := range r.Points {
		if want := 1000 / e.Batch; e.Updates != want || e.H2DCopies != int64(2*want) {
			t.Errorf("batch %d: %d updates, %d copies; want %d, %d", e.Batch, e.Updates, e.H2DCopies, want, 2*want)
		}
		if e.H2DBytes != r.Points[0].H2DBytes {
			t.Errorf("batch %d moved %d bytes, batch %d %d", e.Batch, e.H2DBytes, r.Points[0].Batch, r.Points[0].H2DBytes)
		}
		if sum := e.TransferSeconds + e.ComputeSeconds + e.UpdateSeconds + e.OtherSeconds; e.TransferSeconds <= 0 || e.ComputeSeconds <= 0 || sum-e.Seconds > 1e-9 || e.Seconds-sum > 1e-9 {
			t.Errorf("batch %d: split %+v", e.Batch, e)
		}
		if i > 0 && e.Updates >= r.Points[i-1].Updates {
			t.Errorf("updates did not fall: %d then %d", r.Points[i-1].Updates, e.Updates)
		}
	}
	var table strings.Builder
	if err := r.WriteTable(&table); err != nil || !strings.Contains(table.String(), "transfer s") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
	files, err := r.Plot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 {
		t.Errorf("files %v, want the plot as SVG and PNG", files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err != nil || st.Size() < 1000 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

package epoch

import (
	"context"
	"os"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"

	"github.com/batchlab/batchlab/bench/internal/plotkit"
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
		Device: device.NewCPU(), Train: train.Subset(1000), Test: test.Subset(200), Base: cfg, Batches: []int{10, 100, 1000}, Repeats: 3,
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
		if len(e.SecondsRuns) != 3 || e.SecondsMin > e.Seconds || e.Seconds > e.SecondsMax || e.SamplesPerSecMin > e.SamplesPerSec || e.SamplesPerSec > e.SamplesPerSecMax {
			t.Errorf("batch %d: %g s [%g–%g] of %v, %g samples/s [%g–%g]", e.Batch, e.Seconds, e.SecondsMin, e.SecondsMax, e.SecondsRuns, e.SamplesPerSec, e.SamplesPerSecMin, e.SamplesPerSecMax)
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

// TestWarnings: synthetic repeats. Epochs far apart and tight warn of
// nothing; a busy repeat (50% slower) and neighbours whose ranges overlap
// are named.
func TestWarnings(t *testing.T) {
	run := func(secs ...float64) []engine.EpochStats {
		var rs []engine.EpochStats
		for _, s := range secs {
			rs = append(rs, engine.EpochStats{Samples: 1000, Seconds: s, SamplesPerSec: 1000 / s})
		}
		return rs
	}
	r := &Report{Repeats: 3, Points: []Point{pointOf(16, run(4, 4.1, 3.9)), pointOf(64, run(2, 2.05, 1.95))}}
	if r.warn(); len(r.Warnings) != 0 {
		t.Errorf("quiet: %q", r.Warnings)
	}
	if p := r.Points[0]; p.Seconds != 4 || p.SecondsMin != 3.9 || p.SecondsMax != 4.1 || p.SamplesPerSecMax != 1000/3.9 {
		t.Errorf("point %+v", p)
	}
	r = &Report{Repeats: 3, Points: []Point{pointOf(16, run(4, 4.1, 6)), pointOf(64, run(3.5, 4.2, 3.6))}}
	r.warn()
	all := strings.Join(r.Warnings, "\n")
	if !strings.Contains(all, "B=16: the epoch took 4.00–6.00 s") || !strings.Contains(all, "B=16 and B=64: their epoch times overlap") {
		t.Errorf("noisy, warnings:\n%s", all)
	}
}

// TestBarWidths: bars fill 60% of their slot of the data area, whatever
// their number, and the x axis leaves half a slot at each end, so that no
// bar is clipped (a fixed 40-point bar was skinny with few bars and, at
// the axis ends, cut in half).
func TestBarWidths(t *testing.T) {
	for _, n := range []int{1, 3, 5, 9, 14} {
		p := plotkit.New("", "x", "y")
		p.Legend.Add("other (host, sync)")
		w := plotkit.Bars(p, n)
		slot := (16*vg.Centimeter - vg.Points(60)) / vg.Length(n) // the plot, less axis and legend: at most this
		if p.X.Min != -0.5 || p.X.Max != float64(n)-0.5 || w > 0.6*slot || w < 0.3*slot {
			t.Errorf("%d bars: width %v of a slot of at most %v; x axis %g to %g", n, w, slot, p.X.Min, p.X.Max)
		}
	}
}

package advise

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

func options(t *testing.T, limit int64) Options {
	t.Helper()
	train, test, err := data.LoadMNIST("../../testdata/mnist-subset")
	if err != nil {
		t.Fatal(err)
	}
	base := engine.DefaultConfig()
	base.Hidden, base.Batch, base.EvalBatch = []int{32}, 32, 200
	return Options{
		Base: base, Rule: engine.ScaleSqrt, MemoryLimit: limit,
		Open:  func() (device.Device, error) { return device.NewCPU(), nil },
		Train: train.Subset(2000), Test: test.Subset(200),
		MinBatch: 16, MaxBatch: 256, NoiseSteps: 20, NoiseBig: 256, NoisePairs: 3,
	}
}

// TestMaxBatchUnderLimit: under an artificial memory budget the search
// returns a batch that fits while one more sample does not.
func TestMaxBatchUnderLimit(t *testing.T) {
	for _, limit := range []int64{2 << 20, 5 << 20} {
		o := options(t, limit)
		b, err := largestBatch(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := fits(context.Background(), o, b, true)
		if err != nil || !ok {
			t.Fatalf("limit %d: batch %d was found but does not fit (%v)", limit, b, err)
		}
		if more, _ := fits(context.Background(), o, b+1, false); more {
			t.Errorf("limit %d: batch %d found, but %d fits too", limit, b, b+1)
		}
		t.Logf("limit %d MiB: largest batch %d", limit>>20, b)
	}
	o := options(t, 0) // no limit on the CPU: the whole training set fits
	if b, err := largestBatch(context.Background(), o); err != nil || b != o.Train.Len() {
		t.Errorf("without a limit: %d, %v; want %d", b, err, o.Train.Len())
	}
	if _, err := largestBatch(context.Background(), options(t, 1000)); err == nil || !strings.Contains(err.Error(), "not even a batch of 1") {
		t.Errorf("a budget too small for the model: %v", err)
	}
}

// TestTimingFitsWhereTheSearchDid: the throughput phase builds its trainers
// as the search does (evaluation capped at the batch), so a --memory budget
// that the full evaluation batch would exceed does not fail the timing of a
// batch the search found (it did, refused by the memory plan).
func TestTimingFitsWhereTheSearchDid(t *testing.T) {
	const limit = 8 << 20
	o := options(t, limit)
	train, test, err := data.LoadMNIST("../../testdata/mnist-subset")
	if err != nil {
		t.Fatal(err)
	}
	o.Train, o.Test = train.Subset(2000), test
	o.Base.Hidden, o.Base.EvalBatch, o.Base.Memory = []int{256}, test.Len(), limit // as --memory sets it
	if err := engine.CheckMemory(o.Base, engine.ShapeOf(o.Train, o.Test), device.NewCPU()); err == nil {
		t.Fatalf("the full evaluation batch fits in %d bytes: the test needs a budget it exceeds", limit)
	}
	b, err := largestBatch(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := throughput(context.Background(), o, min(b, 64)); err != nil {
		t.Errorf("timing up to batch %d, which the search found: %v", min(b, 64), err)
	}
}

func TestAdvise(t *testing.T) {
	o := options(t, 4<<20)
	a, err := Advise(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", a)
	if a.MaxBatch <= 0 || len(a.Throughput) == 0 || a.Knee == 0 || a.Batch <= 0 || a.Batch > a.MaxBatch || !(a.LR > 0) {
		t.Errorf("incomplete advice: %+v", a)
	}
	if !strings.Contains(a.Reasoning, "sqrt rule") {
		t.Errorf("reasoning does not name the rule: %s", a.Reasoning)
	}
	path := filepath.Join(t.TempDir(), "advise.svg")
	if err := Plot(path, a); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "<svg") {
		t.Errorf("plot: %v", err)
	}
}

func TestKnee(t *testing.T) {
	peak, k := knee([]Point{{16, 100}, {32, 180}, {64, 270}, {128, 300}, {256, 295}})
	if peak.Batch != 128 || k != 64 {
		t.Errorf("peak %v knee %d; want 128 and 64", peak, k)
	}
}

func TestRecommend(t *testing.T) {
	o := options(t, 0)
	a := &Advice{MaxBatch: 1 << 20, Knee: 64, BSimple: 300}
	recommend(a, o)
	if a.Batch != 256 {
		t.Errorf("B_simple 300, knee 64: batch %d, want 256", a.Batch)
	}
	a = &Advice{MaxBatch: 100, Knee: 64, BSimple: 300}
	recommend(a, o)
	if a.Batch != 100 || !strings.Contains(a.Reasoning, "Memory caps it") {
		t.Errorf("memory cap 100: batch %d (%s)", a.Batch, a.Reasoning)
	}
}

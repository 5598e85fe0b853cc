package advise

import (
	"context"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/bench/internal/spread"
	"github.com/batchlab/batchlab/bench/lrfind"
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
		MinBatch: 16, MaxBatch: 256, NoiseSteps: 20, NoiseBig: 256, NoisePairs: 3, Repeats: 3,
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
	if !strings.Contains(a.Reasoning, "sqrt rule") || a.LR != a.RuleLR || a.LRFind != nil {
		t.Errorf("reasoning does not name the rule, or the LR is not the rule's: %s", a.Reasoning)
	}
	if len(a.BSimpleRuns) != 3 || a.BSimpleMin > a.BSimple || a.BSimple > a.BSimpleMax {
		t.Errorf("noise scale %g, repeats %v [%g–%g]", a.BSimple, a.BSimpleRuns, a.BSimpleMin, a.BSimpleMax)
	}
	if len(a.KneeRuns) != 3 || a.KneeMin > a.Knee || a.Knee > a.KneeMax {
		t.Errorf("knee %d, repeats' knees %v [%d–%d]", a.Knee, a.KneeRuns, a.KneeMin, a.KneeMax)
	}
	for _, p := range a.Throughput {
		if len(p.Runs) != 3 || p.SamplesPerSecMin > p.SamplesPerSec || p.SamplesPerSec > p.SamplesPerSecMax {
			t.Errorf("point %+v", p)
		}
	}
	path := filepath.Join(t.TempDir(), "advise.svg")
	if err := Plot(path, a); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !strings.Contains(string(b), "<svg") {
		t.Errorf("plot: %v", err)
	}
}

// points makes throughput points from each batch size's repeats.
func points(runs map[int][]float64) []Point {
	var pts []Point
	for _, b := range slices.Sorted(maps.Keys(runs)) {
		sp := spread.Of(runs[b])
		pts = append(pts, Point{Batch: b, SamplesPerSec: sp.Median, SamplesPerSecMin: sp.Min, SamplesPerSecMax: sp.Max, Runs: runs[b]})
	}
	return pts
}

func TestKnee(t *testing.T) {
	peak, k := knee(points(map[int][]float64{16: {100}, 32: {180}, 64: {270}, 128: {300}, 256: {295}}))
	if peak.Batch != 128 || k != 64 {
		t.Errorf("peak %v knee %d; want 128 and 64", peak, k)
	}
}

// TestKneeOverRepeats: synthetic noisy repeats. Quiet ones (1%) agree on
// the knee and warn of nothing; noisy ones whose own knees differ (the
// issue's two runs, knee 1024 and 4096) give the knee of the medians, the
// range of the repeats' knees and a warning; and a batch below the knee
// whose best repeat reaches the threshold is named.
func TestKneeOverRepeats(t *testing.T) {
	advice := func(runs map[int][]float64) *Advice {
		a := &Advice{Throughput: points(runs)}
		a.Peak, a.Knee = knee(a.Throughput)
		a.KneeRuns, a.KneeMin, a.KneeMax = kneeRuns(a.Throughput)
		a.Warnings = kneeWarnings(a)
		return a
	}
	quiet := advice(map[int][]float64{256: {600, 606, 594}, 512: {800, 808, 792}, 1024: {950, 959, 941}, 2048: {1000, 1010, 990}, 4096: {1000, 990, 1010}})
	if quiet.Knee != 1024 || quiet.KneeMin != 1024 || quiet.KneeMax != 1024 || len(quiet.Warnings) != 0 {
		t.Errorf("quiet: knee %d [%d–%d], warnings %q", quiet.Knee, quiet.KneeMin, quiet.KneeMax, quiet.Warnings)
	}
	noisy := advice(map[int][]float64{256: {600, 600, 600}, 512: {800, 800, 800}, 1024: {950, 700, 930}, 2048: {1000, 800, 990}, 4096: {1000, 1000, 1000}})
	all := strings.Join(noisy.Warnings, "\n")
	if noisy.Knee != 1024 || noisy.KneeMin != 1024 || noisy.KneeMax != 4096 || !strings.Contains(all, "moves between repeats: B=1024 to 4096") {
		t.Errorf("noisy: knee %d [%d–%d] %v, warnings:\n%s", noisy.Knee, noisy.KneeMin, noisy.KneeMax, noisy.KneeRuns, all)
	}
	below := advice(map[int][]float64{512: {800, 905, 810}, 1024: {950, 955, 945}, 2048: {1000, 1000, 1000}})
	if w := strings.Join(below.Warnings, "\n"); below.Knee != 1024 || !strings.Contains(w, "B=512, below the knee, reaches 905") {
		t.Errorf("a neighbour's range reaching the threshold: knee %d, warnings:\n%s", below.Knee, w)
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

// TestNoiseScaleWarnings: repeats whose noise scales round to one power
// of two warn of nothing; a range across a rounding boundary, or a repeat
// that could not be estimated, is named.
func TestNoiseScaleWarnings(t *testing.T) {
	for _, c := range []struct {
		runs []float64
		want string
	}{
		{[]float64{600, 650, 700}, ""},
		{[]float64{300, 330, 400}, "could be B=256 to 512"},
		{[]float64{-20, 300, 310}, "some could not be estimated"},
		{[]float64{300, 310, math.Inf(1)}, "some could not be estimated"},
	} {
		sp := spread.Of(c.runs)
		ws := noiseWarnings(&Advice{BSimpleRuns: c.runs, BSimple: sp.Median, BSimpleMin: sp.Min, BSimpleMax: sp.Max})
		if got := strings.Join(ws, "\n"); c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("noise scales %v: warnings %q, want %q", c.runs, got, c.want)
		}
	}
}

// TestMarks: the knee and the recommendation at the same batch are one
// line with both labels, not one line drawn over the other; an unusable
// noise scale draws no line.
func TestMarks(t *testing.T) {
	ms := marks(&Advice{Knee: 256, KneeMin: 256, KneeMax: 512, Batch: 256, BSimple: 1000})
	if len(ms) != 2 || ms[0].label != "knee B=256 (repeats 256–512) = recommended B=256" || ms[1].x != 1000 {
		t.Errorf("marks %+v", ms)
	}
	if ms := marks(&Advice{Knee: 64, KneeMin: 64, KneeMax: 64, Batch: 128, BSimple: math.Inf(1)}); len(ms) != 2 || ms[0].label != "knee B=64" {
		t.Errorf("marks %+v", ms)
	}
}

// TestAdviseFindsLR: with FindLR the recommended LR is the range test's
// suggestion at the recommended batch, and the reasoning says so.
func TestAdviseFindsLR(t *testing.T) {
	o := options(t, 0)
	o.Repeats, o.MaxBatch = 1, 64
	sweep := lrfind.DefaultSweep()
	o.FindLR = &sweep
	a, err := Advise(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if a.LRFind == nil || a.LRFind.Batch != a.Batch || a.LR != a.LRFind.SuggestedLR || !(a.RuleLR > 0) || !strings.Contains(a.Reasoning, "range test") {
		t.Errorf("batch %d, LR %g, rule's %g, range test %+v: %s", a.Batch, a.LR, a.RuleLR, a.LRFind, a.Reasoning)
	}
	t.Logf("B=%d: range test %.3g, %s rule %.3g", a.Batch, a.LR, o.Rule, a.RuleLR)
}

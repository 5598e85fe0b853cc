package grid

import (
	"math"
	"slices"
	"testing"
)

// fakeRun is a train run that reached each target at the given steps (a
// negative number: not reached).
func fakeRun(p Plan, b int, lr float64, seed uint64, steps ...int) Run {
	r := Run{Kind: Train, Batch: b, LR: lr, Seed: seed, TrainLen: 1 << 20}
	for i, s := range steps {
		h := Hit{Target: p.Targets[i]}
		if s >= 0 {
			st, sa := s, s*b
			h.Reached, h.Steps, h.Samples = true, &st, &sa
		}
		r.Hits = append(r.Hits, h)
	}
	return r
}

// TestBestLR: the LR with the fewest steps is not picked when it diverged
// or collapsed with one seed, or when one seed did not reach the target;
// a batch size where every LR failed has no point.
func TestBestLR(t *testing.T) {
	p := Plan{Batches: []int{64, 128, 256}, Seeds: []uint64{1, 2}, LRs: []float64{0.1, 0.2, 0.4}, Targets: []float64{1}}
	var runs []Run
	add := func(b int, lr float64, seed uint64, steps int, mark func(*Run)) {
		r := fakeRun(p, b, lr, seed, steps)
		if mark != nil {
			mark(&r)
		}
		runs = append(runs, r)
	}
	diverge := func(r *Run) { r.Diverged = true }
	collapse := func(r *Run) { r.Collapsed = true }
	// B=64: 0.4 is fastest but diverged with seed 2 (after reaching the
	// target), 0.2 collapsed with seed 1: 0.1 is the best.
	add(64, 0.1, 1, 100, nil)
	add(64, 0.1, 2, 110, nil)
	add(64, 0.2, 1, 50, collapse)
	add(64, 0.2, 2, 60, nil)
	add(64, 0.4, 1, 30, nil)
	add(64, 0.4, 2, 30, diverge)
	// B=128: 0.4 reached it with seed 1 only.
	add(128, 0.1, 1, 90, nil)
	add(128, 0.1, 2, 80, nil)
	add(128, 0.2, 1, 70, nil)
	add(128, 0.2, 2, 75, nil)
	add(128, 0.4, 1, 20, nil)
	add(128, 0.4, 2, -1, nil)
	// B=256: all failed or not reached.
	add(256, 0.1, 1, -1, nil)
	add(256, 0.1, 2, -1, nil)
	add(256, 0.2, 1, 10, diverge)
	add(256, 0.2, 2, 10, nil)
	add(256, 0.4, 1, 5, collapse)
	add(256, 0.4, 2, 5, collapse)
	a := Analyze(p, runs, nil)
	pts := a.Targets[0].Points
	if !pts[0].Reached || *pts[0].BestLR != 0.1 || pts[0].Steps.Mean != 105 || pts[0].Steps.Min != 100 || pts[0].Steps.Max != 110 || !pts[0].LREdge {
		t.Errorf("B=64: %+v, want lr 0.1 at 105 [100, 110] steps, at the grid's edge", pts[0])
	}
	if !slices.Equal(pts[0].FailedLRs, []float64{0.2, 0.4}) {
		t.Errorf("B=64 failed LRs %v", pts[0].FailedLRs)
	}
	if !pts[1].Reached || *pts[1].BestLR != 0.2 || pts[1].Steps.Mean != 72.5 || pts[1].LREdge || pts[1].Samples.Mean != 72.5*128 {
		t.Errorf("B=128: %+v, want lr 0.2 at 72.5 steps", pts[1])
	}
	if pts[2].Reached || pts[2].BestLR != nil || pts[2].Steps != nil {
		t.Errorf("B=256: %+v, want not reached", pts[2])
	}
	if a.Failed != 5 || a.Targets[0].Fit != nil {
		t.Errorf("%d failed runs (want 5), fit %+v (want none: 2 batch sizes)", a.Failed, a.Targets[0].Fit)
	}
}

// TestPartialGrid: a seed whose runs at a batch size are not all done is
// left out there rather than read as not reaching the target.
func TestPartialGrid(t *testing.T) {
	p := Plan{Batches: []int{64}, Seeds: []uint64{1, 2}, LRs: []float64{0.1, 0.2}, Targets: []float64{1}}
	runs := []Run{fakeRun(p, 64, 0.1, 1, 100), fakeRun(p, 64, 0.2, 1, 80), fakeRun(p, 64, 0.1, 2, 90)}
	pt := Analyze(p, runs, []string{"b64_lr0.2_s2"}).Targets[0].Points[0]
	if !pt.Reached || *pt.BestLR != 0.2 || pt.Steps.N != 1 || !slices.Equal(pt.Seeds, []uint64{1}) {
		t.Errorf("%+v: want lr 0.2 from seed 1 alone", pt)
	}
}

// TestAnalyzeFitsAGrid: a grid whose best-LR steps follow a known
// hyperbola, with a slower LR beside each, is fitted to its B_crit.
func TestAnalyzeFitsAGrid(t *testing.T) {
	p := Plan{Batches: []int{32, 64, 128, 256, 512, 1024, 2048}, Seeds: []uint64{1, 2, 3}, LRs: []float64{0.05, 0.1}, Targets: []float64{1}}
	var runs []Run
	for _, b := range p.Batches {
		for si, seed := range p.Seeds {
			s := hyperbola(50, 300, float64(b)) * (1 + 0.02*float64(si-1))
			runs = append(runs, fakeRun(p, b, 0.1, seed, int(math.Round(s))), fakeRun(p, b, 0.05, seed, int(math.Round(2*s))))
		}
	}
	r := Analyze(p, runs, nil).Targets[0].Fit
	if r == nil || math.Abs(r.BCrit/300-1) > 0.05 || math.Abs(r.SMin/50-1) > 0.05 || !(float64(r.BCritLo) <= r.BCrit && r.BCrit <= float64(r.BCritHi)) {
		t.Fatalf("fit %+v, want B_crit ≈ 300, S_min ≈ 50", r)
	}
	// B_20% = 0.2·B_crit + 1.2·B₀ under the hyperbola, between measured batches.
	if want := 0.2*300 + 1.2*32; math.Abs(r.B20/want-1) > 0.2 || r.B20Above {
		t.Errorf("B_20%% = %g, want about %g", r.B20, want)
	}
}

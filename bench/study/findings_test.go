package study

import (
	"math"
	"slices"
	"testing"

	"github.com/batchlab/batchlab/engine"
)

// run makes a synthetic finished run with one epoch.
func run(exp, variant string, batch int, seed uint64, acc, loss float64) Run {
	return Run{
		ID: "x", Experiment: exp, Variant: variant, Batch: batch, Seed: seed,
		Epochs: []engine.EpochStats{{Epoch: 1, Batch: batch, TestAccuracy: acc, TestLoss: loss,
			Updates: 60000 / batch, TotalUpdates: 60000 / batch, H2DCopies: int64(2 * 60000 / batch), Seconds: 10 - float64(batch)/1000}},
	}
}

func withGap(r Run, trainAcc, sharp float64) Run {
	r.FinalTrainAccuracy, r.Sharpness = &trainAcc, &sharp
	return r
}

func verdictOf(t *testing.T, runs []Run, id string) Finding {
	t.Helper()
	i := slices.IndexFunc(rules, func(r rule) bool { return r.id == id })
	if i < 0 {
		t.Fatalf("no rule %q", id)
	}
	f := rules[i].apply(runs)
	for k, v := range f.Numbers {
		if math.IsNaN(v) && k != "closed_linear" && k != "closed_sqrt" {
			t.Errorf("%s: number %s is NaN", f.Claim, k)
		}
	}
	return f
}

// Each claim is fed data that support it and data that contradict it; the
// verdict must follow the data.
func TestFixedLRVerdictFollowsData(t *testing.T) {
	worse := []Run{run(FixedLR, "none", 64, 1, 0.97, 0.10), run(FixedLR, "none", 64, 2, 0.968, 0.11),
		run(FixedLR, "none", 4096, 1, 0.90, 0.35), run(FixedLR, "none", 4096, 2, 0.91, 0.33)}
	if f := verdictOf(t, worse, "fixed-lr"); f.Verdict != Reproduced {
		t.Errorf("worse large batch: %s (%s)", f.Verdict, f.Measured)
	}
	better := []Run{run(FixedLR, "none", 64, 1, 0.90, 0.35), run(FixedLR, "none", 64, 2, 0.91, 0.33),
		run(FixedLR, "none", 4096, 1, 0.97, 0.10), run(FixedLR, "none", 4096, 2, 0.968, 0.11)}
	if f := verdictOf(t, better, "fixed-lr"); f.Verdict != NotReproduced {
		t.Errorf("better large batch: %s (%s)", f.Verdict, f.Measured)
	}
	if f := verdictOf(t, nil, "fixed-lr"); f.Verdict != Inconclusive {
		t.Errorf("no runs: %s", f.Verdict)
	}
}

func TestLRScalingVerdictFollowsData(t *testing.T) {
	fixed := []Run{run(FixedLR, "none", 64, 1, 0.97, 0.1), run(FixedLR, "none", 4096, 1, 0.90, 0.35)}
	closes := append(fixed, run(LRScaling, "linear", 4096, 1, 0.965, 0.12), run(LRScaling, "sqrt", 4096, 1, 0.93, 0.2))
	if f := verdictOf(t, closes, "lr-scaling"); f.Verdict != Reproduced || math.Abs(f.Numbers["closed_linear"]-13.0/14) > 1e-9 {
		t.Errorf("scaling closes the gap: %s, closed %v (%s)", f.Verdict, f.Numbers, f.Measured)
	}
	worse := append(fixed, run(LRScaling, "linear", 4096, 1, 0.85, 0.5), run(LRScaling, "sqrt", 4096, 1, 0.88, 0.4))
	if f := verdictOf(t, worse, "lr-scaling"); f.Verdict != NotReproduced {
		t.Errorf("scaling makes it worse: %s (%s)", f.Verdict, f.Measured)
	}
	div := run(LRScaling, "linear", 4096, 1, math.NaN(), math.NaN())
	div.Diverged = true
	allDiverged := append(fixed, div)
	if f := verdictOf(t, allDiverged, "lr-scaling"); f.Verdict != NotReproduced {
		t.Errorf("scaling diverges: %s (%s)", f.Verdict, f.Measured)
	}
	noGap := []Run{run(FixedLR, "none", 64, 1, 0.97, 0.1), run(FixedLR, "none", 4096, 1, 0.969, 0.1), run(LRScaling, "linear", 4096, 1, 0.97, 0.1)}
	if f := verdictOf(t, noGap, "lr-scaling"); f.Verdict != Inconclusive {
		t.Errorf("no gap to close: %s (%s)", f.Verdict, f.Measured)
	}
}

func TestIncreaseBatchVerdictFollowsData(t *testing.T) {
	decay := run(Schedule, "step-decay", 64, 1, 0.975, 0.08)
	decay.Epochs[0].TotalUpdates = 9000
	same := run(Schedule, "increase-batch", 64, 1, 0.974, 0.08)
	same.Epochs[0].TotalUpdates = 3000
	if f := verdictOf(t, []Run{decay, same}, "increase-batch"); f.Verdict != Reproduced {
		t.Errorf("same accuracy, a third of the updates: %s (%s)", f.Verdict, f.Measured)
	}
	worse := same
	worse.Epochs = []engine.EpochStats{same.Epochs[0]}
	worse.Epochs[0].TestAccuracy = 0.95
	if f := verdictOf(t, []Run{decay, worse}, "increase-batch"); f.Verdict != NotReproduced {
		t.Errorf("worse accuracy: %s (%s)", f.Verdict, f.Measured)
	}
}

func TestGeneralizationVerdictFollowsData(t *testing.T) {
	sb, lb := run(FixedLR, "none", 64, 1, 0.97, 0.1), run(FixedLR, "none", 4096, 1, 0.95, 0.2)
	if f := verdictOf(t, []Run{withGap(sb, 0.98, 5), withGap(lb, 0.99, 50)}, "generalization"); f.Verdict != Reproduced {
		t.Errorf("wider gap and sharper: %s (%s)", f.Verdict, f.Measured)
	}
	if f := verdictOf(t, []Run{withGap(sb, 0.99, 50), withGap(lb, 0.955, 5)}, "generalization"); f.Verdict != NotReproduced {
		t.Errorf("narrower gap and flatter: %s (%s)", f.Verdict, f.Measured)
	}
	if f := verdictOf(t, []Run{withGap(sb, 0.98, 50), withGap(lb, 0.99, 5)}, "generalization"); f.Verdict != Partly {
		t.Errorf("wider gap but flatter: %s (%s)", f.Verdict, f.Measured)
	}
}

func TestRegimeVerdictFollowsData(t *testing.T) {
	sb, lb, gbn := run(Regime, "SB", 64, 1, 0.975, 0.08), run(Regime, "LB", 1024, 1, 0.95, 0.2), run(Regime, "LB+GBN", 1024, 1, 0.955, 0.2)
	if f := verdictOf(t, []Run{sb, lb, gbn, run(Regime, "LB+GBN+RA", 1024, 1, 0.976, 0.08)}, "regime"); f.Verdict != Reproduced {
		t.Errorf("regime adaptation closes the gap: %s (%s)", f.Verdict, f.Measured)
	}
	if f := verdictOf(t, []Run{sb, lb, gbn, run(Regime, "LB+GBN+RA", 1024, 1, 0.94, 0.25)}, "regime"); f.Verdict != NotReproduced {
		t.Errorf("regime adaptation does not help: %s (%s)", f.Verdict, f.Measured)
	}
}

func TestCostVerdictFollowsData(t *testing.T) {
	cheap := []Run{run(FixedLR, "none", 64, 1, 0.97, 0.1), run(FixedLR, "none", 4096, 1, 0.9, 0.3)}
	if f := verdictOf(t, cheap, "cost"); f.Verdict != Reproduced {
		t.Errorf("fewer copies, faster epochs: %s (%s)", f.Verdict, f.Measured)
	}
	slow := []Run{run(FixedLR, "none", 64, 1, 0.97, 0.1), run(FixedLR, "none", 4096, 1, 0.9, 0.3)}
	slow[1].Epochs[0].Seconds = 20
	slow[1].Epochs[0].H2DCopies = 2000
	if f := verdictOf(t, slow, "cost"); f.Verdict != NotReproduced {
		t.Errorf("as many copies, slower: %s (%s)", f.Verdict, f.Measured)
	}
}

// TestCriticalBatchFit: step counts that follow S(B) = S_min(1 + B_crit/B)
// exactly give B_crit back, and the verdict compares it with B_simple.
func TestCriticalBatchFit(t *testing.T) {
	const sMin, bCrit = 100.0, 512.0
	var runs []Run
	for _, b := range []int{64, 256, 1024, 4096} {
		s := int(math.Round(sMin * (1 + bCrit/float64(b))))
		losses := make([]float32, s+5)
		for i := range losses {
			losses[i] = 2
			if i >= s-1 {
				losses[i] = 0.5 // reached exactly at update s
			}
		}
		r := run(FixedLR, "none", b, 1, 0.9, 0.3)
		r.Epochs[0].StepLosses, r.Epochs[0].Updates = losses, 1 // window 1: no smoothing
		runs = append(runs, r)
	}
	got, steps, ok := criticalBatch(runs)
	if !ok || math.Abs(got-bCrit)/bCrit > 0.02 {
		t.Fatalf("B_crit %g (ok %v, steps %v), want %g", got, ok, steps, bCrit)
	}
	noise := Run{Experiment: Noise, Variant: "base", Noise: []NoisePoint{{BSimple: 400}}}
	if f := verdictOf(t, append(runs, noise), "noise-scale"); f.Verdict != Reproduced {
		t.Errorf("B_simple 400 vs B_crit 512: %s (%s)", f.Verdict, f.Measured)
	}
	noise.Noise[0].BSimple = 20000
	if f := verdictOf(t, append(runs, noise), "noise-scale"); f.Verdict != NotReproduced {
		t.Errorf("B_simple 20000 vs B_crit 512: %s (%s)", f.Verdict, f.Measured)
	}
}

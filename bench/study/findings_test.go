package study

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
)

// run makes a synthetic finished run with one epoch, trained under equal epochs.
func run(exp, variant string, batch int, seed uint64, acc, loss float64) Run {
	return Run{
		ID: exp + "_" + variant, Experiment: exp, Variant: variant, Batch: batch, Seed: seed,
		Protocol: Protocol{Kind: EqualEpochs, Epochs: 1},
		Epochs: []engine.EpochStats{{Epoch: 1, Batch: batch, TestAccuracy: acc, TestLoss: loss,
			Updates: 60000 / batch, TotalUpdates: 60000 / batch, H2DCopies: int64(2 * 60000 / batch), Seconds: 10 - float64(batch)/1000}},
	}
}

// seeds makes one run per seed 1..n, its accuracy and loss jittered by
// the seed (a spread of 0.1 points), so intervals are finite.
func seeds(n int, exp, variant string, batch int, acc, loss float64) []Run {
	var out []Run
	for s := 1; s <= n; s++ {
		j := 0.001 * float64(s-2)
		out = append(out, run(exp, variant, batch, uint64(s), acc+j, loss-j))
	}
	return out
}

func join(rs ...[]Run) []Run { return slices.Concat(rs...) }

func testPlan() Preset { return Presets()["quick"] }

func verdictOf(t *testing.T, runs []Run, id string) Finding {
	t.Helper()
	i := slices.IndexFunc(rules, func(r rule) bool { return r.id == id })
	if i < 0 {
		t.Fatalf("no rule %q", id)
	}
	f := rules[i].apply(runs, testPlan(), nil)
	for k, v := range f.Numbers {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Errorf("%s: number %s is %g", f.Claim, k, v)
		}
	}
	return f
}

// collapse turns a run into one that ended at chance.
func collapse(r Run) Run {
	r.Epochs = slices.Clone(r.Epochs)
	r.Epochs[0].TestAccuracy, r.Epochs[0].TestLoss = 0.1007, 2.33
	return r
}

// check runs a rule on supporting, contradicting and one-seed data, and on
// the supporting data with the run at index collapsible collapsed (a failed
// run, which must be named and left out of every number, never averaged in).
func check(t *testing.T, id string, support, contradict []Run, collapsible int) {
	t.Helper()
	if f := verdictOf(t, support, id); f.Verdict != Reproduced {
		t.Errorf("%s, supporting data: %s (%s; %v)", id, f.Verdict, f.Measured, f.Caveats)
	} else if len(f.Intervals) == 0 || f.Seeds < f.MinSeeds {
		t.Errorf("%s: reproduced with %d intervals and %d seeds (needs %d)", id, len(f.Intervals), f.Seeds, f.MinSeeds)
	}
	if f := verdictOf(t, contradict, id); f.Verdict != NotReproduced {
		t.Errorf("%s, contradicting data: %s (%s; %v)", id, f.Verdict, f.Measured, f.Caveats)
	}
	var one []Run
	for _, r := range support {
		if r.Seed == 1 {
			one = append(one, r)
		}
	}
	if f := verdictOf(t, one, id); f.Verdict != Inconclusive {
		t.Errorf("%s, one seed: %s (%s)", id, f.Verdict, f.Measured)
	}
	broken := slices.Clone(support)
	broken[collapsible] = collapse(broken[collapsible])
	f := verdictOf(t, broken, id)
	if !slices.ContainsFunc(f.Caveats, func(c string) bool { return strings.Contains(c, "collapsed to chance") }) {
		t.Errorf("%s: the collapsed run %s is not named as failed: %v", id, broken[collapsible].ID, f.Caveats)
	}
	// Left out of every mean, it leaves two seeds where the rule needs three.
	if f.Verdict != Inconclusive || f.Seeds != 2 {
		t.Errorf("%s: with %s collapsed: %s on %d seeds (%s)", id, broken[collapsible].ID, f.Verdict, f.Seeds, f.Measured)
	}
}

func TestFixedLRVerdictFollowsData(t *testing.T) {
	worse := join(seeds(3, FixedLR, "none", 64, 0.97, 0.10), seeds(3, FixedLR, "none", 4096, 0.90, 0.35))
	better := join(seeds(3, FixedLR, "none", 64, 0.90, 0.35), seeds(3, FixedLR, "none", 4096, 0.97, 0.10))
	check(t, "fixed-lr", worse, better, 4)
}

func TestLRScalingVerdictFollowsData(t *testing.T) {
	fixed := join(seeds(3, FixedLR, "none", 64, 0.97, 0.1), seeds(3, FixedLR, "none", 1024, 0.94, 0.2), seeds(3, FixedLR, "none", 4096, 0.90, 0.35))
	closes := join(fixed, seeds(3, LRScaling, "linear", 1024, 0.968, 0.12), seeds(3, LRScaling, "linear", 4096, 0.95, 0.15),
		seeds(3, LRScaling, "sqrt", 1024, 0.96, 0.12), seeds(3, LRScaling, "sqrt", 4096, 0.93, 0.2))
	worse := join(fixed, seeds(3, LRScaling, "linear", 1024, 0.92, 0.3), seeds(3, LRScaling, "linear", 4096, 0.85, 0.5),
		seeds(3, LRScaling, "sqrt", 1024, 0.93, 0.3), seeds(3, LRScaling, "sqrt", 4096, 0.88, 0.4))
	check(t, "lr-scaling", closes, worse, 1)
	f := verdictOf(t, closes, "lr-scaling")
	// linear keeps 1024 within the 1-point margin (0.2 points below), not 4096 (2 points)
	if f.Numbers["largest_kept_linear"] != 1024 || f.Numbers["largest_kept_fixed"] != 64 {
		t.Errorf("largest kept batches %v (%s)", f.Numbers, f.Measured)
	}
	if c := f.Numbers["closed_linear_b4096"]; math.Abs(c-(1-2.0/7)) > 1e-9 {
		t.Errorf("linear closes %g of the gap at 4096, want %g", c, 1-2.0/7)
	}
	// A rule that collapses at 4096 (linear at η = 3.2) is failed there,
	// never "−1010 % closed".
	var collapsed []Run
	for _, r := range closes {
		if r.Variant == "linear" && r.Batch == 4096 {
			r = collapse(r)
		}
		collapsed = append(collapsed, r)
	}
	f = verdictOf(t, collapsed, "lr-scaling")
	if _, ok := f.Numbers["closed_linear_b4096"]; ok || !strings.Contains(f.Measured, "linear failed") {
		t.Errorf("collapsed linear at 4096: %s (%v)", f.Measured, f.Numbers)
	}
	noGap := join(seeds(3, FixedLR, "none", 64, 0.97, 0.1), seeds(3, FixedLR, "none", 4096, 0.969, 0.1), seeds(3, LRScaling, "linear", 4096, 0.97, 0.1))
	if f := verdictOf(t, noGap, "lr-scaling"); f.Verdict != Inconclusive {
		t.Errorf("no gap to close: %s (%s)", f.Verdict, f.Measured)
	}
}

func TestIncreaseBatchVerdictFollowsData(t *testing.T) {
	withUpdates := func(rs []Run, u int) []Run {
		for i := range rs {
			rs[i].Epochs[0].TotalUpdates = u
		}
		return rs
	}
	decay := withUpdates(seeds(3, Schedule, "step-decay", 64, 0.975, 0.08), 9000)
	constant := withUpdates(seeds(3, Schedule, "constant", 64, 0.96, 0.12), 9000)
	same := withUpdates(seeds(3, Schedule, "increase-batch", 64, 0.9748, 0.08), 3000)
	worse := withUpdates(seeds(3, Schedule, "increase-batch", 64, 0.95, 0.2), 3000)
	check(t, "increase-batch", join(decay, constant, same), join(decay, constant, worse), 7)
	// With a control as good as step decay the schedule did not matter: partly.
	asGood := withUpdates(seeds(3, Schedule, "constant", 64, 0.976, 0.08), 9000)
	if f := verdictOf(t, join(decay, asGood, same), "increase-batch"); f.Verdict != Partly {
		t.Errorf("control as good as decay: %s (%s)", f.Verdict, f.Measured)
	}
}

// keskar makes Keskar runs trained to the target: train accuracy, test
// accuracy and both sharpness measures per seed.
func keskar(variant string, batch int, train, test, phi, lambda float64) []Run {
	rs := seeds(3, Keskar, variant, batch, test, 0.3)
	for i := range rs {
		tr, p, l := train, phi*(1+0.01*float64(i)), lambda*(1+0.01*float64(i))
		rs[i].FinalTrainAccuracy, rs[i].Sharpness, rs[i].HessianTop = &tr, &p, &l
		rs[i].Protocol = Protocol{Kind: TrainToTarget, Epochs: 100, Metric: TrainAccuracy, Target: 0.99}
		rs[i].Reached = &Reached{Epoch: 1, Value: train}
	}
	return rs
}

func TestGeneralizationVerdictFollowsData(t *testing.T) {
	support := join(keskar("SB", 256, 0.995, 0.89, 5, 10), keskar("LB", 2000, 0.993, 0.87, 50, 100))
	contradict := join(keskar("SB", 256, 0.995, 0.87, 50, 100), keskar("LB", 2000, 0.993, 0.89, 5, 10))
	check(t, "generalization", support, contradict, 4)
	// One LB run that did not reach the target: inconclusive, and named.
	short := slices.Clone(support)
	short[4].Reached = nil
	f := verdictOf(t, short, "generalization")
	if f.Verdict != Inconclusive || !slices.ContainsFunc(f.Caveats, func(c string) bool { return strings.Contains(c, "did not reach its target") }) {
		t.Errorf("an LB run short of the target: %s (%v)", f.Verdict, f.Caveats)
	}
	flatter := join(keskar("SB", 256, 0.995, 0.89, 50, 100), keskar("LB", 2000, 0.993, 0.87, 5, 10))
	if f := verdictOf(t, flatter, "generalization"); f.Verdict != Partly {
		t.Errorf("worse but flatter: %s (%s)", f.Verdict, f.Measured)
	}
}

func TestRegimeVerdictFollowsData(t *testing.T) {
	base := join(seeds(3, Regime, "SB", 64, 0.975, 0.08), seeds(3, Regime, "LB", 1024, 0.95, 0.2), seeds(3, Regime, "LB+GBN", 1024, 0.955, 0.2))
	check(t, "regime", join(base, seeds(3, Regime, "LB+GBN+RA", 1024, 0.976, 0.08)), join(base, seeds(3, Regime, "LB+GBN+RA", 1024, 0.94, 0.25)), 9)
}

// costRuns are time-to-accuracy runs: seconds to the target per batch,
// varied by seed as a loaded machine does, the ratios steady.
func costRuns(seconds map[int]float64) []Run {
	var out []Run
	for b, sec := range seconds {
		for s := 1; s <= 3; s++ {
			r := run(Cost, "sqrt", b, uint64(s), 0.9, 0.3)
			r.Protocol = Protocol{Kind: TimeToAccuracy, Epochs: 5, Metric: TestAccuracy, Target: 0.85}
			load := []float64{1, 2.5, 1.3}[s-1] // seed 2 ran on a loaded machine
			r.Reached = &Reached{Epoch: 1, Seconds: sec * load * (1 + 0.01*float64(s)), Updates: 60000 / b}
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Run) int { return a.Batch - b.Batch })
	return out
}

func TestCostVerdictFollowsData(t *testing.T) {
	cheaper := costRuns(map[int]float64{256: 10, 1024: 6, 4096: 4})
	slower := costRuns(map[int]float64{256: 10, 1024: 14, 4096: 20})
	check(t, "cost", cheaper, slower, 1)
	// B = 1024 and 4096 slower than 256 (issue 16): never "cheaper".
	f := verdictOf(t, costRuns(map[int]float64{256: 10, 1024: 12, 4096: 11}), "cost")
	if f.Verdict != NotReproduced || strings.Contains(f.Measured, "cheaper") {
		t.Errorf("slower large batches: %s (%s)", f.Verdict, f.Measured)
	}
	// A batch that never reaches the target is not cheaper.
	never := costRuns(map[int]float64{256: 10, 1024: 6, 4096: 4})
	for i := range never {
		if never[i].Batch == 4096 {
			never[i].Reached = nil
		}
	}
	if f := verdictOf(t, never, "cost"); f.Verdict != Partly || !strings.Contains(f.Measured, "B=4096: did not reach the target in 3 of 3 seeds") {
		t.Errorf("4096 never reaches the target: %s (%s)", f.Verdict, f.Measured)
	}
	// Nor is one that reached it in one seed of three (no pair to judge).
	never[len(never)-1].Reached = &Reached{Epoch: 1, Seconds: 1}
	if f := verdictOf(t, never, "cost"); f.Verdict != Partly || !strings.Contains(f.Measured, "B=4096: did not reach the target in 2 of 3 seeds") {
		t.Errorf("4096 reaches the target in one seed: %s (%s)", f.Verdict, f.Measured)
	}
}

// TestCriticalBatchFit: step counts that follow S(B) = S_min(1 + B_crit/B)
// exactly give B_crit back, and the verdict compares it with B_simple read
// where the noise run's loss reaches the fit's target.
func TestCriticalBatchFit(t *testing.T) {
	const sMin, bCrit = 100.0, 512.0
	var runs []Run
	for _, b := range []int{64, 256, 1024, 4096} {
		s := int(math.Round(sMin * (1 + bCrit/float64(b))))
		for seed := uint64(1); seed <= 3; seed++ {
			losses := make([]float32, s+5)
			for i := range losses {
				losses[i] = 2
				if i >= s-1 {
					losses[i] = 0.5 // reached exactly at update s
				}
			}
			r := run(FixedLR, "none", b, seed, 0.9, 0.3)
			r.Epochs[0].StepLosses, r.Epochs[0].Updates = losses, 1 // window 1: no smoothing
			runs = append(runs, r)
		}
	}
	fit, ok := fitCriticalBatch(runs)
	got, _ := bCritOf(fit.steps)
	if !ok || math.Abs(got-bCrit)/bCrit > 0.02 || fit.target != 0.5 {
		t.Fatalf("B_crit %g (ok %v, steps %v, target %g), want %g at 0.5", got, ok, fit.steps, fit.target, bCrit)
	}
	noise := func(early, atTarget float64) []Run {
		var out []Run
		for s := uint64(1); s <= 3; s++ {
			out = append(out, Run{ID: "noise", Experiment: Noise, Variant: "base", Seed: s, Epochs: runs[0].Epochs,
				Noise: []NoisePoint{{BSimple: early, TrainLoss: 1.5}, {BSimple: atTarget + float64(s), TrainLoss: 0.45}, {BSimple: 1e6, TrainLoss: 0.1}}})
		}
		return out
	}
	f := verdictOf(t, join(runs, noise(20000, 400)), "noise-scale")
	if geo := math.Cbrt(401 * 402 * 403); f.Verdict != Reproduced || math.Abs(f.Numbers["b_simple"]-geo) > 1e-9 || f.Intervals["b_simple"].Method != "t of logs" {
		t.Errorf("B_simple 401, 402, 403 at the target loss vs B_crit 512: %s, %v, %+v, want the geometric mean %g (%s)", f.Verdict, f.Numbers, f.Intervals["b_simple"], geo, f.Measured)
	}
	// A seed whose B_simple is not positive (tr(Σ) estimated below 0) has
	// no logarithm: the t-interval of the values, and a caveat that says so.
	mixed := noise(20000, 400)
	mixed[0].Noise[1].BSimple = -50
	f = verdictOf(t, join(runs, mixed), "noise-scale")
	if iv := f.Intervals["b_simple"]; iv.Method != "t" || math.Abs(iv.Mean-(-50+402+403)/3.0) > 1e-9 || !slices.ContainsFunc(f.Caveats, func(c string) bool { return strings.Contains(c, "not positive in every seed") }) {
		t.Errorf("B_simple −50, 402, 403: %+v, caveats %q", iv, f.Caveats)
	}
	// A mean at or below zero is no noise scale to compare with B_crit.
	if f := verdictOf(t, join(runs, noise(20000, -1000)), "noise-scale"); f.Verdict != Inconclusive {
		t.Errorf("B_simple about −1000: %s (%s)", f.Verdict, f.Measured)
	}
	if f := verdictOf(t, join(runs, noise(400, 20000)), "noise-scale"); f.Verdict != NotReproduced {
		t.Errorf("B_simple 20000 at the target vs B_crit 512: %s (%s)", f.Verdict, f.Measured)
	}
	// Seeds that scatter over two orders of magnitude: the geometric mean
	// (about 500) is near B_crit, but its interval reaches past a factor 10
	// both ways, so no verdict.
	wide := noise(20000, 0)
	for i, b := range []float64{60, 500, 4000} {
		wide[i].Noise[1].BSimple = b
	}
	if f := verdictOf(t, join(runs, wide), "noise-scale"); f.Verdict != Inconclusive || !strings.Contains(f.Measured, "the seeds cannot tell") {
		t.Errorf("B_simple 60, 500, 4000 vs B_crit 512: %s (%s)", f.Verdict, f.Measured)
	}
}

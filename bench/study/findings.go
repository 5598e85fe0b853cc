package study

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// The findings of the literature and the rule that judges each, as data:
// a claim, its source, whether it needs the fixed-LR sweep, a judge that
// computes the verdict from the measured numbers, by the rule written beside
// it, and the experiments it reads. A finding whose runs are missing, failed
// or diverged is inconclusive, never assumed. A new finding is a new row.
var rules = []rule{
	{"fixed-lr", "With a fixed learning rate, larger batches reach a worse loss in the same number of epochs",
		"Keskar et al. 2017; Goyal et al. 2017", true, judgeFixedLR, []string{FixedLR}},
	{"lr-scaling", "Scaling the learning rate with the batch (linear rule with warmup, or sqrt rule) closes most of that gap",
		"Goyal et al. 2017; Hoffer et al. 2017", true, judgeLRScaling, []string{FixedLR, LRScaling}},
	{"increase-batch", "Increasing the batch instead of decaying the learning rate gives the same test accuracy with far fewer updates",
		"Smith et al. 2018", false, judgeIncreaseBatch, []string{Schedule}},
	{"generalization", "Large batches generalize worse: a larger train/test gap and sharper minima",
		"Keskar et al. 2017", true, judgeGeneralization, []string{FixedLR}},
	{"regime", "The gap comes from too few updates: ghost batch norm and regime adaptation (training longer) close it",
		"Hoffer et al. 2017", false, judgeRegime, []string{Regime}},
	{"cost", "Larger batches mean fewer updates and fewer host-to-device copies, so a cheaper epoch",
		"DESIGN.md; Goyal et al. 2017", true, judgeCost, []string{FixedLR}},
	{"noise-scale", "The gradient noise scale B_simple predicts the critical batch size",
		"McCandlish et al. 2018", false, judgeNoiseScale, []string{Noise, FixedLR, LRScaling}},
}

// rule is one finding and how it is judged.
type rule struct {
	id            string // names it in tests
	claim, source string
	needsSweep    bool // inconclusive unless the fixed-LR sweep has two batch sizes
	judge         func(e *evidence) (verdict, measured string)
	experiments   []string // whose runs it reads: a missing one leaves it undecided
}

// evidence is what a judge reads, and where it puts the numbers behind its
// verdict.
type evidence struct {
	runs         []Run
	small, large int // the smallest and largest batch of the fixed-LR sweep
	numbers      map[string]float64
}

// judge turns the runs into the findings table, one finding per rule.
func judge(r *Results) []Finding {
	var out []Finding
	for _, rl := range rules {
		out = append(out, rl.apply(r.Runs))
	}
	return out
}

func (rl rule) apply(runs []Run) Finding {
	f := Finding{ID: rl.id, Claim: rl.claim, Source: rl.source, Numbers: map[string]float64{}}
	e := &evidence{runs: runs, numbers: f.Numbers}
	var ok bool
	if e.small, e.large, ok = sweepEnds(runs); rl.needsSweep && !ok {
		f.Verdict, f.Measured = Inconclusive, "the fixed-LR sweep has fewer than two batch sizes"
	} else {
		f.Verdict, f.Measured = rl.judge(e)
	}
	return f
}

// stat is a mean and standard deviation over seeds.
type stat struct {
	mean, std float64
	n         int
}

func (s stat) ok() bool { return s.n > 0 }

func (s stat) String() string {
	if s.n > 1 {
		return fmt.Sprintf("%.4g ± %.2g", s.mean, s.std)
	}
	return fmt.Sprintf("%.4g", s.mean)
}

// pct formats a fraction as a percentage with its spread.
func (s stat) pct() string {
	if s.n > 1 {
		return fmt.Sprintf("%.2f ± %.2f%%", 100*s.mean, 100*s.std)
	}
	return fmt.Sprintf("%.2f%%", 100*s.mean)
}

// measure collects metric over the healthy runs (finished, not diverged) of
// an experiment's variant at a batch size; batch 0 matches any.
func measure(runs []Run, exp, variant string, batch int, metric func(Run) (float64, bool)) stat {
	var xs []float64
	for _, r := range runs {
		if r.Experiment != exp || r.Variant != variant || (batch != 0 && r.Batch != batch) || r.Diverged || r.Error != "" || r.failure() != "" {
			continue
		}
		if v, ok := metric(r); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
			xs = append(xs, v)
		}
	}
	var s stat
	s.n = len(xs)
	for _, x := range xs {
		s.mean += x
	}
	if s.n == 0 {
		return s
	}
	s.mean /= float64(s.n)
	for _, x := range xs {
		s.std += (x - s.mean) * (x - s.mean)
	}
	if s.n > 1 {
		s.std = math.Sqrt(s.std / float64(s.n-1))
	}
	return s
}

// diverged counts the runs of an experiment's variant at a batch size that diverged.
func diverged(runs []Run, exp, variant string, batch int) int {
	n := 0
	for _, r := range runs {
		if r.Experiment == exp && r.Variant == variant && r.Batch == batch && r.Diverged {
			n++
		}
	}
	return n
}

func testAcc(r Run) (float64, bool)  { return r.Final().TestAccuracy, len(r.Epochs) > 0 }
func testLoss(r Run) (float64, bool) { return r.Final().TestLoss, len(r.Epochs) > 0 }
func updates(r Run) (float64, bool)  { return float64(r.Final().TotalUpdates), len(r.Epochs) > 0 }

func gap(r Run) (float64, bool) {
	if r.FinalTrainAccuracy == nil || len(r.Epochs) == 0 {
		return 0, false
	}
	return *r.FinalTrainAccuracy - r.Final().TestAccuracy, true
}

func sharpness(r Run) (float64, bool) {
	if r.Sharpness == nil {
		return 0, false
	}
	return *r.Sharpness, true
}

// perEpoch averages an EpochStats quantity over a run's epochs.
func perEpoch(f func(s epochView) float64) func(Run) (float64, bool) {
	return func(r Run) (float64, bool) {
		if len(r.Epochs) == 0 {
			return 0, false
		}
		var sum float64
		for _, e := range r.Epochs {
			sum += f(epochView{e.Seconds, float64(e.Updates), float64(e.H2DCopies), float64(e.H2DBytes)})
		}
		return sum / float64(len(r.Epochs)), true
	}
}

// epochView is the cost side of an epoch.
type epochView struct{ Seconds, Updates, Copies, Bytes float64 }

// grade is the verdict of a rule: reproduced when its full condition holds,
// partly when only its weaker one does, not reproduced otherwise.
func grade(reproduced, partly bool) string {
	switch {
	case reproduced:
		return Reproduced
	case partly:
		return Partly
	}
	return NotReproduced
}

// margin is the difference two means must exceed to count: twice their
// combined spread, and never less than floor.
func margin(a, b stat, floor float64) float64 {
	return math.Max(floor, 2*math.Hypot(a.std, b.std))
}

// sweepEnds is the smallest and largest batch of the fixed-LR sweep.
func sweepEnds(runs []Run) (small, large int, ok bool) {
	var fixed []Run
	for _, r := range runs {
		if r.Experiment == FixedLR {
			fixed = append(fixed, r)
		}
	}
	bs := batchesOf(fixed)
	if len(bs) < 2 {
		return 0, 0, false
	}
	return bs[0], bs[len(bs)-1], true
}

// (a) Rule: reproduced when the largest batch's final test loss exceeds the
// smallest's by more than the margin and its accuracy is lower.
func judgeFixedLR(e *evidence) (verdict, measured string) {
	runs, small, large := e.runs, e.small, e.large
	var parts []string
	for _, b := range batchesOf(filter(runs, FixedLR)) {
		l, a := measure(runs, FixedLR, "none", b, testLoss), measure(runs, FixedLR, "none", b, testAcc)
		if l.ok() {
			parts = append(parts, fmt.Sprintf("B=%d: test loss %s, accuracy %s", b, l, a.pct()))
			e.numbers[fmt.Sprintf("test_loss_b%d", b)] = l.mean
			e.numbers[fmt.Sprintf("test_acc_b%d", b)] = a.mean
		} else {
			parts = append(parts, fmt.Sprintf("B=%d: no finished run", b))
		}
	}
	ls, ll := measure(runs, FixedLR, "none", small, testLoss), measure(runs, FixedLR, "none", large, testLoss)
	as, al := measure(runs, FixedLR, "none", small, testAcc), measure(runs, FixedLR, "none", large, testAcc)
	measured = strings.Join(parts, "; ")
	if !ls.ok() || !ll.ok() {
		return Inconclusive, measured
	}
	// partly: worse, but within the noise
	return grade(ll.mean-ls.mean > margin(ls, ll, 0.005) && al.mean < as.mean, ll.mean > ls.mean), measured
}

func filter(runs []Run, exp string) []Run {
	var out []Run
	for _, r := range runs {
		if r.Experiment == exp {
			out = append(out, r)
		}
	}
	return out
}

// (b) Rule: the accuracy gap between the smallest and the largest batch at a
// fixed LR must exceed the margin (else there is nothing to close:
// inconclusive). A scaling rule closes a fraction 1 − gap_rule/gap_fixed of
// it, at the largest batch where it did not diverge; reproduced when the
// better rule closes at least half, partly when it closes some.
func judgeLRScaling(e *evidence) (verdict, measured string) {
	runs, small, large := e.runs, e.small, e.large
	base := measure(runs, FixedLR, "none", small, testAcc)
	fixedLarge := measure(runs, FixedLR, "none", large, testAcc)
	if !base.ok() || !fixedLarge.ok() {
		return Inconclusive, "the fixed-LR runs at the ends of the sweep did not finish"
	}
	gapFixed := base.mean - fixedLarge.mean
	e.numbers["gap_fixed"] = gapFixed
	parts := []string{fmt.Sprintf("fixed LR: accuracy %s at B=%d vs %s at B=%d (gap %.2f points)", base.pct(), small, fixedLarge.pct(), large, 100*gapFixed)}
	best := math.Inf(-1)
	for _, rule := range []string{"linear", "sqrt"} {
		bs := batchesOf(filter(runs, LRScaling))
		slices.Reverse(bs)
		for _, b := range bs { // the largest batch where the rule held
			a := measure(runs, LRScaling, rule, b, testAcc)
			if !a.ok() {
				if n := diverged(runs, LRScaling, rule, b); n > 0 {
					parts = append(parts, fmt.Sprintf("%s: diverged at B=%d (%d run(s))", rule, b, n))
				}
				continue
			}
			fixedAtB := measure(runs, FixedLR, "none", b, testAcc)
			g := base.mean - a.mean
			closed := math.NaN()
			if gf := base.mean - fixedAtB.mean; fixedAtB.ok() && gf > 0 {
				closed = 1 - g/gf
			}
			parts = append(parts, fmt.Sprintf("%s: accuracy %s at B=%d (gap %.2f points, %.0f%% of the fixed-LR gap there closed)", rule, a.pct(), b, 100*g, 100*closed))
			e.numbers["closed_"+rule] = closed
			e.numbers[fmt.Sprintf("acc_%s_b%d", rule, b)] = a.mean
			if b == large && !math.IsNaN(closed) {
				best = math.Max(best, closed)
			}
			break
		}
	}
	measured = strings.Join(parts, "; ")
	if gapFixed <= margin(base, fixedLarge, 0.005) {
		return Inconclusive, measured // no gap at a fixed LR to close
	}
	// best is -Inf when neither rule held at the largest batch
	return grade(best >= 0.5, best > 0), measured
}

// (c) Rule: reproduced when the increase-batch schedule's final accuracy is
// within the margin (at least 0.5 points) of step decay's and it needs at
// most 60% of the updates; partly when only one of the two holds.
func judgeIncreaseBatch(e *evidence) (verdict, measured string) {
	runs := e.runs
	ad, ai := measure(runs, Schedule, "step-decay", 0, testAcc), measure(runs, Schedule, "increase-batch", 0, testAcc)
	ud, ui := measure(runs, Schedule, "step-decay", 0, updates), measure(runs, Schedule, "increase-batch", 0, updates)
	if !ad.ok() || !ai.ok() {
		return Inconclusive, "the schedule runs did not finish"
	}
	e.numbers["acc_decay"], e.numbers["acc_increase"] = ad.mean, ai.mean
	e.numbers["updates_decay"], e.numbers["updates_increase"] = ud.mean, ui.mean
	ratio := ui.mean / ud.mean
	e.numbers["updates_ratio"] = ratio
	measured = fmt.Sprintf("step decay: accuracy %s in %.0f updates; increase-batch: %s in %.0f updates (%.0f%%)",
		ad.pct(), ud.mean, ai.pct(), ui.mean, 100*ratio)
	same := math.Abs(ai.mean-ad.mean) <= margin(ad, ai, 0.005)
	fewer := ratio <= 0.6
	return grade(same && fewer, same || (fewer && ai.mean > ad.mean)), measured
}

// (d) Rule: at a fixed LR, the largest batch's generalization gap (final
// train accuracy − test accuracy) exceeds the smallest's by the margin
// (0.2 points at least), and its sharpness is larger by the margin; both:
// reproduced, one: partly.
func judgeGeneralization(e *evidence) (verdict, measured string) {
	runs, small, large := e.runs, e.small, e.large
	gs, gl := measure(runs, FixedLR, "none", small, gap), measure(runs, FixedLR, "none", large, gap)
	ss, sl := measure(runs, FixedLR, "none", small, sharpness), measure(runs, FixedLR, "none", large, sharpness)
	if !gs.ok() || !gl.ok() || !ss.ok() || !sl.ok() {
		return Inconclusive, "gap or sharpness missing at the ends of the fixed-LR sweep"
	}
	e.numbers["gap_small"], e.numbers["gap_large"] = gs.mean, gl.mean
	e.numbers["sharpness_small"], e.numbers["sharpness_large"] = ss.mean, sl.mean
	measured = fmt.Sprintf("B=%d: gap %.2f points, sharpness %s; B=%d: gap %.2f points, sharpness %s",
		small, 100*gs.mean, ss, large, 100*gl.mean, sl)
	wider := gl.mean-gs.mean > margin(gs, gl, 0.002)
	sharper := sl.mean-ss.mean > margin(ss, sl, 0)
	return grade(wider && sharper, wider || sharper), measured
}

// (e) Rule: there must be a large-batch gap (LB below SB by the margin, else
// inconclusive); reproduced when LB+GBN+RA comes within the margin of SB,
// partly when it improves on LB by the margin without reaching SB.
func judgeRegime(e *evidence) (verdict, measured string) {
	runs := e.runs
	sb, lb := measure(runs, Regime, "SB", 0, testAcc), measure(runs, Regime, "LB", 0, testAcc)
	gbn, ra := measure(runs, Regime, "LB+GBN", 0, testAcc), measure(runs, Regime, "LB+GBN+RA", 0, testAcc)
	if !sb.ok() || !lb.ok() || !ra.ok() {
		return Inconclusive, "the regime runs did not finish"
	}
	e.numbers["acc_sb"], e.numbers["acc_lb"], e.numbers["acc_lb_gbn_ra"] = sb.mean, lb.mean, ra.mean
	measured = fmt.Sprintf("SB %s, LB %s, LB+GBN %s, LB+GBN+RA %s (test accuracy)", sb.pct(), lb.pct(), gbn.pct(), ra.pct())
	if gbn.ok() {
		e.numbers["acc_lb_gbn"] = gbn.mean
	}
	if sb.mean-lb.mean <= margin(sb, lb, 0.002) {
		return Inconclusive, measured // no large-batch gap in these runs
	}
	return grade(sb.mean-ra.mean <= margin(sb, ra, 0.002), ra.mean-lb.mean > margin(lb, ra, 0.002)), measured
}

// (f) Rule: from the smallest to the largest batch of the fixed-LR sweep,
// updates and host→device copies per epoch fall at least in proportion to
// half the batch ratio, and the time per epoch falls too: reproduced; fewer
// copies but no faster epochs: partly.
func judgeCost(e *evidence) (verdict, measured string) {
	runs, small, large := e.runs, e.small, e.large
	var parts []string
	view := func(b int, pick func(epochView) float64) stat {
		return measure(runs, FixedLR, "none", b, perEpoch(pick))
	}
	for _, b := range batchesOf(filter(runs, FixedLR)) {
		s := view(b, func(e epochView) float64 { return e.Seconds })
		if !s.ok() {
			continue
		}
		u := view(b, func(e epochView) float64 { return e.Updates })
		c := view(b, func(e epochView) float64 { return e.Copies })
		by := view(b, func(e epochView) float64 { return e.Bytes })
		parts = append(parts, fmt.Sprintf("B=%d: %.0f updates, %.0f copies, %.1f MB, %s s per epoch", b, u.mean, c.mean, by.mean/1e6, s))
		e.numbers[fmt.Sprintf("seconds_b%d", b)] = s.mean
		e.numbers[fmt.Sprintf("copies_b%d", b)] = c.mean
		e.numbers[fmt.Sprintf("updates_b%d", b)] = u.mean
	}
	measured = strings.Join(parts, "; ")
	ss, sl := view(small, func(e epochView) float64 { return e.Seconds }), view(large, func(e epochView) float64 { return e.Seconds })
	cs, cl := view(small, func(e epochView) float64 { return e.Copies }), view(large, func(e epochView) float64 { return e.Copies })
	if !ss.ok() || !sl.ok() {
		return Inconclusive, measured
	}
	fewerCopies := cl.mean*float64(large)/float64(small)/2 <= cs.mean
	faster := sl.mean < ss.mean-margin(ss, sl, 0)
	return grade(fewerCopies && faster, fewerCopies), measured
}

// (g) The critical batch, measured: for each batch size, the updates S(B)
// the best of its runs (fixed LR, linear or sqrt scaling, mean over seeds)
// needs to bring the smoothed training loss down to a target, the loss the
// largest batch's best run ends at. McCandlish et al. model
// S(B) = S_min·(1 + B_crit/B): a least-squares line S = a + b/B gives
// B_crit = b/a. Rule: reproduced when the measured noise scale B_simple (its
// last estimate) is within a factor 3 of B_crit, partly within a factor 10.
func judgeNoiseScale(e *evidence) (verdict, measured string) {
	runs := e.runs
	var bSimple float64
	for _, r := range filter(runs, Noise) {
		if n := len(r.Noise); n > 0 && r.Error == "" {
			bSimple = r.Noise[n-1].BSimple
		}
	}
	if !(bSimple > 0) || math.IsInf(bSimple, 0) {
		return Inconclusive, "no noise-scale estimate"
	}
	e.numbers["b_simple"] = bSimple
	bCrit, steps, ok := criticalBatch(runs)
	parts := []string{fmt.Sprintf("B_simple = %.0f", bSimple)}
	for _, b := range sortedKeys(steps) {
		parts = append(parts, fmt.Sprintf("B=%d reaches the target in %.0f updates", b, steps[b]))
		e.numbers[fmt.Sprintf("steps_b%d", b)] = steps[b]
	}
	if !ok {
		measured = strings.Join(parts, "; ") + "; too few batch sizes reach the target loss to fit B_crit"
		return Inconclusive, measured
	}
	e.numbers["b_crit"] = bCrit
	parts = append(parts, fmt.Sprintf("fit of S(B) = S_min(1 + B_crit/B): B_crit = %.0f", bCrit))
	measured = strings.Join(parts, "; ")
	ratio := math.Max(bSimple/bCrit, bCrit/bSimple)
	return grade(ratio <= 3, ratio <= 10), measured
}

// criticalBatch measures S(B) over the sweeps and fits B_crit; ok is false
// with fewer than three batch sizes reaching the target or a fit that makes
// no sense (S_min ≤ 0 or B_crit ≤ 0).
func criticalBatch(runs []Run) (bCrit float64, steps map[int]float64, ok bool) {
	type key struct {
		exp, variant string
	}
	sweeps := []key{{FixedLR, "none"}, {LRScaling, "linear"}, {LRScaling, "sqrt"}}
	var sweepRuns []Run
	for _, k := range sweeps {
		for _, r := range runs {
			if r.Experiment == k.exp && r.Variant == k.variant && !r.Diverged && r.Error == "" && len(r.Epochs) > 0 {
				sweepRuns = append(sweepRuns, r)
			}
		}
	}
	batches := batchesOf(sweepRuns)
	if len(batches) == 0 {
		return 0, nil, false
	}
	largest := batches[len(batches)-1]
	target := math.Inf(1)
	for _, r := range sweepRuns {
		if r.Batch == largest {
			target = math.Min(target, finalSmoothed(r))
		}
	}
	steps = map[int]float64{}
	for _, b := range batches {
		best := math.Inf(1)
		for _, k := range sweeps {
			var sum float64
			n, all := 0, true
			for _, r := range sweepRuns {
				if r.Batch != b || r.Experiment != k.exp || r.Variant != k.variant {
					continue
				}
				s := stepsToLoss(r, target)
				if s < 0 {
					all = false
					break
				}
				sum += float64(s)
				n++
			}
			if all && n > 0 {
				best = math.Min(best, sum/float64(n))
			}
		}
		if !math.IsInf(best, 1) {
			steps[b] = best
		}
	}
	if len(steps) < 3 {
		return 0, steps, false
	}
	// Least squares of S against x = 1/B.
	var sx, sy, sxx, sxy float64
	for b, s := range steps {
		x := 1 / float64(b)
		sx, sy, sxx, sxy = sx+x, sy+s, sxx+x*x, sxy+x*s
	}
	n := float64(len(steps))
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	intercept := (sy - slope*sx) / n
	if intercept <= 0 || slope <= 0 {
		return 0, steps, false
	}
	return slope / intercept, steps, true
}

// smoothed is the per-step training loss of a run, all epochs in a row,
// averaged over a trailing window of a tenth of an epoch (at least 1 step):
// single small batches are too noisy to say when a loss is reached.
func smoothed(r Run) []float64 {
	var raw []float64
	for _, e := range r.Epochs {
		for _, l := range e.StepLosses {
			raw = append(raw, float64(l))
		}
	}
	w := max(1, r.Epochs[0].Updates/10)
	out := make([]float64, len(raw))
	var sum float64
	for i, v := range raw {
		sum += v
		if i >= w {
			sum -= raw[i-w]
		}
		out[i] = sum / float64(min(i+1, w))
	}
	return out
}

func finalSmoothed(r Run) float64 {
	s := smoothed(r)
	if len(s) == 0 {
		return math.Inf(1)
	}
	return s[len(s)-1]
}

// stepsToLoss is the number of updates after which the smoothed loss first
// reaches target; -1 if it never does.
func stepsToLoss(r Run, target float64) int {
	for i, v := range smoothed(r) {
		if v <= target {
			return i + 1
		}
	}
	return -1
}

func sortedKeys(m map[int]float64) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

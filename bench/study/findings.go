package study

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/batchlab/batchlab/bench/grid"
)

// The findings of the literature and the rule that judges each, as data:
// a claim, its source, the rule in words, the fewest seeds it needs, a judge
// that computes the verdict from the measured numbers by that rule, and the
// experiments it reads. Every rule states its confidence intervals; a rule
// with fewer seeds than it needs, or whose runs are missing or failed, is
// inconclusive, never assumed. A failed run (diverged, collapsed to chance,
// loss not below its start: Run.failure) is named, never averaged. A new
// finding is a new row.
var rules = []rule{
	{"fixed-lr", "With a fixed learning rate, larger batches reach a worse loss in the same number of epochs",
		"Keskar et al. 2017; Goyal et al. 2017",
		"reproduced when the largest batch's test loss exceeds the smallest's (paired by seed, 95 % interval above 0) and its accuracy is lower; partly when the loss is higher on average only",
		3, judgeFixedLR, []string{FixedLR}},
	{"lr-scaling", "Scaling the learning rate with the batch (linear rule with warmup, or sqrt rule) closes most of that gap",
		"Goyal et al. 2017; Hoffer et al. 2017",
		"at every batch where a fixed LR falls below the base batch's accuracy by more than the margin (95 % interval above 0), the better rule either stays within the margin of the base (upper bound of the paired gap) or closes at least half of the fixed-LR gap (bootstrap interval above 0): reproduced at all such batches, partly at some, not reproduced at none; a rule whose run failed at a batch does not hold there",
		3, judgeLRScaling, []string{FixedLR, LRScaling}},
	{"increase-batch", "Increasing the batch instead of decaying the learning rate gives the same test accuracy with far fewer updates",
		"Smith et al. 2018",
		"reproduced when increase-batch's accuracy is equivalent to step decay's (the paired 95 % interval inside ±0.5 points), it needs at most 60 % of the updates, and the constant-LR control is worse than step decay (the schedule mattered); partly when only the first two hold, or one of them",
		3, judgeIncreaseBatch, []string{Schedule}},
	{"generalization", "Large batches generalize worse: trained to the same training accuracy, the large batch has a lower test accuracy and sits in a sharper minimum",
		"Keskar et al. 2017",
		"inconclusive unless every SB and LB run reached the target training accuracy; reproduced when SB's test accuracy is higher (paired 95 % interval above 0) and LB is sharper by both measures (Keskar's φ and the Hessian's top eigenvalue, paired intervals above 0); partly when some of these hold",
		3, judgeGeneralization, []string{Keskar}},
	{"regime", "The gap comes from too few updates: ghost batch norm and regime adaptation (as many updates as the small batch) close it",
		"Hoffer et al. 2017",
		"inconclusive without a large-batch gap (SB − LB, paired 95 % interval above 0); reproduced when LB+GBN+RA comes within 0.5 points of SB (upper bound of the paired gap), partly when it improves on LB (interval above 0)",
		3, judgeRegime, []string{Regime}},
	{"cost", "Larger batches mean fewer updates and fewer host-to-device copies, so they reach a test accuracy sooner",
		"Goyal et al. 2017; McCandlish et al. 2018",
		"time to the target test accuracy against the smallest batch, paired by seed (geometric mean of the ratios, 95 % t-interval of their logs): a batch is cheaper when the interval lies below 1, slower when above; a batch that did not reach the target is not cheaper. Reproduced when every larger batch is cheaper, partly when some is, not reproduced when none",
		3, judgeCost, []string{Cost}},
	{"noise-scale", "The gradient noise scale B_simple predicts the critical batch size",
		"McCandlish et al. 2018",
		"B_simple/B_crit at each training-loss target, with the ratio's interval from the two intervals by Zou and Donner's MOVER on the log scale (grid.CompareNoise): within a factor 3 when the interval lies within [1/10, 10] and the ratio within [1/3, 3], within a factor 10 when the interval lies within [1/10, 10] and the ratio does not, beyond a factor 10 when the whole interval lies beyond, unresolved when it reaches past a factor 10 on either side (the seeds cannot tell). Reproduced when every resolved target is within a factor 3, not reproduced when every one is beyond a factor 10, partly otherwise, inconclusive with none resolved. With the plan's grid (bench/grid): at every target where the fit S(B) = S_min(1 + B_crit/B) over the best LR per batch locates B_crit (expanded percentile bootstrap over seeds) and the noise runs measured B_simple (both moments averaged before the ratio; two-stage bootstrap over seeds and the pairs within them, expanded percentiles). Without a grid, an estimate at one target: B_crit from S(B) of the sweeps' untuned LRs to the loss the largest batch ends at (expanded percentile bootstrap over seeds), B_simple where the noise run's loss reaches it (geometric mean over seeds with the 95 % t-interval of its logarithms taken back, exp(mean ln ± t·se): positive, as B_simple is)",
		3, judgeNoiseScale, []string{Noise, FixedLR, LRScaling, Grid}},
}

// rule is one finding and how it is judged.
type rule struct {
	id, claim, source string
	text              string // the rule, in words
	minSeeds          int
	judge             func(e *evidence) (verdict, measured string)
	experiments       []string // whose runs it reads: a missing one leaves it undecided
}

// evidence is what a judge reads, and where it puts the numbers, intervals
// and caveats behind its verdict.
type evidence struct {
	runs []Run
	plan Preset
	grid *grid.Analysis // the plan's grid, nil without one
	f    *Finding
}

// use records an interval the verdict rests on; the finding's seeds are
// the fewest any of them had.
func (e *evidence) use(name string, iv Interval) Interval {
	e.f.Intervals[name] = iv
	if e.f.Seeds == 0 || iv.N < e.f.Seeds {
		e.f.Seeds = iv.N
	}
	return iv
}

func (e *evidence) caveat(format string, a ...any) {
	e.f.Caveats = append(e.f.Caveats, fmt.Sprintf(format, a...))
}

// values is metric by seed over the healthy runs of an experiment's variant
// at a batch size (0: any); the failed ones, and those whose protocol's
// target was not met, become caveats.
func (e *evidence) values(exp, variant string, batch int, metric func(Run) (float64, bool)) map[uint64]float64 {
	out := map[uint64]float64{}
	for _, r := range e.runs {
		if r.Experiment != exp || r.Variant != variant || (batch != 0 && r.Batch != batch) {
			continue
		}
		switch why := r.failure(); {
		case r.Error != "" && !r.Diverged:
			e.caveat("%s failed: %s", r.ID, r.Error)
		case why != "":
			e.caveat("%s failed: %s", r.ID, why)
		case !r.Converged():
			e.caveat("%s did not reach its target (%s) within %d epochs", r.ID, r.Protocol, len(r.Epochs))
		default:
			if v, ok := metric(r); ok && !math.IsNaN(v) && !math.IsInf(v, 0) {
				out[r.Seed] = v
			}
		}
	}
	return out
}

// judge turns the runs into the findings table, one finding per rule.
func judge(r *Results) []Finding {
	var out []Finding
	for _, rl := range rules {
		out = append(out, rl.apply(r.Runs, r.Preset, r.Grid))
	}
	return out
}

func (rl rule) apply(runs []Run, p Preset, g *grid.Analysis) Finding {
	f := Finding{ID: rl.id, Claim: rl.claim, Source: rl.source, Rule: rl.text, MinSeeds: rl.minSeeds,
		Protocol: protocolsOf(runs, rl.experiments), Numbers: map[string]float64{}, Intervals: map[string]Interval{}}
	e := &evidence{runs: runs, plan: p, grid: g, f: &f}
	f.Verdict, f.Measured = rl.judge(e)
	if f.Verdict != Inconclusive && f.Seeds < rl.minSeeds {
		e.caveat("%d seeds where the rule needs %d: the verdict would have been %q", f.Seeds, rl.minSeeds, f.Verdict)
		f.Verdict = Inconclusive
	}
	return f
}

// protocolsOf says in words how the runs of the experiments trained.
func protocolsOf(runs []Run, exps []string) string {
	var parts []string
	for _, exp := range exps {
		var seen []string
		for _, r := range filter(runs, exp) {
			if s := r.Protocol.String(); !slices.Contains(seen, s) {
				seen = append(seen, s)
			}
		}
		if len(seen) > 0 {
			parts = append(parts, exp+": "+strings.Join(seen, ", "))
		}
	}
	return strings.Join(parts, "; ")
}

// stat is a mean and standard deviation over seeds.
type stat struct {
	mean, std float64
	n         int
}

func (s stat) ok() bool { return s.n > 0 }

// measure collects metric over the healthy runs (finished, not failed) of
// an experiment's variant at a batch size; batch 0 matches any. (The
// report's tables; the verdicts take values by seed, to pair them.)
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

func hessianTop(r Run) (float64, bool) {
	if r.HessianTop == nil {
		return 0, false
	}
	return *r.HessianTop, true
}

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

func filter(runs []Run, exp string) []Run {
	var out []Run
	for _, r := range runs {
		if r.Experiment == exp {
			out = append(out, r)
		}
	}
	return out
}

// pts formats an interval of accuracies or their differences in points.
func pts(iv Interval) string { return iv.as(points) }

// (a) fixed LR: the ends of the sweep, paired by seed.
func judgeFixedLR(e *evidence) (verdict, measured string) {
	bs := batchesOf(filter(e.runs, FixedLR))
	if len(bs) < 2 {
		return Inconclusive, "the fixed-LR sweep has fewer than two batch sizes"
	}
	var parts []string
	for _, b := range bs {
		l, a := tInterval(valuesOf(e.values(FixedLR, "none", b, testLoss))), tInterval(valuesOf(e.values(FixedLR, "none", b, testAcc)))
		if l.N > 0 {
			parts = append(parts, fmt.Sprintf("B=%d: test loss %s, accuracy %s %%", b, l.as(lossQ), pts(a)))
			e.f.Numbers[fmt.Sprintf("test_loss_b%d", b)] = l.Mean
			e.f.Numbers[fmt.Sprintf("test_acc_b%d", b)] = a.Mean
		} else {
			parts = append(parts, fmt.Sprintf("B=%d: no healthy run", b))
		}
	}
	small, large := bs[0], bs[len(bs)-1]
	dl := e.use("test_loss_diff", pairedDiff(e.values(FixedLR, "none", large, testLoss), e.values(FixedLR, "none", small, testLoss)))
	da := e.use("test_acc_diff", pairedDiff(e.values(FixedLR, "none", large, testAcc), e.values(FixedLR, "none", small, testAcc)))
	parts = append(parts, fmt.Sprintf("B=%d − B=%d, paired: test loss %s, accuracy %s points", large, small, dl.as(lossQ), pts(da)))
	measured = strings.Join(parts, "; ")
	if dl.N == 0 {
		return Inconclusive, measured
	}
	return grade(dl.Above(0) && da.Mean < 0, dl.Mean > 0), measured
}

// (b) LR scaling: every batch of the sweep scored against the base batch.
func judgeLRScaling(e *evidence) (verdict, measured string) {
	fixed := filter(e.runs, FixedLR)
	bs := batchesOf(fixed)
	if len(bs) < 2 {
		return Inconclusive, "the fixed-LR sweep has fewer than two batch sizes"
	}
	margin := e.plan.ScalingMargin
	base := bs[0]
	accBase := e.values(FixedLR, "none", base, testAcc)
	var rulesSeen []string
	for _, r := range filter(e.runs, LRScaling) {
		if !slices.Contains(rulesSeen, r.Variant) {
			rulesSeen = append(rulesSeen, r.Variant)
		}
	}
	parts := []string{fmt.Sprintf("margin %s below B=%d's accuracy %s %%", points.with(margin), base, pts(tInterval(valuesOf(accBase))))}
	// kept: the largest batch up to which every batch stays within the margin
	kept := map[string]int{"fixed": base}
	keep := func(k string, b int, within bool) {
		if last, ok := kept[k]; within && (ok && last == bs[slices.Index(bs, b)-1] || !ok && b == bs[1]) {
			kept[k] = b
		}
	}
	gapBatches, held := 0, 0
	for _, b := range bs[1:] {
		fixedGap := e.use(fmt.Sprintf("fixed_gap_b%d", b), pairedDiff(accBase, e.values(FixedLR, "none", b, testAcc)))
		keep("fixed", b, fixedGap.N > 1 && fixedGap.Hi <= margin)
		line := fmt.Sprintf("B=%d: fixed LR %s points below", b, pts(fixedGap))
		significant := fixedGap.Above(0) && fixedGap.Mean > margin
		ok := false
		for _, rule := range rulesSeen {
			accRule := e.values(LRScaling, rule, b, testAcc)
			if len(accRule) < countRuns(e.runs, LRScaling, rule, b) || len(accRule) == 0 {
				line += fmt.Sprintf(", %s failed", rule)
				continue
			}
			g := e.use(fmt.Sprintf("gap_%s_b%d", rule, b), pairedDiff(accBase, accRule))
			e.f.Numbers[fmt.Sprintf("acc_%s_b%d", rule, b)] = tInterval(valuesOf(accRule)).Mean
			within := g.N > 1 && g.Hi <= margin
			keep(rule, b, within)
			line += fmt.Sprintf(", %s %s points below", rule, pts(g))
			if significant {
				closed := closedFraction(e.values(FixedLR, "none", b, testAcc), accRule, accBase)
				e.use(fmt.Sprintf("closed_%s_b%d", rule, b), closed)
				switch {
				case math.IsNaN(closed.Mean):
				case closed.Mean < 0:
					e.f.Numbers[fmt.Sprintf("closed_%s_b%d", rule, b)] = closed.Mean
					line += " (wider than the fixed-LR gap: none of it closed)"
				default:
					e.f.Numbers[fmt.Sprintf("closed_%s_b%d", rule, b)] = closed.Mean
					line += fmt.Sprintf(" (%s %% of the fixed-LR gap closed)", closed.as(share))
				}
				if within || (closed.Mean >= 0.5 && closed.Above(0)) {
					ok = true
				}
			}
		}
		parts = append(parts, line)
		if significant {
			gapBatches++
			if ok {
				held++
			}
		}
	}
	for _, k := range append([]string{"fixed"}, rulesSeen...) {
		b, ok := kept[k]
		if !ok {
			parts = append(parts, fmt.Sprintf("%s keeps no batch above B=%d within the margin", k, base))
			continue
		}
		e.f.Numbers["largest_kept_"+k] = float64(b)
		parts = append(parts, fmt.Sprintf("largest batch %s keeps within the margin: %d", k, b))
	}
	measured = strings.Join(parts, "; ")
	if gapBatches == 0 {
		e.caveat("a fixed LR stays within the margin at every batch: there is no gap to close")
		return Inconclusive, measured
	}
	return grade(held == gapBatches, held > 0), measured
}

func valuesOf(m map[uint64]float64) []float64 {
	var out []float64
	for _, s := range sortedSeeds(m) {
		out = append(out, m[s])
	}
	return out
}

// countRuns counts the runs of a variant at a batch, healthy or not.
func countRuns(runs []Run, exp, variant string, batch int) int {
	n := 0
	for _, r := range runs {
		if r.Experiment == exp && r.Variant == variant && r.Batch == batch {
			n++
		}
	}
	return n
}

// closedFraction is 1 − gap_rule/gap_fixed, the gaps as means over the
// seeds all three have, with a bootstrap interval over those seeds.
func closedFraction(fixed, rule, base map[uint64]float64) Interval {
	var seeds []uint64
	for _, s := range sortedSeeds(base) {
		if _, ok := fixed[s]; ok {
			if _, ok := rule[s]; ok {
				seeds = append(seeds, s)
			}
		}
	}
	return bootstrap(len(seeds), func(units []int) (float64, bool) {
		var gf, gr float64
		for _, u := range units {
			s := seeds[u]
			gf += base[s] - fixed[s]
			gr += base[s] - rule[s]
		}
		if gf <= 0 {
			return 0, false
		}
		return 1 - gr/gf, true
	})
}

// equivalenceMargin: two accuracies within half a point are "the same".
const equivalenceMargin = 0.005

// (c) increase-batch against step decay, with the constant-LR control.
func judgeIncreaseBatch(e *evidence) (verdict, measured string) {
	decay, inc := e.values(Schedule, "step-decay", 0, testAcc), e.values(Schedule, "increase-batch", 0, testAcc)
	if len(decay) == 0 || len(inc) == 0 {
		return Inconclusive, "the schedule runs did not finish"
	}
	d := e.use("acc_increase_minus_decay", pairedDiff(inc, decay))
	ud, ui := measure(e.runs, Schedule, "step-decay", 0, updates), measure(e.runs, Schedule, "increase-batch", 0, updates)
	ratio := ui.mean / ud.mean
	e.f.Numbers["acc_decay"], e.f.Numbers["acc_increase"] = tInterval(valuesOf(decay)).Mean, tInterval(valuesOf(inc)).Mean
	e.f.Numbers["updates_decay"], e.f.Numbers["updates_increase"], e.f.Numbers["updates_ratio"] = ud.mean, ui.mean, ratio
	measured = fmt.Sprintf("step decay: accuracy %s %% in %s updates; increase-batch: %s %% in %s updates (%s); increase − decay %s points, paired",
		pts(tInterval(valuesOf(decay))), countQ.format(ud.mean), pts(tInterval(valuesOf(inc))), countQ.format(ui.mean), share.with(ratio), pts(d))
	same := d.N > 1 && d.Lo >= -equivalenceMargin && d.Hi <= equivalenceMargin
	fewer := ratio <= 0.6
	control := true
	if cons := e.values(Schedule, "constant", 0, testAcc); len(cons) > 0 {
		c := e.use("acc_decay_minus_constant", pairedDiff(decay, cons))
		measured += fmt.Sprintf("; constant LR (the control) %s %%, step decay − constant %s points", pts(tInterval(valuesOf(cons))), pts(c))
		if control = c.Above(0); !control {
			e.caveat("the constant-LR control is not worse than step decay: at this length the schedule did not matter, so the comparison says little")
		}
	}
	return grade(same && fewer && control, same || (fewer && d.Mean > 0)), measured
}

// (d) Keskar et al.: SB and LB at the target training accuracy.
func judgeGeneralization(e *evidence) (verdict, measured string) {
	runs := filter(e.runs, Keskar)
	if len(runs) == 0 {
		return Inconclusive, "no Keskar runs"
	}
	var sbBatch, lbBatch int
	converged := true
	for _, r := range runs {
		if r.Variant == "SB" {
			sbBatch = r.Batch
		} else {
			lbBatch = r.Batch
		}
		converged = converged && r.Converged() && r.failure() == "" && r.Error == ""
	}
	acc := e.use("test_acc_sb_minus_lb", pairedDiff(e.values(Keskar, "SB", 0, testAcc), e.values(Keskar, "LB", 0, testAcc)))
	phi := e.use("sharpness_lb_minus_sb", pairedDiff(e.values(Keskar, "LB", 0, sharpness), e.values(Keskar, "SB", 0, sharpness)))
	lam := e.use("hessian_top_lb_minus_sb", pairedDiff(e.values(Keskar, "LB", 0, hessianTop), e.values(Keskar, "SB", 0, hessianTop)))
	var parts []string
	for _, v := range []struct {
		name  string
		batch int
	}{{"SB", sbBatch}, {"LB", lbBatch}} {
		tr := tInterval(valuesOf(e.values(Keskar, v.name, 0, trainAcc)))
		te := tInterval(valuesOf(e.values(Keskar, v.name, 0, testAcc)))
		ph := tInterval(valuesOf(e.values(Keskar, v.name, 0, sharpness)))
		la := tInterval(valuesOf(e.values(Keskar, v.name, 0, hessianTop)))
		ep := measure(e.runs, Keskar, v.name, 0, func(r Run) (float64, bool) { return float64(len(r.Epochs)), true })
		parts = append(parts, fmt.Sprintf("%s (B=%d): train accuracy %s %%, test %s %% after %s epochs, sharpness φ %s %%, λ_max %s",
			v.name, v.batch, tr.as(accuracy), te.as(accuracy), countQ.format(ep.mean), ph.as(sharpnessQ), la.as(general)))
		e.f.Numbers["test_acc_"+strings.ToLower(v.name)] = te.Mean
		e.f.Numbers["sharpness_"+strings.ToLower(v.name)] = ph.Mean
		e.f.Numbers["hessian_top_"+strings.ToLower(v.name)] = la.Mean
	}
	parts = append(parts, fmt.Sprintf("SB − LB test accuracy %s points; LB − SB: φ %s %%, λ_max %s (paired by seed)", pts(acc), phi.as(sharpnessQ), lam.as(general)))
	measured = strings.Join(parts, "; ")
	if !converged {
		return Inconclusive, measured // values() named the runs that did not reach the target
	}
	worse, sharper, sharperHessian := acc.Above(0), phi.Above(0), lam.Above(0)
	return grade(worse && sharper && sharperHessian, worse || sharper || sharperHessian), measured
}

// (e) Hoffer et al.'s regimes, paired by seed.
func judgeRegime(e *evidence) (verdict, measured string) {
	sb, lb := e.values(Regime, "SB", 0, testAcc), e.values(Regime, "LB", 0, testAcc)
	gbn, ra := e.values(Regime, "LB+GBN", 0, testAcc), e.values(Regime, "LB+GBN+RA", 0, testAcc)
	if len(sb) == 0 || len(lb) == 0 || len(ra) == 0 {
		return Inconclusive, "the regime runs did not finish"
	}
	gapLB := e.use("sb_minus_lb", pairedDiff(sb, lb))
	gapRA := e.use("sb_minus_lb_gbn_ra", pairedDiff(sb, ra))
	gain := e.use("lb_gbn_ra_minus_lb", pairedDiff(ra, lb))
	for k, m := range map[string]map[uint64]float64{"acc_sb": sb, "acc_lb": lb, "acc_lb_gbn": gbn, "acc_lb_gbn_ra": ra} {
		if len(m) > 0 {
			e.f.Numbers[k] = tInterval(valuesOf(m)).Mean
		}
	}
	measured = fmt.Sprintf("test accuracy SB %s %%, LB %s %%, LB+GBN %s %%, LB+GBN+RA %s %%; SB − LB %s, SB − LB+GBN+RA %s points (paired)",
		pts(tInterval(valuesOf(sb))), pts(tInterval(valuesOf(lb))), pts(tInterval(valuesOf(gbn))), pts(tInterval(valuesOf(ra))), pts(gapLB), pts(gapRA))
	if !gapLB.Above(0) {
		e.caveat("LB is not below SB in these runs: there is no large-batch gap to close")
		return Inconclusive, measured
	}
	return grade(gapRA.N > 1 && gapRA.Hi <= equivalenceMargin, gain.Above(0)), measured
}

// (f) Time to the target test accuracy, paired by seed against the smallest batch.
func judgeCost(e *evidence) (verdict, measured string) {
	runs := filter(e.runs, Cost)
	bs := batchesOf(runs)
	if len(bs) < 2 {
		return Inconclusive, "the cost experiment has fewer than two batch sizes"
	}
	secs := func(r Run) (float64, bool) {
		if r.Reached == nil {
			return 0, false
		}
		return r.Reached.Seconds, true
	}
	var variant string
	for _, r := range runs {
		variant = r.Variant
	}
	base := e.values(Cost, variant, bs[0], secs)
	var parts []string
	cheaper, larger := 0, 0
	for _, b := range bs {
		at := e.values(Cost, variant, b, secs)
		var split [3]float64
		var copies, bytes, upd float64
		n := 0
		for _, r := range runs {
			if r.Batch == b && r.Reached != nil && r.failure() == "" {
				split[0] += r.Reached.TransferSeconds
				split[1] += r.Reached.ComputeSeconds
				split[2] += r.Reached.UpdateSeconds
				copies, bytes, upd = copies+float64(r.Reached.H2DCopies), bytes+float64(r.Reached.H2DBytes), upd+float64(r.Reached.Updates)
				n++
			}
		}
		line := fmt.Sprintf("B=%d: ", b)
		if all := countRuns(e.runs, Cost, variant, b); n < all {
			// not cheaper where some seed never got there: no ratio to pair
			parts = append(parts, fmt.Sprintf("%sdid not reach the target in %d of %d seeds", line, all-n, all))
			if b != bs[0] {
				larger++
			}
			continue
		}
		k := float64(n)
		t := tInterval(valuesOf(at))
		e.f.Numbers[fmt.Sprintf("seconds_b%d", b)] = t.Mean
		e.f.Numbers[fmt.Sprintf("updates_to_target_b%d", b)] = upd / k
		e.f.Numbers[fmt.Sprintf("copies_to_target_b%d", b)] = copies / k
		e.f.Numbers[fmt.Sprintf("bytes_to_target_b%d", b)] = bytes / k
		line += fmt.Sprintf("%s s to the target (transfer %s, compute %s, update %s), %s updates, %s copies, %s",
			t.as(secondsQ), secondsQ.with(split[0]/k), secondsQ.with(split[1]/k), secondsQ.with(split[2]/k), countQ.format(upd/k), countQ.format(copies/k), megabytes.with(bytes/k/1e6))
		if b != bs[0] {
			larger++
			r := e.use(fmt.Sprintf("seconds_ratio_b%d", b), ratioInterval(at, base))
			verdict := "no clear difference"
			switch {
			case r.Below(1):
				verdict, cheaper = "cheaper", cheaper+1
			case r.Above(1):
				verdict = "slower"
			}
			line += fmt.Sprintf("; %s × B=%d's time, paired: %s", r.as(general), bs[0], verdict)
		}
		parts = append(parts, line)
	}
	if first := runs[0].Epochs; len(first) > 0 {
		parts = append(parts, fmt.Sprintf("per epoch the bytes moved are the same at every batch (%s at B=%d); the copies fall as 1/B", megabytes.with(float64(first[0].H2DBytes)/1e6), runs[0].Batch))
	}
	measured = strings.Join(parts, "; ")
	if len(base) == 0 {
		return Inconclusive, measured
	}
	return grade(cheaper == larger, cheaper > 0), measured
}

// (g) The critical batch, measured: for each batch size, the updates S(B)
// the best of its sweeps (fixed LR, linear or sqrt scaling, mean over
// seeds) needs to bring the smoothed training loss down to a target, the
// loss the largest batch's best run ends at. McCandlish et al. model
// S(B) = S_min·(1 + B_crit/B): a least-squares line S = a + b/B gives
// B_crit = b/a, with a bootstrap over seeds. B_simple is read in each noise
// run where its loss first reaches the target; its interval over seeds is
// on the log scale (geometricInterval).
func judgeNoiseScale(e *evidence) (verdict, measured string) {
	if e.grid != nil {
		return judgeNoiseFromGrid(e, e.grid)
	}
	e.caveat("an estimate from one fit: S(B) from the sweeps' untuned LRs, read at one loss, and B_simple from one noise run per seed; a plan with a grid measures B_crit with an LR search at each of several losses (bench/grid)")
	fit, ok := fitCriticalBatch(e.runs)
	var parts []string
	for _, b := range sortedKeys(fit.steps) {
		parts = append(parts, fmt.Sprintf("B=%d reaches the target in %s updates", b, countQ.format(fit.steps[b])))
		e.f.Numbers[fmt.Sprintf("steps_b%d", b)] = fit.steps[b]
	}
	if !ok {
		return Inconclusive, strings.Join(append(parts, "too few batch sizes reach the target loss to fit B_crit"), "; ")
	}
	e.f.Numbers["target_loss"] = fit.target
	bCrit := e.use("b_crit", fit.interval)
	parts = append(parts, fmt.Sprintf("target training loss %s; fit of S(B) = S_min(1 + B_crit/B): B_crit = %s", lossQ.format(fit.target), bCrit.as(batchQ)))
	bs := map[uint64]float64{}
	for _, r := range filter(e.runs, Noise) {
		if len(r.Noise) == 0 || r.Error != "" {
			continue
		}
		pt, ok := bSimpleAt(r, fit.target)
		if !ok {
			pt = r.Noise[len(r.Noise)-1]
			e.caveat("%s never reached the target loss %s (%s at the end): B_simple read at its end", r.ID, lossQ.format(fit.target), lossQ.format(pt.TrainLoss))
		}
		if math.IsInf(pt.BSimple, 0) || math.IsNaN(pt.BSimple) {
			e.caveat("%s: |G|² not estimated positive where B_simple is read: no value from this seed", r.ID)
			continue
		}
		bs[r.Seed] = pt.BSimple
	}
	if len(bs) == 0 {
		return Inconclusive, strings.Join(append(parts, "no noise-scale estimate"), "; ")
	}
	// B_simple = tr(Σ)/|G|² is positive and scatters by a factor over
	// seeds: its interval is on the log scale, unless tr(Σ) was estimated
	// at or below zero in some seed (the estimator is unbiased, not
	// positive), where only the t-interval of the values is left.
	bSimple, positive := geometricInterval(valuesOf(bs))
	which := fmt.Sprintf("geometric mean over seeds, %.0f %% t-interval of ln B_simple", 100*confidence)
	if !positive {
		bSimple, which = tInterval(valuesOf(bs)), fmt.Sprintf("mean over seeds, %.0f %% t-interval", 100*confidence)
		e.caveat("B_simple is not positive in every seed (tr(Σ) estimated at or below 0): its interval is Student's t of the values, arithmetic mean, and a bound at or below 0 says only that B_simple is not resolved")
	}
	bSimple = e.use("b_simple", bSimple)
	e.f.Numbers["b_simple"], e.f.Numbers["b_crit"] = bSimple.Mean, bCrit.Mean
	parts = append(parts, fmt.Sprintf("B_simple at that loss = %s (%s)", bSimple.as(batchQ), which))
	measured = strings.Join(parts, "; ")
	if !(bSimple.Mean > 0) {
		return Inconclusive, measured + "; B_simple's mean is not positive: no ratio to B_crit"
	}
	c := grid.CompareNoise(fit.target, bSimple.Mean, bSimple.Lo, bSimple.Hi, bCrit.Mean, bCrit.Lo, bCrit.Hi)
	e.use("ratio", ratioOf(c, bSimple.N, confidence))
	return noiseVerdict([]string{c.Class}), measured + "; " + describeRatio(c)
}

// ratioOf is comparison c's ratio as an interval of the finding.
func ratioOf(c grid.NoiseComparison, seeds int, level float64) Interval {
	return Interval{Mean: c.Ratio, Lo: float64(c.RatioLo), Hi: float64(c.RatioHi), N: seeds, Level: level, Method: "MOVER of the two intervals, log scale"}
}

// describeRatio is "B_simple/B_crit = r [lo, hi], class" with the reason
// an unresolved ratio is not judged.
func describeRatio(c grid.NoiseComparison) string {
	s := fmt.Sprintf("B_simple/B_crit = %s [%s, %s], %s", general.format(c.Ratio), general.format(float64(c.RatioLo)), general.format(float64(c.RatioHi)), c.Class)
	if c.Class == grid.Unresolved {
		s += ": the interval reaches past a factor 10, so the seeds cannot tell the verdicts apart"
	}
	return s
}

// noiseVerdict is finding (g)'s verdict from the classes of its
// comparisons (grid.CompareNoise), the unresolved ones left out.
func noiseVerdict(classes []string) string {
	count := map[string]int{}
	for _, c := range classes {
		count[c]++
	}
	resolved := len(classes) - count[grid.Unresolved]
	switch {
	case resolved == 0:
		return Inconclusive
	case count[grid.WithinFactor3] == resolved:
		return Reproduced
	case count[grid.BeyondFactor10] == resolved:
		return NotReproduced
	}
	return Partly
}

// criticalFit is the S(B) fit with its bootstrap interval.
type criticalFit struct {
	target   float64
	steps    map[int]float64
	interval Interval
}

// sweepKinds are the sweeps S(B) takes the best of.
var sweepKinds = [][2]string{{FixedLR, "none"}, {LRScaling, "linear"}, {LRScaling, "sqrt"}}

// fitCriticalBatch measures S(B) over the sweeps and fits B_crit; ok is
// false with fewer than three batch sizes reaching the target or a fit
// that makes no sense (S_min ≤ 0 or B_crit ≤ 0).
func fitCriticalBatch(runs []Run) (criticalFit, bool) {
	var sweepRuns []Run
	for _, r := range runs {
		for _, k := range sweepKinds {
			if r.Experiment == k[0] && r.Variant == k[1] && r.failure() == "" && r.Error == "" && len(r.Epochs) > 0 {
				sweepRuns = append(sweepRuns, r)
			}
		}
	}
	fit := criticalFit{steps: map[int]float64{}}
	batches := batchesOf(sweepRuns)
	if len(batches) == 0 {
		return fit, false
	}
	largest := batches[len(batches)-1]
	fit.target = math.Inf(1)
	var seeds []uint64
	for _, r := range sweepRuns {
		if r.Batch == largest {
			fit.target = math.Min(fit.target, finalSmoothed(r))
		}
		if !slices.Contains(seeds, r.Seed) {
			seeds = append(seeds, r.Seed)
		}
	}
	slices.Sort(seeds)
	// steps per run, by batch, sweep and seed
	type key struct {
		batch int
		kind  [2]string
		seed  uint64
	}
	reach := map[key]int{}
	for _, r := range sweepRuns {
		reach[key{r.Batch, [2]string{r.Experiment, r.Variant}, r.Seed}] = stepsToLoss(r, fit.target)
	}
	stepsOf := func(units []int) map[int]float64 {
		out := map[int]float64{}
		for _, b := range batches {
			best := math.Inf(1)
			for _, k := range sweepKinds {
				var sum float64
				n := 0
				for _, u := range units {
					s, ok := reach[key{b, k, seeds[u]}]
					if !ok {
						continue
					}
					if s < 0 {
						n = -1
						break
					}
					sum += float64(s)
					n++
				}
				if n > 0 {
					best = math.Min(best, sum/float64(n))
				}
			}
			if !math.IsInf(best, 1) {
				out[b] = best
			}
		}
		return out
	}
	all := make([]int, len(seeds))
	for i := range all {
		all[i] = i
	}
	fit.steps = stepsOf(all)
	fit.interval = bootstrap(len(seeds), func(units []int) (float64, bool) { return bCritOf(stepsOf(units)) })
	_, ok := bCritOf(fit.steps)
	return fit, ok
}

// bCritOf fits S = a + b/B by least squares: B_crit = b/a.
func bCritOf(steps map[int]float64) (float64, bool) {
	if len(steps) < 3 {
		return 0, false
	}
	var sx, sy, sxx, sxy float64
	for _, b := range sortedKeys(steps) { // in order: the sums come out the same every time
		x, s := 1/float64(b), steps[b]
		sx, sy, sxx, sxy = sx+x, sy+s, sxx+x*x, sxy+x*s
	}
	n := float64(len(steps))
	slope := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	intercept := (sy - slope*sx) / n
	if intercept <= 0 || slope <= 0 {
		return 0, false
	}
	return slope / intercept, true
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

// judgeNoiseFromGrid is (g) from the plan's grid: its comparison of
// B_simple with B_crit (grid.Analysis.NoiseVersusCritical) at every loss
// target where both were measured with intervals.
func judgeNoiseFromGrid(e *evidence, a *grid.Analysis) (verdict, measured string) {
	p := a.Plan
	e.f.Protocol = fmt.Sprintf("grid: constant LR, %s, batches %v, trained until the smoothed training loss reaches %v or %d epochs; the best LR per batch and target",
		p.OptimizerName(), p.Batches, p.Targets, p.MaxEpochs)
	if len(a.Missing) > 0 {
		e.caveat("the grid is partial: %d of its runs have no result yet", len(a.Missing))
	}
	if a.Failed > 0 {
		e.caveat("%d of the grid's %d runs failed (diverged or collapsed): no evidence for their LR", a.Failed, a.Runs)
	}
	comparisons := map[float64]grid.NoiseComparison{}
	for _, c := range a.NoiseVersusCritical() {
		comparisons[c.Target] = c
	}
	parts := []string{fmt.Sprintf("%.0f %% bootstrap intervals over seeds", 100*a.Level)}
	var classes []string
	judged, within := 0, 0
	for _, t := range a.Targets {
		at := fmt.Sprintf("at_loss_%g", t.Target)
		line := fmt.Sprintf("loss %g: ", t.Target)
		var edge []string
		for _, pt := range t.Points {
			if pt.Reached && pt.LREdge {
				edge = append(edge, fmt.Sprintf("B=%d (%g)", pt.Batch, *pt.BestLR))
			}
		}
		if len(edge) > 0 {
			e.caveat("at loss %g the best LR is at the grid's edge for %s: a better one may lie outside it, and S(B) be overestimated there", t.Target, strings.Join(edge, ", "))
		}
		fit, noise := t.Fit, t.Noise
		if fit == nil {
			parts = append(parts, line+"no fit (fewer than 3 batch sizes reached it)")
			continue
		}
		if fit.AtBound {
			parts = append(parts, line+"B_crit not located by these batch sizes (the fit's best is at its search bound)")
			continue
		}
		bCrit := Interval{Mean: fit.BCrit, Lo: float64(fit.BCritLo), Hi: float64(fit.BCritHi), N: fitSeeds(t), Level: a.Level, Method: "expanded percentile bootstrap over seeds, the best LR picked again in each draw"}
		e.f.Numbers["b_crit_"+at], e.f.Numbers["s_min_"+at] = fit.BCrit, fit.SMin
		line += fmt.Sprintf("B_crit = %s", bCrit.as(batchQ))
		if noise == nil || math.IsInf(float64(noise.BSimple), 0) {
			parts = append(parts, line+", B_simple not measured there (no noise run reached it, or |G|² was not estimated positive)")
			continue
		}
		bSimple := Interval{Mean: float64(noise.BSimple), Lo: float64(noise.Lo), Hi: float64(noise.Hi), N: noise.Seeds, Level: a.Level, Method: "expanded percentile bootstrap over seeds and the noise pairs within them"}
		e.f.Numbers["b_simple_"+at] = bSimple.Mean
		line += fmt.Sprintf(", B_simple = %s (%d pairs, %d seeds)", bSimple.as(batchQ), noise.Pairs, noise.Seeds)
		if noise.Seeds < len(p.Seeds) {
			e.caveat("at loss %g, %d of the %d noise runs reached it: B_simple rests on those", t.Target, noise.Seeds, len(p.Seeds))
		}
		c, ok := comparisons[t.Target]
		if !ok || slices.ContainsFunc([]float64{bCrit.Lo, bCrit.Hi, bSimple.Lo, bSimple.Hi}, math.IsNaN) {
			parts = append(parts, line+": an interval is not estimated (fewer than 2 seeds), so this target is not judged")
			continue
		}
		e.use("b_crit_"+at, bCrit)
		e.use("b_simple_"+at, bSimple)
		e.use("ratio_"+at, ratioOf(c, min(bCrit.N, bSimple.N), a.Level))
		e.f.Numbers["ratio_"+at] = c.Ratio
		classes = append(classes, c.Class)
		if c.Class != grid.Unresolved {
			judged++
		}
		if c.Class == grid.WithinFactor3 {
			within++
		}
		parts = append(parts, line+"; "+describeRatio(c))
	}
	e.f.Numbers["targets_judged"], e.f.Numbers["targets_within_factor_3"] = float64(judged), float64(within)
	return noiseVerdict(classes), strings.Join(parts, "; ")
}

// fitSeeds is the fewest seeds behind a batch size of the fit at target t.
func fitSeeds(t grid.TargetResult) int {
	n := 0
	for _, pt := range t.Points {
		if pt.Reached && (n == 0 || pt.Steps.N < n) {
			n = pt.Steps.N
		}
	}
	return n
}

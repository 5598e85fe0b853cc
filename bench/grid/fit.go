package grid

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"

	"github.com/batchlab/batchlab/bench/internal/expanded"
)

// The fit. McCandlish et al.'s S(B) = S_min(1 + B_crit/B) and E(B) =
// E_min(1 + B/B_crit) are one curve: E = B·S, E_min = S_min·B_crit, and
// both say S_min/S + E_min/E = 1. We fit it by nonlinear least squares on
// ln S:
//
//	minimise Σ_B (ln S(B) − ln S_min − ln(1 + B_crit/B))²
//
// because the scatter of steps to a loss over seeds is a fraction of S, not
// a number of steps: S spans two orders of magnitude across the batches, and
// least squares on S itself (or on the linear form in 1/S and 1/E, whose
// errors sit in both variables and grow as 1/S²) would let the few points at
// one end decide B_crit. For a given B_crit the best ln S_min is the mean of
// ln S − ln(1 + B_crit/B), so the fit is a search over ln B_crit alone: a
// scan of a wide bracket, then golden-section refinement (written by hand:
// gonum/optimize has no bounded one-dimensional minimiser).

// Fit is S(B) = S_min(1 + B_crit/B) fitted to measured points.
type Fit struct {
	SMin   float64 `json:"s_min"`
	BCrit  float64 `json:"b_crit"`
	EMin   float64 `json:"e_min"`   // S_min·B_crit
	RMSLog float64 `json:"rms_log"` // root-mean-square residual of ln S
	// AtBound: the best B_crit lies at the edge of the search (100× beyond
	// the batches measured): the data do not locate it.
	AtBound bool `json:"at_bound"`
}

// errFewPoints: two parameters need at least three batch sizes.
var errFewPoints = errors.New("fewer than 3 batch sizes reached the target")

// bracket is how far beyond the measured batches B_crit is searched.
const bracket = 100

// FitSteps fits S(B) to steps[i] at batches[i] (all positive).
func FitSteps(batches, steps []float64) (Fit, error) {
	if len(batches) < 3 {
		return Fit{}, errFewPoints
	}
	lnS := make([]float64, len(steps))
	for i, s := range steps {
		if !(s > 0) || math.IsInf(s, 0) || !(batches[i] > 0) {
			return Fit{}, errors.New("steps and batches must be positive numbers")
		}
		lnS[i] = math.Log(s)
	}
	// sse is the residual sum of squares at ln B_crit = u, with its best ln S_min.
	sse := func(u float64) (float64, float64) {
		c := math.Exp(u)
		var mean float64
		for i, b := range batches {
			mean += lnS[i] - math.Log1p(c/b)
		}
		mean /= float64(len(batches))
		var ss float64
		for i, b := range batches {
			r := lnS[i] - math.Log1p(c/b) - mean
			ss += r * r
		}
		return ss, mean
	}
	lo, hi := math.Log(slices.Min(batches)/bracket), math.Log(slices.Max(batches)*bracket)
	const scan = 60
	step := (hi - lo) / scan
	best, bestSS := 0, math.Inf(1)
	for k := 0; k <= scan; k++ {
		if ss, _ := sse(lo + float64(k)*step); ss < bestSS {
			best, bestSS = k, ss
		}
	}
	a, b := lo+float64(max(best-1, 0))*step, lo+float64(min(best+1, scan))*step
	const phi = 0.6180339887498949
	for b-a > 1e-7 { // ln B_crit to 1e-7
		x1, x2 := b-phi*(b-a), a+phi*(b-a)
		s1, _ := sse(x1)
		s2, _ := sse(x2)
		if s1 < s2 {
			b = x2
		} else {
			a = x1
		}
	}
	u := (a + b) / 2
	ss, lnSMin := sse(u)
	f := Fit{SMin: math.Exp(lnSMin), BCrit: math.Exp(u), RMSLog: math.Sqrt(ss / float64(len(batches))), AtBound: best <= 1 || best >= scan-1}
	f.EMin = f.SMin * f.BCrit
	return f, nil
}

// B20 is Zhang et al.'s (2024) critical batch, model-free: the batch at
// which the samples to the target exceed those of perfect linear scaling
// from the smallest batch measured, E(B₀), by 20 %. It interpolates E/E(B₀)
// linearly in ln B between the last point below 1.2 and the first at or
// above; +Inf when no measured batch gets there. (Under the hyperbola it is
// 0.2·B_crit + 1.2·B₀.) The points are in ascending batch order.
func B20(batches, samples []float64) float64 {
	if len(batches) < 2 {
		return math.NaN()
	}
	e0 := samples[0]
	for i := 1; i < len(batches); i++ {
		r := samples[i] / e0
		if r < 1.2 {
			continue
		}
		rPrev := samples[i-1] / e0
		t := (1.2 - rPrev) / (r - rPrev)
		lb := math.Log(batches[i-1]) + t*(math.Log(batches[i])-math.Log(batches[i-1]))
		return math.Exp(lb)
	}
	return math.Inf(1)
}

// Cells are the measurements a fit reads, per batch size (ascending) and
// learning rate: steps[batch][lr][seed], NaN where the run failed or did
// not reach the target.
type Cells struct {
	Batches []int
	LRs     [][]float64
	Steps   [][][]float64
}

// best is the LR with the fewest mean steps over the seeds chosen (indices,
// repeats allowed) among those whose every chosen seed reached the target:
// its index and mean; -1 when none did.
func best(steps [][]float64, seeds []int) (int, float64) {
	bi, bm := -1, math.Inf(1)
	for li, bySeed := range steps {
		var sum float64
		for _, s := range seeds {
			sum += bySeed[s]
		}
		if m := sum / float64(len(seeds)); m < bm { // false for NaN
			bi, bm = li, m
		}
	}
	return bi, bm
}

// bestCurve is S(B) at the best LR of each batch size for the chosen seeds
// of each: the batches that reached the target and their mean steps.
func (c Cells) bestCurve(seedsOf func(batch int) []int) (batches, steps []float64) {
	for bi, b := range c.Batches {
		if li, m := best(c.Steps[bi], seedsOf(bi)); li >= 0 {
			batches, steps = append(batches, float64(b)), append(steps, m)
		}
	}
	return batches, steps
}

// Interval is a bootstrap percentile interval at Level; Hi is +Inf when
// more than the upper tail of the draws had no finite value (B20 beyond
// the batches measured, a batch that did not reach the target).
type Interval struct {
	Lo, Hi float64
}

// Level is the coverage of every interval the grid reports.
const Level = 0.90

// expandedTail is expanded.Tail at Level: the share of the draws left
// out at each end of an interval over n seeds whose spread rests on nu
// degrees of freedom.
func expandedTail(n int, nu float64) float64 { return expanded.Tail(n, nu, Level) }

// fitDF is the Welch–Satterthwaite degrees of freedom (F. Satterthwaite,
// Biometrics Bulletin 2, 1946; B. Welch, Biometrika 34, 1947) of S_min and
// B_crit fitted to the batches' best-LR mean steps m_b: to first order a
// fitted value is Σ_b g_b·m_b, whose variance Σ_b c_b, c_b = g_b²·s_b²/n_b,
// is estimated from every batch's seeds, with ν = (Σ c_b)² / Σ c_b²/(n_b−1)
// degrees of freedom: n − 1 where one batch decides the value, Σ (n_b − 1)
// where all weigh alike. g_b is a central difference of the refit. ok is
// false without a fit or without scatter.
func (c Cells) fitDF() (sMin, bCrit float64, ok bool) {
	var bs, ms, vs, ns []float64
	for bi, b := range c.Batches {
		n := c.seeds(bi)
		li, m := best(c.Steps[bi], allSeeds(n))
		if li < 0 {
			continue
		}
		var ss float64
		for _, x := range c.Steps[bi][li] {
			ss += (x - m) * (x - m)
		}
		bs, ms, vs, ns = append(bs, float64(b)), append(ms, m), append(vs, ss/float64(n-1)/float64(n)), append(ns, float64(n))
	}
	const h = 1e-4 // relative step of the central difference
	var sum, sq [2]float64
	for i := range bs {
		var q [2][2]float64 // ±h: S_min, B_crit
		for k, sign := range []float64{-1, 1} {
			m := slices.Clone(ms)
			m[i] *= 1 + sign*h
			f, err := FitSteps(bs, m)
			if err != nil {
				return 0, 0, false
			}
			q[k] = [2]float64{f.SMin, f.BCrit}
		}
		for j := range sum {
			g := (q[1][j] - q[0][j]) / (2 * h * ms[i])
			cb := g * g * vs[i]
			sum[j], sq[j] = sum[j]+cb, sq[j]+cb*cb/(ns[i]-1)
		}
	}
	if !(sq[0] > 0 && sq[1] > 0) {
		return 0, 0, false
	}
	return sum[0] * sum[0] / sq[0], sum[1] * sum[1] / sq[1], true
}

// Bootstrapped is what the bootstrap gives: the intervals of S_min, B_crit
// and B20 over the draws that could be fitted (Fitted of them).
type Bootstrapped struct {
	SMin, BCrit, B20 Interval
	Fitted           int
}

// Bootstrap resamples the seeds of each batch size independently (with
// replacement, as many as there are), picks the best LR again in each draw,
// and refits. The rng seed is fixed, so the intervals are reproducible. A
// draw whose fit fails (too few batches reached the target with the seeds
// drawn) adds nothing to the fit's intervals; B20 of a draw that never
// reaches 1.2 is +Inf. The intervals are expanded percentile intervals
// (expandedTail): S_min's and B_crit's at the fewest seeds n of any batch
// and their Welch–Satterthwaite degrees of freedom (fitDF), B20's at n − 1.
func (c Cells) Bootstrap(draws int, seed uint64) Bootstrapped {
	return c.intervals(c.resample(draws, seed))
}

// intervals summarises the draws d of the cells' bootstrap.
func (c Cells) intervals(d resampled) Bootstrapped {
	fewest := math.MaxInt
	for bi := range c.Batches {
		fewest = min(fewest, c.seeds(bi))
	}
	// B20 is read between two neighbouring batches: as if one decided it.
	nuS, nuB := float64(fewest-1), float64(fewest-1)
	if s, b, ok := c.fitDF(); ok {
		nuS, nuB = s, b
	}
	b := Bootstrapped{SMin: percentiles(d.sMin, expandedTail(fewest, nuS)), BCrit: percentiles(d.bCrit, expandedTail(fewest, nuB)),
		B20: percentiles(d.b20, expandedTail(fewest, float64(fewest-1))), Fitted: len(d.sMin)}
	return b
}

// seeds is the number of seeds at the cells' bi-th batch size.
func (c Cells) seeds(bi int) int { return len(c.Steps[bi][0]) }

// resampled are the bootstrap's draws that could be fitted.
type resampled struct {
	sMin, bCrit, b20 []float64
}

// resample draws the bootstrap Bootstrap summarises.
func (c Cells) resample(draws int, seed uint64) resampled {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	var d resampled
	picks := make([][]int, len(c.Batches))
	for range draws {
		for bi := range picks {
			n := c.seeds(bi)
			picks[bi] = picks[bi][:0]
			for range n {
				picks[bi] = append(picks[bi], rng.IntN(n))
			}
		}
		bs, ss := c.bestCurve(func(bi int) []int { return picks[bi] })
		f, err := FitSteps(bs, ss)
		if err != nil {
			continue
		}
		es := make([]float64, len(bs))
		for i := range bs {
			es[i] = bs[i] * ss[i]
		}
		d.sMin, d.bCrit, d.b20 = append(d.sMin, f.SMin), append(d.bCrit, f.BCrit), append(d.b20, B20(bs, es))
	}
	return d
}

// meanInterval is Student's t interval at Level of the mean of xs: a
// batch's steps at its best LR, where a bootstrap of a few seeds cannot
// leave their range (at 3 seeds it held the mean in 72 % of simulated
// grids, TestFitCoverage). The pick of that LR among the grid's is not in
// it. NaN below two values.
func meanInterval(xs []float64) Interval {
	if len(xs) < 2 {
		return Interval{math.NaN(), math.NaN()}
	}
	m, sd := stat.MeanStdDev(xs, nil)
	h := -distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(xs) - 1)}.Quantile((1-Level)/2) * sd / math.Sqrt(float64(len(xs)))
	return Interval{m - h, m + h}
}

// percentiles is the interval of xs from quantile tail to 1 − tail (NaN
// sorts as +Inf); NaN without draws or with tail NaN.
func percentiles(xs []float64, tail float64) Interval {
	if len(xs) == 0 || math.IsNaN(tail) {
		return Interval{math.NaN(), math.NaN()}
	}
	s := slices.Clone(xs)
	for i, x := range s {
		if math.IsNaN(x) {
			s[i] = math.Inf(1)
		}
	}
	sort.Float64s(s)
	at := func(q float64) float64 {
		pos := q * float64(len(s)-1)
		i := int(pos)
		if i+1 >= len(s) {
			return s[len(s)-1]
		}
		if math.IsInf(s[i+1], 1) {
			return s[i+1]
		}
		return s[i] + (pos-float64(i))*(s[i+1]-s[i])
	}
	return Interval{at(tail), at(1 - tail)}
}

package study

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/batchlab/batchlab/bench/internal/expanded"
	gonumstat "gonum.org/v1/gonum/stat"
	"gonum.org/v1/gonum/stat/distuv"
)

// The small statistics of the verdicts: t-intervals of means and of paired
// differences by seed, their log-scale forms for positive quantities whose
// scatter is a factor (geometric means, ratios), and a seeded expanded
// percentile bootstrap for what has no closed form (a fitted B_crit). gonum gives the
// quantiles.

// confidence is the level of every interval.
const confidence = 0.95

// Interval is a mean (or an estimate) with its confidence interval over N
// seeds; Lo and Hi are NaN (null in JSON) below two seeds.
type Interval struct {
	Mean   float64 `json:"mean"`
	Lo     float64 `json:"lo"`
	Hi     float64 `json:"hi"`
	N      int     `json:"n"`
	Level  float64 `json:"level"`
	Method string  `json:"method"` // "t", "paired t", "t of logs", "paired t of logs", "expanded percentile bootstrap", …
}

// Above says the whole interval lies above x; Below, below it.
func (iv Interval) Above(x float64) bool { return iv.Lo > x }
func (iv Interval) Below(x float64) bool { return iv.Hi < x }

// as writes the interval as "mean [lo, hi]", each number as quantity q
// (precision.go), without the unit; below two seeds, the mean and n.
func (iv Interval) as(q quantity) string {
	if iv.N < 2 || math.IsNaN(iv.Lo) {
		return fmt.Sprintf("%s (n = %d, no interval)", q.format(iv.Mean), iv.N)
	}
	return fmt.Sprintf("%s [%s, %s]", q.format(iv.Mean), q.format(iv.Lo), q.format(iv.Hi))
}

// tInterval is the mean of xs with Student's t confidence interval.
func tInterval(xs []float64) Interval {
	iv := Interval{N: len(xs), Level: confidence, Method: "t", Lo: math.NaN(), Hi: math.NaN(), Mean: math.NaN()}
	if len(xs) == 0 {
		return iv
	}
	iv.Mean = gonumstat.Mean(xs, nil)
	if len(xs) < 2 {
		return iv
	}
	se := gonumstat.StdDev(xs, nil) / math.Sqrt(float64(len(xs)))
	t := distuv.StudentsT{Mu: 0, Sigma: 1, Nu: float64(len(xs) - 1)}.Quantile(1 - (1-confidence)/2)
	iv.Lo, iv.Hi = iv.Mean-t*se, iv.Mean+t*se
	return iv
}

// geometricInterval is the geometric mean of xs with Student's t interval
// of ln x taken back, exp(mean(ln x) ± t·se(ln x)): for a positive
// quantity whose seed-to-seed scatter is a factor (a noise scale, a ratio),
// an interval that stays positive and is as wide in factors above the mean
// as below it; a t-interval on x itself spans negative values at a few
// seeds. ok is false where some x is not a positive finite number (no
// logarithm): the caller says so and chooses what else to report.
func geometricInterval(xs []float64) (iv Interval, ok bool) {
	logs := make([]float64, len(xs))
	for i, x := range xs {
		if !(x > 0) || math.IsInf(x, 1) {
			return Interval{}, false
		}
		logs[i] = math.Log(x)
	}
	return fromLogs(tInterval(logs), "t of logs"), true
}

// fromLogs takes an interval of logarithms back to the quantity's scale.
func fromLogs(iv Interval, method string) Interval {
	iv.Mean, iv.Lo, iv.Hi, iv.Method = math.Exp(iv.Mean), math.Exp(iv.Lo), math.Exp(iv.Hi), method
	return iv
}

// ratioInterval is the geometric mean of a[s]/b[s] over the seeds both
// have, with the t-interval of the logs taken back: ratios of times are
// log-normal rather than normal.
func ratioInterval(a, b map[uint64]float64) Interval {
	la, lb := map[uint64]float64{}, map[uint64]float64{}
	for s, v := range a {
		la[s] = math.Log(v)
	}
	for s, v := range b {
		lb[s] = math.Log(v)
	}
	return fromLogs(pairedDiff(la, lb), "paired t of logs")
}

// pairedDiff is the t-interval of a[s] − b[s] over the seeds s both have.
func pairedDiff(a, b map[uint64]float64) Interval {
	iv := tInterval(diffs(a, b))
	iv.Method = "paired t"
	return iv
}

// diffs lists a[s] − b[s] over the seeds both have, in seed order.
func diffs(a, b map[uint64]float64) []float64 {
	var out []float64
	for _, s := range sortedSeeds(a) {
		if vb, ok := b[s]; ok {
			out = append(out, a[s]-vb)
		}
	}
	return out
}

func sortedSeeds(m map[uint64]float64) []uint64 {
	var ks []uint64
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// bootstrapReps is how many resamples a bootstrap draws.
const bootstrapReps = 2000

// bootstrap is the expanded percentile bootstrap interval of estimate
// over n units (seeds; expanded.Tail at n − 1 degrees of freedom, as the
// grid's are: the plain percentiles undercover at a few seeds): each of
// bootstrapReps resamples draws n of them with replacement, from a fixed
// seed so that a report is reproducible;
// estimate says false where a resample admits no estimate (those are left
// out, and counted against nothing). The mean is estimate on all n.
func bootstrap(n int, estimate func(units []int) (float64, bool)) Interval {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	iv := Interval{N: n, Level: confidence, Method: "expanded percentile bootstrap", Lo: math.NaN(), Hi: math.NaN(), Mean: math.NaN()}
	if v, ok := estimate(all); ok {
		iv.Mean = v
	} else {
		return iv
	}
	if n < 2 {
		return iv
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var vs []float64
	units := make([]int, n)
	for range bootstrapReps {
		for i := range units {
			units[i] = rng.IntN(n)
		}
		if v, ok := estimate(units); ok {
			vs = append(vs, v)
		}
	}
	if len(vs) < bootstrapReps/2 { // most resamples say nothing: no interval
		return iv
	}
	slices.Sort(vs)
	tail := expanded.Tail(n, float64(n-1), confidence)
	iv.Lo = gonumstat.Quantile(tail, gonumstat.Empirical, vs, nil)
	iv.Hi = gonumstat.Quantile(1-tail, gonumstat.Empirical, vs, nil)
	return iv
}

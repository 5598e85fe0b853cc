package grid

import (
	"math"
	"math/rand/v2"
	"slices"
)

// The noise scale held to the critical batch. The noise runs (one per
// seed, at the plan's noise batch) measure pairs of the two moments, |G|²
// and tr(Σ), every NoiseEvery steps (engine.NoiseEstimate's unbiased
// two-batch estimates, one pair at a time). At a loss target, the pairs of
// every seed measured within noiseSpan measurements of the step at which
// that seed's smoothed loss reached the target are pooled; both moments are
// averaged before the ratio B_simple = tr(Σ)/|G|² is taken (a single pair's
// |G|² can be negative). Its interval is a two-stage bootstrap: the seeds
// are resampled, then the pairs within each seed drawn, so that it holds
// the scatter from seed to seed (each run's path to the target) as well as
// the pairs' own; the seeds are few, so the percentiles are expanded as the
// fit's are (expandedTail, at n − 1 degrees of freedom for n seeds).

// noiseSpan is how many measurements on either side of a target's step are
// pooled.
const noiseSpan = 2

// NoiseAt is B_simple at one loss target.
type NoiseAt struct {
	BSimple Num   `json:"b_simple"` // +Inf (null in JSON: not estimable) when |G|² ≤ 0
	Lo      Num   `json:"b_simple_lo"`
	Hi      Num   `json:"b_simple_hi"`
	Pairs   int   `json:"pairs"`
	Seeds   int   `json:"seeds"` // noise runs that reached the target
	Steps   []int `json:"steps"` // each such run's step at the target
}

// NoiseSample is B_simple at one point of training, pooled over the seeds
// and noiseSpan measurements either side, with the mean smoothed loss there.
type NoiseSample struct {
	Step    int `json:"step"`
	Loss    Num `json:"smoothed_loss"`
	BSimple Num `json:"b_simple"`
	Pairs   int `json:"pairs"`
}

// NoiseComparison holds B_simple against B_crit at one target: their
// ratio with its interval, and what the ratio says (CompareNoise).
type NoiseComparison struct {
	Target  float64 `json:"target"`
	BCrit   float64 `json:"b_crit"`
	BSimple float64 `json:"b_simple"`
	Ratio   float64 `json:"ratio"` // B_simple / B_crit
	RatioLo Num     `json:"ratio_lo"`
	RatioHi Num     `json:"ratio_hi"` // +Inf (null in JSON) where an interval is open
	Class   string  `json:"class"`
}

// The classes of a ratio B_simple/B_crit, the study's rule for "the noise
// scale predicts the critical batch". The factor 10 is the line between a
// prediction and none; a ratio whose interval crosses it is unresolved.
const (
	WithinFactor3  = "within a factor 3"
	WithinFactor10 = "within a factor 10"
	BeyondFactor10 = "beyond a factor 10"
	Unresolved     = "unresolved" // the interval reaches both within and beyond a factor 10
)

// CompareNoise holds B_simple to B_crit, each with its interval at the same
// level, from independent runs. The ratio's interval is Zou and Donner's
// MOVER on the log scale (G. Zou, A. Donner, "Construction of confidence
// limits about effect measures", Statistical Methods in Medical Research
// 17(5), 2008): each end of ln B_simple − ln B_crit is the point minus (or
// plus) the root of the squared distances from the two points to the
// matching ends of their own intervals, which keeps each interval's own
// asymmetry. A lower end at or below 0 (B_simple's t-interval of values)
// makes the ratio's 0; an open upper end makes it +Inf.
//
// The class: beyond a factor 10 when the whole interval lies beyond
// [1/10, 10]; unresolved when it reaches past either end of it; otherwise
// within a factor 3 when the ratio is in [1/3, 3], within a factor 10 when
// not.
func CompareNoise(target, bSimple, bSimpleLo, bSimpleHi, bCrit, bCritLo, bCritHi float64) NoiseComparison {
	r := bSimple / bCrit
	below := math.Hypot(logGap(bSimple, bSimpleLo), logGap(bCritHi, bCrit))
	above := math.Hypot(logGap(bSimpleHi, bSimple), logGap(bCrit, bCritLo))
	c := NoiseComparison{Target: target, BCrit: bCrit, BSimple: bSimple, Ratio: r,
		RatioLo: Num(r * math.Exp(-below)), RatioHi: Num(r * math.Exp(above))}
	switch lo, hi := float64(c.RatioLo), float64(c.RatioHi); {
	case hi < 0.1 || lo > 10:
		c.Class = BeyondFactor10
	case lo < 0.1 || hi > 10 || math.IsNaN(lo) || math.IsNaN(hi):
		c.Class = Unresolved
	case r >= 1.0/3 && r <= 3:
		c.Class = WithinFactor3
	default:
		c.Class = WithinFactor10
	}
	return c
}

// logGap is ln(hi/lo) for positive values, +Inf where lo ≤ 0 or hi is
// +Inf (an end that bounds nothing).
func logGap(hi, lo float64) float64 {
	if !(lo > 0) || math.IsInf(hi, 1) {
		return math.Inf(1)
	}
	return math.Log(hi / lo)
}

// NoiseVersusCritical lists the comparisons of the noise scale with the
// critical batch, target by target (the targets where both were measured):
// what the study's finding (g) reads its verdict from.
func (a *Analysis) NoiseVersusCritical() []NoiseComparison {
	var cs []NoiseComparison
	for _, t := range a.Targets {
		if t.Comparison != nil {
			cs = append(cs, *t.Comparison)
		}
	}
	return cs
}

func compare(t TargetResult) *NoiseComparison {
	if t.Fit == nil || t.Noise == nil || math.IsInf(float64(t.Noise.BSimple), 0) || t.Fit.AtBound {
		return nil
	}
	c := CompareNoise(t.Target, float64(t.Noise.BSimple), float64(t.Noise.Lo), float64(t.Noise.Hi),
		t.Fit.BCrit, float64(t.Fit.BCritLo), float64(t.Fit.BCritHi))
	return &c
}

// pairsNear are the pairs of run r measured within noiseSpan measurements
// of step.
func pairsNear(r Run, step, every int) []NoisePair {
	var ps []NoisePair
	for _, p := range r.Noise {
		if abs(p.Step-step) <= noiseSpan*every {
			ps = append(ps, p)
		}
	}
	return ps
}

func abs(x int) int { return max(x, -x) }

// noiseAt is B_simple at target ti; nil when no noise run reached it.
func noiseAt(runs []Run, p Plan, ti int) *NoiseAt {
	var groups [][]NoisePair
	n := &NoiseAt{}
	for _, r := range runs {
		if r.Diverged || r.Error != "" || ti >= len(r.Hits) || !r.Hits[ti].Reached {
			continue
		}
		step := *r.Hits[ti].Steps
		if g := pairsNear(r, step, p.NoiseEvery); len(g) > 0 {
			groups = append(groups, g)
			n.Steps = append(n.Steps, step)
			n.Pairs += len(g)
		}
	}
	if len(groups) == 0 {
		return nil
	}
	n.Seeds = len(groups)
	n.BSimple = Num(pooled(groups))
	iv := bootstrapNoise(groups, bootstrapDraws, bootstrapSeed)
	n.Lo, n.Hi = Num(iv.Lo), Num(iv.Hi)
	return n
}

// bootstrapNoise is the interval of B_simple pooled over groups, one group
// of pairs per seed: each of draws resamples the seeds, then the pairs
// within each seed drawn; the percentiles are expanded for the seeds' n − 1
// degrees of freedom.
func bootstrapNoise(groups [][]NoisePair, draws int, seed uint64) Interval {
	rng := rand.New(rand.NewPCG(seed, 0x5851f42d4c957f2d))
	values := make([]float64, 0, draws)
	re := make([][]NoisePair, len(groups))
	for range draws {
		for gi := range re {
			g := groups[rng.IntN(len(groups))]
			re[gi] = re[gi][:0]
			for range g {
				re[gi] = append(re[gi], g[rng.IntN(len(g))])
			}
		}
		values = append(values, pooled(re))
	}
	return percentiles(values, expandedTail(len(groups), float64(len(groups)-1)))
}

// pooled is the mean tr(Σ) over the mean |G|² of all pairs: +Inf while
// |G|² is not estimated positive.
func pooled(groups [][]NoisePair) float64 {
	var g2, s float64
	var n int
	for _, g := range groups {
		for _, p := range g {
			g2, s, n = g2+p.GradSq, s+p.TraceSigma, n+1
		}
	}
	if !(g2 > 0) {
		return math.Inf(1)
	}
	return (s / float64(n)) / (g2 / float64(n))
}

// noiseAlong is B_simple at each measurement step that every noise run
// measured, pooled over the runs and noiseSpan measurements either side.
func noiseAlong(runs []Run, p Plan) []NoiseSample {
	var ok []Run
	for _, r := range runs {
		if !r.Diverged && r.Error == "" && len(r.Noise) > 0 {
			ok = append(ok, r)
		}
	}
	if len(ok) == 0 {
		return nil
	}
	var steps []int
	for _, q := range ok[0].Noise {
		if !slices.Contains(steps, q.Step) && slices.ContainsFunc(ok, func(r Run) bool { return len(r.Noise) > 0 && r.Noise[len(r.Noise)-1].Step >= q.Step }) {
			steps = append(steps, q.Step)
		}
	}
	var out []NoiseSample
	for _, step := range steps {
		var groups [][]NoisePair
		var loss float64
		var losses int
		for _, r := range ok {
			groups = append(groups, pairsNear(r, step, p.NoiseEvery))
			sm := Smooth(r.StepLosses, halfWindow(r.Batch, p.SmoothSamples))
			if step < len(sm) && !math.IsNaN(sm[step]) {
				loss, losses = loss+sm[step], losses+1
			}
		}
		s := NoiseSample{Step: step, BSimple: Num(pooled(groups)), Loss: Num(math.NaN())}
		for _, g := range groups {
			s.Pairs += len(g)
		}
		if losses > 0 {
			s.Loss = Num(loss / float64(losses))
		}
		out = append(out, s)
	}
	return out
}

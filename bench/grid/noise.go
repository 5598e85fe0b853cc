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
// |G|² can be negative), and its interval is a bootstrap over the pairs,
// resampled within each seed.

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

// NoiseComparison holds B_simple against B_crit at one target.
type NoiseComparison struct {
	Target  float64 `json:"target"`
	BCrit   float64 `json:"b_crit"`
	BSimple float64 `json:"b_simple"`
	Ratio   float64 `json:"ratio"` // B_simple / B_crit
	// Overlap: the two intervals overlap. WithinFactor3: the ratio is in
	// [1/3, 3], the study's rule for "the noise scale predicts the
	// critical batch".
	Overlap       bool `json:"intervals_overlap"`
	WithinFactor3 bool `json:"within_factor_3"`
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
	bs := float64(t.Noise.BSimple)
	r := bs / t.Fit.BCrit
	return &NoiseComparison{Target: t.Target, BCrit: t.Fit.BCrit, BSimple: bs, Ratio: r,
		Overlap:       t.Noise.Lo <= t.Fit.BCritHi && t.Fit.BCritLo <= t.Noise.Hi,
		WithinFactor3: r >= 1.0/3 && r <= 3}
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
	rng := rand.New(rand.NewPCG(bootstrapSeed, 0x5851f42d4c957f2d))
	draws := make([]float64, 0, bootstrapDraws)
	re := make([][]NoisePair, len(groups))
	for range bootstrapDraws {
		for gi, g := range groups {
			re[gi] = re[gi][:0]
			for range g {
				re[gi] = append(re[gi], g[rng.IntN(len(g))])
			}
		}
		draws = append(draws, pooled(re))
	}
	// The plain percentile interval: its units are the pairs, about ten
	// per seed, where the small-sample expansion of the seeds' intervals
	// (expandedTail) matters less; it is not checked by simulation.
	iv := percentiles(draws, (1-Level)/2)
	n.Lo, n.Hi = Num(iv.Lo), Num(iv.Hi)
	return n
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

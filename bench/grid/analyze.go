package grid

import (
	"fmt"
	"math"
	"slices"

	"github.com/batchlab/batchlab/engine/device"
)

// Analysis is what a grid measured, target by target.
type Analysis struct {
	Plan    Plan        `json:"plan"`
	Device  device.Info `json:"device"`
	Runs    int         `json:"runs"`
	Failed  int         `json:"failed_runs"` // diverged, collapsed or broken
	Missing []string    `json:"missing,omitempty"`
	// The bootstrap behind every interval: draws, its fixed seed, level.
	BootstrapDraws int     `json:"bootstrap_draws"`
	BootstrapSeed  uint64  `json:"bootstrap_seed"`
	Level          float64 `json:"level"`
	// SmoothHalfWindow is h of each batch size's centred mean (2h+1 steps).
	SmoothHalfWindow map[int]int    `json:"smooth_half_window"`
	Targets          []TargetResult `json:"targets"`
	// NoiseAlongTraining is B_simple as training goes on, from the noise runs.
	NoiseAlongTraining []NoiseSample `json:"noise_along_training,omitempty"`
}

// TargetResult is one loss target: the best LR and its steps per batch
// size, the fit, Zhang et al.'s critical batch, and the noise scale there.
type TargetResult struct {
	Target float64 `json:"target"`
	Points []Point `json:"points"` // one per batch size, ascending
	// Fit is nil when fewer than 3 batch sizes reached the target.
	Fit   *FitResult `json:"fit,omitempty"`
	Noise *NoiseAt   `json:"noise,omitempty"`
	// Comparison of the noise scale with B_crit, when both exist.
	Comparison *NoiseComparison `json:"comparison,omitempty"`
}

// Point is one batch size at one target. Reached: at least one LR reached
// the target with every seed, neither diverging nor collapsing; then BestLR
// is the one with the fewest mean steps, and Steps and Samples are over
// the seeds at it (mean, and the range of the seeds as the interval).
type Point struct {
	Batch   int      `json:"batch"`
	Reached bool     `json:"reached"`
	BestLR  *float64 `json:"best_lr"`
	// LREdge: the best LR is the grid's smallest or largest at this batch,
	// so a better one may lie outside it and S(B) be overestimated.
	LREdge  bool    `json:"lr_at_grid_edge"`
	Steps   *Spread `json:"steps"`
	Samples *Spread `json:"samples"`
	// StepsLo and StepsHi bound the best-LR mean steps: Student's t over
	// the seeds at that LR (meanInterval; samples: × B).
	StepsLo   Num       `json:"steps_lo"`
	StepsHi   Num       `json:"steps_hi"`
	FailedLRs []float64 `json:"failed_lrs"` // diverged or collapsed with some seed
	// Seeds are those whose runs at this batch are all done (a partial
	// grid's other seeds are left out here, not counted as not reached).
	Seeds []uint64 `json:"seeds"`
}

// Spread is the mean over seeds and their range.
type Spread struct {
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
	N    int     `json:"n"`
}

// FitResult is the fit of S(B) at one target with its bootstrap intervals.
type FitResult struct {
	Fit
	SMinLo  Num `json:"s_min_lo"`
	SMinHi  Num `json:"s_min_hi"`
	BCritLo Num `json:"b_crit_lo"`
	BCritHi Num `json:"b_crit_hi"`
	// B20 is Zhang et al.'s model-free critical batch (see B20) from the
	// smallest batch that reached the target, B20Ref; B20Above: beyond
	// the largest batch measured (and its value the largest batch).
	B20      float64 `json:"b20"`
	B20Above bool    `json:"b20_above_range"`
	B20Lo    Num     `json:"b20_lo"`
	B20Hi    Num     `json:"b20_hi"` // null: beyond the batches measured
	B20Ref   int     `json:"b20_reference_batch"`
	Draws    int     `json:"bootstrap_draws_fitted"`
}

// Analyze reads the grid's runs and measures everything above.
func Analyze(p Plan, runs []Run, missing []string) *Analysis {
	a := &Analysis{Plan: p, Runs: len(runs), Missing: missing, BootstrapDraws: bootstrapDraws, BootstrapSeed: bootstrapSeed,
		Level: Level, SmoothHalfWindow: map[int]int{}}
	byKey := map[string]Run{}
	var noise []Run
	for _, r := range runs {
		if a.Device.Kind == "" {
			a.Device = r.Device
		}
		if r.Failed() {
			a.Failed++
		}
		if r.Kind == Noise {
			noise = append(noise, r)
			continue
		}
		byKey[key(r.Batch, r.LR, r.Seed)] = r
	}
	batches := slices.Clone(p.Batches)
	slices.Sort(batches)
	for _, b := range batches {
		a.SmoothHalfWindow[b] = halfWindow(b, p.SmoothSamples)
	}
	for ti, t := range p.Targets {
		tr := TargetResult{Target: t}
		var cells Cells
		for _, b := range batches {
			lrs := p.LRsAt(b)
			seeds := completeSeeds(byKey, p, b)
			steps := make([][]float64, len(lrs))
			pt := Point{Batch: b, Seeds: seeds}
			for li, lr := range lrs {
				steps[li] = make([]float64, len(seeds))
				failed := false
				for si, seed := range seeds {
					steps[li][si] = math.NaN()
					switch r := byKey[key(b, lr, seed)]; {
					case r.Failed():
						failed = true
					case r.Hits[ti].Reached:
						steps[li][si] = float64(*r.Hits[ti].Steps)
					}
				}
				if failed {
					pt.FailedLRs = append(pt.FailedLRs, lr)
				}
			}
			if len(seeds) == 0 {
				tr.Points = append(tr.Points, pt)
				continue
			}
			cells.Batches, cells.LRs, cells.Steps = append(cells.Batches, b), append(cells.LRs, lrs), append(cells.Steps, steps)
			if li, _ := best(steps, allSeeds(len(seeds))); li >= 0 {
				lr := lrs[li]
				pt.Reached, pt.BestLR, pt.LREdge = true, &lr, len(lrs) > 1 && (li == 0 || li == len(lrs)-1)
				pt.Steps = spread(steps[li])
				iv := meanInterval(steps[li])
				pt.StepsLo, pt.StepsHi = Num(iv.Lo), Num(iv.Hi)
				// Samples are steps × B except across a short last batch.
				samples := make([]float64, len(seeds))
				for si, seed := range seeds {
					samples[si] = float64(*byKey[key(b, lr, seed)].Hits[ti].Samples)
				}
				pt.Samples = spread(samples)
			}
			tr.Points = append(tr.Points, pt)
		}
		if len(cells.Batches) > 0 {
			tr.Fit = fitTarget(tr.Points, cells.Bootstrap(bootstrapDraws, bootstrapSeed))
		}
		tr.Noise = noiseAt(noise, p, ti)
		tr.Comparison = compare(tr)
		a.Targets = append(a.Targets, tr)
	}
	a.NoiseAlongTraining = noiseAlong(noise, p)
	return a
}

// The bootstrap's size and fixed seed.
const (
	bootstrapDraws = 2000
	bootstrapSeed  = 17
)

// fitTarget fits the best-LR curve, with the bootstrap's intervals; nil
// with fewer than 3 batch sizes at the target.
func fitTarget(pts []Point, boot Bootstrapped) *FitResult {
	var bs, ss, es []float64
	for _, pt := range pts {
		if pt.Reached {
			bs, ss, es = append(bs, float64(pt.Batch)), append(ss, pt.Steps.Mean), append(es, pt.Samples.Mean)
		}
	}
	f, err := FitSteps(bs, ss)
	if err != nil {
		return nil
	}
	r := &FitResult{Fit: f, B20: B20(bs, es), B20Ref: int(bs[0])}
	if math.IsInf(r.B20, 1) {
		r.B20, r.B20Above = bs[len(bs)-1], true
	}
	sm, bc, bz := boot.SMin, boot.BCrit, boot.B20
	r.SMinLo, r.SMinHi, r.BCritLo, r.BCritHi, r.Draws = Num(sm.Lo), Num(sm.Hi), Num(bc.Lo), Num(bc.Hi), boot.Fitted
	r.B20Lo, r.B20Hi = Num(math.Min(bz.Lo, bs[len(bs)-1])), Num(bz.Hi)
	return r
}

// completeSeeds are the seeds with a result for every LR at batch b.
func completeSeeds(byKey map[string]Run, p Plan, b int) []uint64 {
	var seeds []uint64
	for _, seed := range p.Seeds {
		if !slices.ContainsFunc(p.LRsAt(b), func(lr float64) bool { _, ok := byKey[key(b, lr, seed)]; return !ok }) {
			seeds = append(seeds, seed)
		}
	}
	return seeds
}

func key(b int, lr float64, seed uint64) string { return fmt.Sprintf("%d/%g/%d", b, lr, seed) }

func allSeeds(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// spread is the mean and range of xs.
func spread(xs []float64) *Spread {
	s := &Spread{Min: math.Inf(1), Max: math.Inf(-1), N: len(xs)}
	for _, x := range xs {
		s.Mean += x
		s.Min, s.Max = math.Min(s.Min, x), math.Max(s.Max, x)
	}
	s.Mean /= float64(len(xs))
	return s
}

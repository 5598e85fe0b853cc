// Package advise answers the question a user of batchlab came with: which
// batch size, and which learning rate, for this model on this machine.
package advise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/batchlab/batchlab/bench/internal/spread"
	"github.com/batchlab/batchlab/bench/lrfind"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// Options describe the model, the reference run and the measurements.
type Options struct {
	Base        engine.Config // the model and a reference run: LR at Base.Batch
	Rule        engine.LRRule // LR scaling rule from (Base.Batch, Base.LR): none, linear, sqrt
	Open        func() (device.Device, error)
	MemoryLimit int64 // bytes a run may allocate (--memory); 0: the memory plan's budget (the GPU's free memory, or RAM)
	Train, Test *data.Dataset
	// Throughput is timed at powers of two from MinBatch to MaxBatch.
	MinBatch, MaxBatch int
	NoiseSteps         int // training steps at Base.Batch before the noise scale is measured
	NoiseBig           int // the big batch of the noise estimator
	NoisePairs         int // gradient pairs averaged
	// Repeats is how many times each batch size is timed, the rounds
	// interleaved over the batch sizes.
	Repeats int
	// FindLR, when set, measures the recommended batch's LR with the LR
	// range test instead of scaling Base.LR by Rule.
	FindLR *lrfind.Sweep
	Log    io.Writer
}

// Point is the throughput at one batch size: the median of the repeats,
// their range, and each repeat's.
type Point struct {
	Batch            int       `json:"batch"`
	SamplesPerSec    float64   `json:"samples_per_sec"`
	SamplesPerSecMin float64   `json:"samples_per_sec_min"`
	SamplesPerSecMax float64   `json:"samples_per_sec_max"`
	Runs             []float64 `json:"samples_per_sec_runs"`
}

// Advice is the answer, with what it rests on.
type Advice struct {
	MaxBatch       int     `json:"max_batch"` // largest batch that fits
	MaxBatchMethod string  `json:"max_batch_method"`
	MemoryLimit    int64   `json:"memory_limit"`
	Throughput     []Point `json:"throughput"`
	Knee           int     `json:"knee"` // smallest batch within 10% of the peak samples/s, of the medians
	// The knee of each repeat alone, and their range: where they differ,
	// the machine's noise moved the answer.
	KneeRuns []int   `json:"knee_runs"`
	KneeMin  int     `json:"knee_min"`
	KneeMax  int     `json:"knee_max"`
	Peak     Point   `json:"peak"`
	BSimple  float64 `json:"b_simple"` // the gradient noise scale, a critical-batch estimate: the median of the repeats'
	// Each repeat's estimate (NoisePairs fresh pairs of batches at the same
	// weights) and their range.
	BSimpleRuns  []float64      `json:"b_simple_runs"`
	BSimpleMin   float64        `json:"b_simple_min"`
	BSimpleMax   float64        `json:"b_simple_max"`
	NoiseUpdates int            `json:"noise_updates"`
	Batch        int            `json:"recommended_batch"`
	LR           float64        `json:"recommended_lr"`
	Rule         engine.LRRule  `json:"rule"`
	RuleLR       float64        `json:"rule_lr"`           // the rule's LR at the recommended batch
	LRFind       *lrfind.Result `json:"lr_find,omitempty"` // the range test at the recommended batch, if asked
	Reasoning    string         `json:"reasoning"`
	Warnings     []string       `json:"warnings"` // where the repeats' spread could change the answer
}

// Advise measures and recommends: the largest batch that fits, the
// throughput knee, the noise scale, and from them a batch and its LR.
func Advise(ctx context.Context, o Options) (*Advice, error) {
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	a := &Advice{Rule: o.Rule, MemoryLimit: o.MemoryLimit}
	fmt.Fprintln(log, "finding the largest batch that fits…")
	var err error
	if a.MaxBatch, err = largestBatch(ctx, o); err != nil {
		return nil, err
	}
	a.MaxBatchMethod = "doubling then binary search, each size's buffers allocated as a training run allocates them, the result confirmed by a real training step"
	fmt.Fprintln(log, "timing training steps at each batch size…")
	if a.Throughput, err = throughput(ctx, o, min(a.MaxBatch, o.MaxBatch)); err != nil {
		return nil, err
	}
	a.Peak, a.Knee = knee(a.Throughput)
	a.KneeRuns, a.KneeMin, a.KneeMax = kneeRuns(a.Throughput)
	a.Warnings = kneeWarnings(a)
	fmt.Fprintln(log, "measuring the gradient noise scale…")
	if a.BSimpleRuns, a.NoiseUpdates, err = noiseScale(ctx, o); err != nil {
		return nil, err
	}
	sp := spread.Of(a.BSimpleRuns)
	a.BSimple, a.BSimpleMin, a.BSimpleMax = sp.Median, sp.Min, sp.Max
	recommend(a, o)
	a.Warnings = append(a.Warnings, noiseWarnings(a)...)
	if o.FindLR != nil {
		fmt.Fprintf(log, "the LR range test at B=%d…\n", a.Batch)
		if err := findLR(ctx, a, o); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// findLR runs the LR range test at the recommended batch and makes its
// suggestion the recommended LR.
func findLR(ctx context.Context, a *Advice, o Options) error {
	d, err := open(o)
	if err != nil {
		return err
	}
	defer d.Close()
	// Built as trainerAt builds the timed trainers (evaluation capped at
	// the batch, the same budget), so that a batch the search found fits.
	cfg := o.Base
	cfg.Batch, cfg.EvalBatch = a.Batch, min(cfg.EvalBatch, a.Batch)
	if o.MemoryLimit > 0 {
		cfg.Memory = o.MemoryLimit
	}
	r, err := lrfind.Run(ctx, lrfind.Options{Base: cfg, Device: d, Train: o.Train, Test: o.Test, Sweep: *o.FindLR})
	if err != nil {
		return fmt.Errorf("the LR range test at B=%d: %w", a.Batch, err)
	}
	a.LRFind, a.LR = r, r.SuggestedLR
	a.Reasoning += fmt.Sprintf(" The LR range test at B=%d measured its LR instead: %.3g, where the smoothed loss falls fastest against log LR (the sweep %s).", a.Batch, a.LR, r.Stopped)
	return nil
}

// open opens a device, capped at the memory limit.
func open(o Options) (device.Device, error) {
	d, err := o.Open()
	if err != nil || o.MemoryLimit <= 0 {
		return d, err
	}
	return device.WithMemoryLimit(d, o.MemoryLimit), nil
}

// trainerAt builds the trainer both the memory search and the timing use at
// batch b: evaluation capped at the batch (neither phase evaluates), so the
// size that fit in the search is the size that is timed. The memory plan
// refuses what would not fit before anything is allocated.
func trainerAt(o Options, d device.Device, b int, train *data.Dataset) (*engine.Trainer, error) {
	cfg := o.Base
	cfg.Batch, cfg.Epochs, cfg.EvalBatch = b, 1, min(cfg.EvalBatch, b)
	if o.MemoryLimit > 0 {
		cfg.Memory = o.MemoryLimit
	}
	return engine.NewTrainer(d, cfg, train, o.Test.Subset(cfg.EvalBatch))
}

// fits builds a trainer at batch b under the memory limit: the trainer
// allocates every buffer of a run up front, so this is the run's footprint.
// With step, it also runs one real training step.
func fits(ctx context.Context, o Options, b int, step bool) (bool, error) {
	d, err := open(o)
	if err != nil {
		return false, err
	}
	defer d.Close()
	tr, err := trainerAt(o, d, b, o.Train.Subset(b))
	if errors.Is(err, device.ErrOutOfMemory) && b > 1 {
		return false, nil // when not even 1 fits, the memory plan's error says why
	}
	if err != nil || !step {
		return err == nil, err
	}
	_, err = tr.Epoch(ctx, 1, nil)
	if errors.Is(err, device.ErrOutOfMemory) {
		return false, nil
	}
	return err == nil, err
}

// largestBatch finds the largest batch that fits, as Lightning's
// BatchSizeFinder does: double from 1 until a size does not fit (or the
// training set is used up), then binary search between the last size that
// fit and the first that did not. The answer is confirmed by a real step;
// should that step run out of memory, the search goes on below it.
func largestBatch(ctx context.Context, o Options) (int, error) {
	n := o.Train.Len()
	good, bad := 0, n+1
	for b := 1; b <= n; b *= 2 {
		ok, err := fits(ctx, o, b, false)
		if err != nil {
			return 0, err
		}
		if !ok {
			bad = b
			break
		}
		good = b
	}
	if bad == n+1 && good < n { // everything doubled fit: try the whole set
		ok, err := fits(ctx, o, n, false)
		if err != nil {
			return 0, err
		}
		if ok {
			good = n
		}
	}
	for bad-good > 1 && good < n {
		mid := (good + bad) / 2
		ok, err := fits(ctx, o, mid, false)
		if err != nil {
			return 0, err
		}
		if ok {
			good = mid
		} else {
			bad = mid
		}
	}
	for good > 0 {
		ok, err := fits(ctx, o, good, true)
		if err != nil || ok {
			return good, err
		}
		good /= 2
	}
	return 0, fmt.Errorf("not even a batch of 1 fits in %d bytes", o.MemoryLimit)
}

// throughput times training steps at powers of two up to maxBatch,
// Repeats times each, in rounds that visit every batch size once, so that a
// slow spell of the machine spreads over all sizes rather than one.
func throughput(ctx context.Context, o Options, maxBatch int) ([]Point, error) {
	var pts []Point
	for b := max(o.MinBatch, 1); b <= maxBatch; b *= 2 {
		pts = append(pts, Point{Batch: b})
	}
	for range max(o.Repeats, 1) {
		for i := range pts {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			v, err := samplesPerSec(o, pts[i].Batch)
			if err != nil {
				return nil, err
			}
			pts[i].Runs = append(pts[i].Runs, v)
		}
	}
	for i, p := range pts {
		sp := spread.Of(p.Runs)
		pts[i].SamplesPerSec, pts[i].SamplesPerSecMin, pts[i].SamplesPerSecMax = sp.Median, sp.Min, sp.Max
	}
	return pts, nil
}

// samplesPerSec times training steps at batch b: one step to warm up, then
// at least 2048 samples' worth.
func samplesPerSec(o Options, b int) (float64, error) {
	d, err := open(o)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	tr, err := trainerAt(o, d, b, o.Train)
	if err != nil {
		return 0, err
	}
	steps := max(3, 2048/b)
	order := data.Permutation(o.Train.Len(), o.Base.Seed, 1)
	var start time.Time
	for s := 0; s <= steps; s++ {
		if s == 1 {
			if err := d.Sync(); err != nil {
				return 0, err
			}
			start = time.Now()
		}
		lo := (s * b) % (len(order) - b + 1)
		if err := tr.Step(0, order[lo:lo+b], nil, o.Base.LR); err != nil {
			return 0, err
		}
	}
	if err := d.Sync(); err != nil {
		return 0, err
	}
	return float64(steps*b) / time.Since(start).Seconds(), nil
}

// kneeShare is the knee's threshold: within 10% of the peak.
const kneeShare = 0.9

// knee is the peak throughput and the smallest batch within 10% of it.
func knee(pts []Point) (peak Point, knee int) {
	return kneeOf(pts, func(p Point) float64 { return p.SamplesPerSec })
}

func kneeOf(pts []Point, v func(Point) float64) (peak Point, knee int) {
	if len(pts) == 0 {
		return peak, 0
	}
	peak = pts[0]
	for _, p := range pts {
		if v(p) > v(peak) {
			peak = p
		}
	}
	for _, p := range pts {
		if v(p) >= kneeShare*v(peak) {
			return peak, p.Batch
		}
	}
	return peak, 0
}

// kneeRuns is the knee of each repeat alone, and their range.
func kneeRuns(pts []Point) (runs []int, lo, hi int) {
	if len(pts) == 0 {
		return nil, 0, 0
	}
	for r := range pts[0].Runs {
		_, k := kneeOf(pts, func(p Point) float64 { return p.Runs[r] })
		runs = append(runs, k)
	}
	return runs, slices.Min(runs), slices.Max(runs)
}

// kneeWarnings says where the repeats' spread could move the knee: the
// repeats' own knees differ, or the range of the batch just below the knee
// reaches the threshold (90% of the peak's range), or the knee's own range
// falls below it.
func kneeWarnings(a *Advice) []string {
	ws := []string{} // [] in JSON when there is nothing to warn of
	if a.KneeMin != a.KneeMax {
		ws = append(ws, fmt.Sprintf("the knee moves between repeats: B=%d to %d (the knees %v; of the medians: B=%d)", a.KneeMin, a.KneeMax, a.KneeRuns, a.Knee))
	}
	threshold := spread.Spread{Median: a.Peak.SamplesPerSec, Min: a.Peak.SamplesPerSecMin, Max: a.Peak.SamplesPerSecMax}.Scale(kneeShare)
	for i, p := range a.Throughput {
		if p.Batch != a.Knee {
			continue
		}
		if i > 0 && a.Throughput[i-1].SamplesPerSecMax >= threshold.Min {
			below := a.Throughput[i-1]
			ws = append(ws, fmt.Sprintf("B=%d, below the knee, reaches %.0f samples/s in its best repeat, within 10%% of the peak's slowest (threshold %.0f): the knee could be B=%d", below.Batch, below.SamplesPerSecMax, threshold.Min, below.Batch))
		}
		if p.Batch != a.Peak.Batch && p.SamplesPerSecMin < threshold.Max {
			ws = append(ws, fmt.Sprintf("the knee B=%d falls to %.0f samples/s in its slowest repeat, below 90%% of the peak's fastest (%.0f): the knee could be larger", p.Batch, p.SamplesPerSecMin, threshold.Max))
		}
	}
	if len(ws) > 0 {
		ws = append(ws, "rerun with more --repeats, on a quieter machine, before trusting the knee")
	}
	return ws
}

// noiseScale trains NoiseSteps steps at the base batch, then measures
// B_simple there, Repeats times, each from NoisePairs fresh pairs.
func noiseScale(ctx context.Context, o Options) ([]float64, int, error) {
	d, err := open(o)
	if err != nil {
		return nil, 0, err
	}
	defer d.Close()
	cfg := o.Base
	b := cfg.Batch
	tr, err := trainerAt(o, d, b, o.Train)
	if err != nil {
		return nil, 0, err
	}
	order := data.Permutation(o.Train.Len(), cfg.Seed, 1)
	for s := 0; s < o.NoiseSteps; s++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		lo := (s * b) % (len(order) - b + 1)
		if err := tr.Step(0, order[lo:lo+b], nil, cfg.LR); err != nil {
			return nil, 0, err
		}
	}
	if err := d.Sync(); err != nil {
		return nil, 0, err
	}
	m, err := engine.NewNoiseMeter(tr, b, o.NoiseBig, cfg.Seed)
	if err != nil {
		return nil, 0, err
	}
	defer m.Close()
	var runs []float64
	for range max(o.Repeats, 1) {
		e, err := m.Sample(o.NoisePairs)
		if err != nil {
			return nil, 0, err
		}
		runs = append(runs, e.BSimple())
	}
	return runs, o.NoiseSteps, nil
}

// nearestPowerOfTwo is the batch the noise scale b recommends.
func nearestPowerOfTwo(b float64) int { return 1 << int(math.Round(math.Log2(b))) }

// noiseWarnings says when the repeats' noise scales round to different
// batches, or some could not be estimated: the recommendation could
// change on a rerun.
func noiseWarnings(a *Advice) []string {
	lo, hi := a.BSimpleMin, a.BSimpleMax
	switch {
	case !(lo > 0) || math.IsInf(hi, 0):
		return []string{fmt.Sprintf("the noise scale ranges %.0f–%.0f over the repeats %v: some could not be estimated (|G|² or tr Σ not yet positive); more --noise-steps or --noise-pairs", lo, hi, a.BSimpleRuns)}
	case nearestPowerOfTwo(lo) != nearestPowerOfTwo(hi):
		return []string{fmt.Sprintf("the noise scale ranges %.0f–%.0f over the repeats (median %.0f): the batch it recommends could be B=%d to %d; more --noise-pairs narrow it",
			lo, hi, a.BSimple, nearestPowerOfTwo(lo), nearestPowerOfTwo(hi))}
	}
	return nil
}

// recommend picks the batch: the power of two nearest the noise scale (the
// critical batch: below it larger batches cut the steps almost for free,
// above it they mostly cost samples), kept within what was measured to fit
// and run; then its LR under the rule.
func recommend(a *Advice, o Options) {
	crit := a.BSimple
	var why string
	switch {
	case math.IsInf(crit, 1) || !(crit > 0):
		a.Batch = a.Knee
		why = fmt.Sprintf("The noise scale could not be estimated (|G|² not yet positive), so the advice falls back on the hardware: B=%d is the smallest batch within 10%% of the peak throughput.", a.Knee)
	default:
		a.Batch = nearestPowerOfTwo(crit)
		why = fmt.Sprintf("The gradient noise scale is B_simple ≈ %.0f: up to about there, a larger batch cuts the steps to a given loss almost in proportion; beyond it, it mostly costs more samples. So B=%d, the nearest power of two.", crit, a.Batch)
		switch {
		case a.Knee > 2*a.Batch:
			why += fmt.Sprintf(" This machine would run faster per sample up to B=%d (the throughput knee), but past the noise scale the extra samples per step buy few fewer steps; choose B=%d only if wall-clock per epoch matters more than total compute.", a.Knee, a.Knee)
		case a.Knee > a.Batch:
			a.Batch = a.Knee
			why += fmt.Sprintf(" The throughput knee, B=%d, is within a factor 2 of it and runs faster per sample: B=%d.", a.Knee, a.Knee)
		default:
			why += fmt.Sprintf(" The hardware is already efficient there (knee at B=%d).", a.Knee)
		}
	}
	if a.Batch > a.MaxBatch {
		a.Batch = a.MaxBatch
		why += fmt.Sprintf(" Memory caps it at B=%d.", a.MaxBatch)
	}
	a.Batch = max(a.Batch, 1)
	cfg := o.Base
	base := cfg.Batch
	cfg.BaseBatch, cfg.Batch, cfg.LRScale = base, a.Batch, o.Rule
	a.LR = cfg.Resolved().ScaledLR()
	a.RuleLR = a.LR
	why += fmt.Sprintf(" Its learning rate under the %s rule from the reference (B₀=%d, LR₀=%g): %.4g", o.Rule, base, o.Base.LR, a.LR)
	if o.Rule == engine.ScaleLinear && a.Batch > 8*base {
		why += ", with a few epochs of warmup (the linear rule needs it far from B₀)"
	}
	a.Reasoning = why + "."
}

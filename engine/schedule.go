package engine

import (
	"fmt"
	"math"
	"strings"
)

// The learning-rate and batch-size schedules of the batch-size literature,
// as functions of the (resolved) Config:
//
//   - LR scaling relative to a base batch B₀ (Config.LRScale): "linear",
//     η = η₀·B/B₀ (Goyal et al. 2017), or "sqrt", η = η₀·√(B/B₀) (Hoffer et
//     al. 2017); "none" keeps η₀ whatever the batch.
//   - Gradual warmup (Config.WarmupEpochs): over the first K epochs the rate
//     rises linearly, step by step, from η₀ to the scaled rate, as in Goyal
//     et al.; with no scaling there is nothing to ramp.
//   - Step decay (Config.DecayEpochs, Config.DecayFactor): after each listed
//     epoch the rate is multiplied by the factor.
//   - Increase-batch (Config.IncreaseBatch, Smith et al. 2018): at those same
//     epochs the batch is divided by the factor instead (×5 for a factor of
//     0.2), up to Config.MaxBatch; decays that would pass the cap fall back
//     to dividing the rate.
//   - Regime adaptation (Config.AdaptRegime, Hoffer et al. 2017): train
//     B/B₀ times the epochs, decay points stretched alike, so that a large
//     batch makes as many updates as the base batch.

// LRRule is how the learning rate scales with the batch.
type LRRule string

// The LR scaling rules.
const (
	ScaleNone   LRRule = "none"
	ScaleLinear LRRule = "linear"
	ScaleSqrt   LRRule = "sqrt"
)

// ParseLRRule reads a rule's name; "" is none.
func ParseLRRule(name string) (LRRule, error) {
	switch r := LRRule(name); r {
	case "":
		return ScaleNone, nil
	case ScaleNone, ScaleLinear, ScaleSqrt:
		return r, nil
	}
	return "", fmt.Errorf("unknown LR scaling %q (want none, linear or sqrt)", name)
}

// Resolved fills in defaults and applies regime adaptation, giving the
// settings the trainer actually follows.
func (c Config) Resolved() Config {
	if c.LRScale == "" {
		c.LRScale = ScaleNone
	}
	if c.BaseBatch == 0 {
		c.BaseBatch = c.Batch
	}
	if c.DecayFactor == 0 {
		c.DecayFactor = 0.1
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = c.Batch
	}
	if c.AdaptRegime && c.Batch > c.BaseBatch && c.BaseBatch > 0 {
		r := float64(c.Batch) / float64(c.BaseBatch)
		c.Epochs = int(math.Ceil(float64(c.Epochs) * r))
		decays := make([]int, len(c.DecayEpochs))
		for i, e := range c.DecayEpochs {
			decays[i] = int(math.Round(float64(e) * r))
		}
		c.DecayEpochs = decays
		c.WarmupEpochs *= r
		c.AdaptRegime = false // applied
	}
	return c
}

// validateSchedule checks the schedule settings of a resolved config.
func (c Config) validateSchedule() []string {
	var errs []string
	if _, err := ParseLRRule(string(c.LRScale)); err != nil {
		errs = append(errs, err.Error())
	}
	if c.BaseBatch <= 0 {
		errs = append(errs, fmt.Sprintf("base batch must be positive, got %d", c.BaseBatch))
	}
	if c.Epochs > maxEpochs {
		errs = append(errs, fmt.Sprintf("the adapted regime would train %d epochs, more than %d", c.Epochs, maxEpochs))
	}
	if !(c.WarmupEpochs >= 0) || math.IsInf(c.WarmupEpochs, 0) {
		errs = append(errs, fmt.Sprintf("warmup epochs must be a non-negative number, got %g", c.WarmupEpochs))
	}
	if !(c.DecayFactor > 0 && c.DecayFactor < 1) {
		errs = append(errs, fmt.Sprintf("decay factor must be in (0, 1), got %g", c.DecayFactor))
	}
	for _, e := range c.DecayEpochs {
		if e <= 0 {
			errs = append(errs, fmt.Sprintf("decay epochs must be positive, got %v", c.DecayEpochs))
			break
		}
		if e >= c.Epochs {
			errs = append(errs, fmt.Sprintf("decay epoch %d is not before the last epoch %d, so it would never take effect", e, c.Epochs))
			break
		}
	}
	if c.IncreaseBatch && c.MaxBatch < c.Batch {
		errs = append(errs, fmt.Sprintf("max batch %d is below the starting batch %d", c.MaxBatch, c.Batch))
	}
	return errs
}

// ScheduleSummary describes the schedules in use, in words; "" for none.
func (c Config) ScheduleSummary() string {
	var parts []string
	if c.LRScale != ScaleNone {
		parts = append(parts, fmt.Sprintf("lr %g at batch %d scaled by the %s rule", c.LR, c.BaseBatch, c.LRScale))
	}
	if c.WarmupEpochs > 0 {
		parts = append(parts, fmt.Sprintf("%g warmup epochs", c.WarmupEpochs))
	}
	if len(c.DecayEpochs) > 0 {
		what := fmt.Sprintf("lr ÷%g", 1/c.DecayFactor)
		if c.IncreaseBatch {
			what = fmt.Sprintf("batch ×%g (up to %d, then lr ÷%g)", 1/c.DecayFactor, c.MaxBatch, 1/c.DecayFactor)
		}
		parts = append(parts, fmt.Sprintf("%s after epochs %v", what, c.DecayEpochs))
	}
	if c.GhostBatch > 0 {
		parts = append(parts, fmt.Sprintf("ghost batch norm over %d rows", c.GhostBatch))
	} else if c.BatchNorm {
		parts = append(parts, "batch norm")
	}
	return strings.Join(parts, "; ")
}

// ScaledLR is the peak learning rate after scaling for the starting batch.
func (c Config) ScaledLR() float64 {
	r := float64(c.Batch) / float64(c.BaseBatch)
	switch c.LRScale {
	case ScaleLinear:
		return c.LR * r
	case ScaleSqrt:
		return c.LR * math.Sqrt(r)
	}
	return c.LR
}

// decaysBefore counts the decay points passed before epoch (1-based) starts.
func (c Config) decaysBefore(epoch int) int {
	n := 0
	for _, e := range c.DecayEpochs {
		if e < epoch {
			n++
		}
	}
	return n
}

// batchGrowths is how many decays of epoch the increase-batch schedule turns
// into batch growth before the cap; the rest stay learning-rate decays.
func (c Config) batchGrowths(epoch int) int {
	if !c.IncreaseBatch {
		return 0
	}
	n, b := 0, float64(c.Batch)
	for range c.decaysBefore(epoch) {
		next := b / c.DecayFactor
		if math.Round(next) > float64(c.MaxBatch) {
			break
		}
		b = next
		n++
	}
	return n
}

// batchAt is the batch size of an epoch (1-based).
func (c Config) batchAt(epoch int) int {
	return int(math.Round(float64(c.Batch) / math.Pow(c.DecayFactor, float64(c.batchGrowths(epoch)))))
}

// lrAt is the learning rate of step (0-based) of an epoch (1-based) that
// has stepsPerEpoch steps.
func (c Config) lrAt(epoch, step, stepsPerEpoch int) float64 {
	lr := c.ScaledLR()
	if done := float64(epoch-1) + float64(step+1)/float64(stepsPerEpoch); done < c.WarmupEpochs {
		lr = c.LR + (lr-c.LR)*done/c.WarmupEpochs
	}
	lrDecays := c.decaysBefore(epoch) - c.batchGrowths(epoch)
	return lr * math.Pow(c.DecayFactor, float64(lrDecays))
}

// maxBatchSize is the largest batch any epoch of the run uses.
func (c Config) maxBatchSize() int {
	m := c.Batch
	for e := 1; e <= c.Epochs; e++ {
		m = max(m, c.batchAt(e))
	}
	return m
}

// stepsIn counts the batches of an epoch of n samples; the last may be short.
func (c Config) stepsIn(epoch, n int) int {
	b := c.batchAt(epoch)
	return (n + b - 1) / b
}

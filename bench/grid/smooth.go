package grid

import "math"

// The loss of one step is the mean over one batch: at B = 32 it scatters
// far more than at B = 4096, and a raw curve would cross a target early by
// luck at small batches. So the curve is smoothed over a fixed number of
// samples, not steps, and the window is centred: a trailing mean lags by
// half its length, W/(2B) steps, which would add a term in 1/B to S(B) —
// the very form the fit reads B_crit from.

// halfWindow is h of the centred mean over 2h+1 steps, covering about
// window samples at batch b (h = 0 when one batch holds that many).
func halfWindow(b, window int) int {
	return max(int(math.Round((float64(window)/float64(b)-1)/2)), 0)
}

// Smooth is the centred moving mean of losses over steps k−h … k+h (fewer
// on the left at the start). Where the right side of the window is not
// trained yet the value is NaN, as it is wherever the window holds a
// non-finite loss: neither can reach a target.
func Smooth(losses []float32, h int) []float64 {
	h = max(h, 0)
	out := make([]float64, len(losses))
	for k := range losses {
		lo, hi := max(k-h, 0), k+h+1
		if hi > len(losses) {
			out[k] = math.NaN()
			continue
		}
		// Summed afresh at each step: running prefix sums would cancel
		// catastrophically after a loss spike of 1e20 (a collapsing run).
		var sum float64
		for _, l := range losses[lo:hi] {
			sum += float64(l)
		}
		out[k] = sum / float64(hi-lo)
	}
	return out
}

// hits finds, for each target, the first step whose smoothed loss is at or
// below it: steps is its index (the updates before it), samples what those
// updates trained on.
func hits(smoothed []float64, targets []float64, samplesBefore func(k int) int) []Hit {
	hs := make([]Hit, len(targets))
	for i, t := range targets {
		hs[i] = Hit{Target: t}
		for k, l := range smoothed {
			if l <= t { // false for NaN
				steps, samples := k, samplesBefore(k)
				hs[i].Reached, hs[i].Steps, hs[i].Samples = true, &steps, &samples
				break
			}
		}
	}
	return hs
}

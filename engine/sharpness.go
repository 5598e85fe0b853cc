package engine

import (
	"fmt"
	"math"
)

// SharpnessConfig sets up the sharpness measurement.
type SharpnessConfig struct {
	Epsilon float64 `json:"epsilon"` // box half-width relative to |w|+1 (Keskar et al. used 1e-3 and 5e-4)
	Samples int     `json:"samples"` // training samples the loss is measured on
	Steps   int     `json:"steps"`   // projected gradient-ascent steps
	Seed    uint64  `json:"seed"`    // which samples
}

// DefaultSharpness is what the study uses: ε = 1e-3, 2048 samples, 10 steps.
func DefaultSharpness() SharpnessConfig {
	return SharpnessConfig{Epsilon: 1e-3, Samples: 2048, Steps: 10, Seed: 1}
}

// Sharpness measures metric 2.1 of Keskar et al. (2017), with A = I: the
// largest relative rise of the training loss f within the box
// |y_i| ≤ ε(|w_i|+1) around the weights w,
//
//	φ = 100 · (max_y f(w+y) − f(w)) / (1 + f(w)).
//
// Keskar et al. solve the inner maximization with L-BFGS-B. We approximate
// it with a few steps of projected sign-gradient ascent (the PGD of the
// adversarial literature): y ← clip(y + ε(|w|+1)/2 · sign(∇f(w+y))), which
// reaches a corner of the box in two steps and then walks along the corners
// uphill. The result is a lower bound of the true maximum, like any local
// search, and it keeps the best point seen. f is measured on a fixed sample
// of the training set. The weights are restored afterwards.
func Sharpness(t *Trainer, cfg SharpnessConfig) (phi float64, err error) {
	if cfg.Epsilon <= 0 || cfg.Samples <= 0 || cfg.Steps <= 0 {
		return 0, fmt.Errorf("sharpness: epsilon, samples and steps must be positive, got %g, %d, %d", cfg.Epsilon, cfg.Samples, cfg.Steps)
	}
	p, err := newProbe(t)
	if err != nil {
		return 0, err
	}
	defer p.Close()
	w0, err := t.Model.ReadParams(t.d, false)
	if err != nil {
		return 0, err
	}
	defer func() {
		if restore := t.Model.writeParams(t.d, w0); err == nil {
			err = restore
		}
	}()

	idx := sampleIndices(t.train.Len(), cfg.Samples, cfg.Seed, 0)
	f0, err := p.Loss(idx)
	if err != nil {
		return 0, err
	}
	y := make([][]float64, len(w0))
	for i := range w0 {
		y[i] = make([]float64, len(w0[i]))
	}
	w := cloneParams32(w0)
	best := f0
	for step := 0; step <= cfg.Steps; step++ {
		for i := range w0 {
			for j, v := range w0[i] {
				w[i][j] = v + float32(y[i][j])
			}
		}
		if err := t.Model.writeParams(t.d, w); err != nil {
			return 0, err
		}
		if step == cfg.Steps { // the last point only needs its loss
			f, err := p.Loss(idx)
			if err != nil {
				return 0, err
			}
			best = math.Max(best, f)
			break
		}
		f, g, err := p.LossAndGradient(idx)
		if err != nil {
			return 0, err
		}
		best = math.Max(best, f)
		for i := range y {
			for j := range y[i] {
				box := cfg.Epsilon * (math.Abs(float64(w0[i][j])) + 1)
				y[i][j] = math.Max(-box, math.Min(box, y[i][j]+box/2*sign(g[i][j])))
			}
		}
	}
	return 100 * (best - f0) / (1 + f0), nil
}

func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

func cloneParams32(ps [][]float32) [][]float32 {
	out := make([][]float32, len(ps))
	for i, p := range ps {
		out[i] = append([]float32(nil), p...)
	}
	return out
}

package engine

import (
	"fmt"
	"math"
	"math/rand/v2"
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
	p, w0, restore, err := probeWeights(t)
	if err != nil {
		return 0, err
	}
	defer restore(&err)

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

// probeWeights opens a probe on t and reads t's weights; restore writes
// them back and closes the probe, keeping *err if it is already set: both
// measures move the weights and must leave them as they found them.
func probeWeights(t *Trainer) (p *probe, w0 [][]float32, restore func(err *error), err error) {
	if p, err = newProbe(t); err != nil {
		return nil, nil, nil, err
	}
	if w0, err = t.Model.ReadParams(t.d, false); err != nil {
		p.Close()
		return nil, nil, nil, err
	}
	return p, w0, func(err *error) {
		if e := t.Model.writeParams(t.d, w0); *err == nil {
			*err = e
		}
		p.Close()
	}, nil
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

// HessianConfig sets up the top-eigenvalue measurement.
type HessianConfig struct {
	Samples    int     `json:"samples"`    // training samples the loss is measured on
	Iterations int     `json:"iterations"` // power iterations
	Epsilon    float64 `json:"epsilon"`    // finite-difference step, relative to max(1, |w|)
	Seed       uint64  `json:"seed"`       // which samples, and the start vector
}

// DefaultHessian: 2048 samples, 20 iterations, a step of 1e-3·|w|.
func DefaultHessian() HessianConfig {
	return HessianConfig{Samples: 2048, Iterations: 20, Epsilon: 1e-3, Seed: 1}
}

// HessianTop estimates the largest eigenvalue λ_max of the Hessian of the
// training loss f at the current weights w (on a fixed sample of the
// training set), the curvature of the sharpest direction, by power
// iteration on Hessian-vector products taken as central differences of
// gradients, Hv ≈ (∇f(w+hv) − ∇f(w−hv))/2h with |v| = 1, h =
// Epsilon·max(1, |w|): v ← Hv/|Hv|, and λ = v·Hv, the Rayleigh quotient.
// Power iteration finds the eigenvalue largest in magnitude; at a minimum
// that is λ_max. The weights are restored afterwards. (Written by hand:
// gonum's eigensolvers need the matrix, and H has |w|² entries.)
func HessianTop(t *Trainer, cfg HessianConfig) (lambda float64, err error) {
	if cfg.Samples <= 0 || cfg.Iterations <= 0 || !(cfg.Epsilon > 0) {
		return 0, fmt.Errorf("hessian: samples, iterations and epsilon must be positive, got %d, %d, %g", cfg.Samples, cfg.Iterations, cfg.Epsilon)
	}
	p, w0, restore, err := probeWeights(t)
	if err != nil {
		return 0, err
	}
	defer restore(&err)
	idx := sampleIndices(t.train.Len(), cfg.Samples, cfg.Seed, 0)
	var wNorm float64
	for _, ws := range w0 {
		for _, v := range ws {
			wNorm += float64(v) * float64(v)
		}
	}
	h := cfg.Epsilon * math.Max(1, math.Sqrt(wNorm))

	// A seeded random start: a fixed direction could be orthogonal to the top one.
	v := make([][]float64, len(w0))
	rng := rand.New(rand.NewPCG(cfg.Seed, 7))
	for i := range w0 {
		v[i] = make([]float64, len(w0[i]))
		for j := range v[i] {
			v[i][j] = rng.NormFloat64()
		}
	}
	normalize(v)
	w := cloneParams32(w0)
	gradAt := func(step float64) ([][]float64, error) {
		for i := range w0 {
			for j, x := range w0[i] {
				w[i][j] = float32(float64(x) + step*v[i][j])
			}
		}
		if err := t.Model.writeParams(t.d, w); err != nil {
			return nil, err
		}
		_, g, err := p.LossAndGradient(idx)
		return g, err
	}
	for range cfg.Iterations {
		plus, err := gradAt(h)
		if err != nil {
			return 0, err
		}
		minus, err := gradAt(-h)
		if err != nil {
			return 0, err
		}
		lambda = 0
		for i := range plus {
			for j := range plus[i] {
				hv := (plus[i][j] - minus[i][j]) / (2 * h)
				lambda += v[i][j] * hv
				plus[i][j] = hv
			}
		}
		if normalize(plus) == 0 {
			return 0, nil // a flat loss: every direction has curvature 0
		}
		v = plus
	}
	return lambda, nil
}

// normalize scales v to unit length and returns its length before.
func normalize(v [][]float64) float64 {
	n := math.Sqrt(squaredNorm(v))
	if n == 0 {
		return 0
	}
	for i := range v {
		for j := range v[i] {
			v[i][j] /= n
		}
	}
	return n
}

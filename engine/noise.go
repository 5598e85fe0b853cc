package engine

import (
	"fmt"
	"math"
)

// The gradient noise scale of McCandlish et al. (2018), "An Empirical Model
// of Large-Batch Training". With G the true gradient and Σ the per-sample
// covariance, a minibatch gradient of B samples has E|G_B|² = |G|² +
// tr(Σ)/B. From the norms at a small and a big batch, appendix A gives
// unbiased estimates of both terms:
//
//	|G|²  ≈ (B_big·|G_big|² − B_small·|G_small|²) / (B_big − B_small)
//	tr(Σ) ≈ (|G_small|² − |G_big|²) / (1/B_small − 1/B_big)
//
// and the simple noise scale B_simple = tr(Σ)/|G|², which predicts the
// critical batch: below it, doubling the batch nearly halves the steps
// needed; above it, it buys little. Single estimates are noisy (the |G|²
// one can even be negative), so each term is averaged over many
// measurements before the ratio is taken, as the paper does.

// NoiseEstimate accumulates measurements of the two gradient norms.
type NoiseEstimate struct {
	Small, Big  int // the two batch sizes
	sumG2, sumS float64
	n           int
}

// Add records one pair of squared gradient norms.
func (e *NoiseEstimate) Add(smallSq, bigSq float64) {
	bs, bb := float64(e.Small), float64(e.Big)
	e.sumG2 += (bb*bigSq - bs*smallSq) / (bb - bs)
	e.sumS += (smallSq - bigSq) / (1/bs - 1/bb)
	e.n++
}

// GradSq is the mean estimate of |G|².
func (e NoiseEstimate) GradSq() float64 { return e.sumG2 / float64(e.n) }

// TraceSigma is the mean estimate of tr(Σ).
func (e NoiseEstimate) TraceSigma() float64 { return e.sumS / float64(e.n) }

// BSimple is tr(Σ)/|G|²; +Inf while |G|² is not yet estimated positive.
func (e NoiseEstimate) BSimple() float64 {
	if g2 := e.GradSq(); g2 > 0 {
		return e.TraceSigma() / g2
	}
	return math.Inf(1)
}

// Count is the number of measurements.
func (e NoiseEstimate) Count() int { return e.n }

// NoiseMeter measures the noise scale of a trainer's model at its current
// weights, on fresh random batches each time.
type NoiseMeter struct {
	probe *probe
	est   NoiseEstimate
	seed  uint64
	draws int
}

// NewNoiseMeter measures with batches of small and big samples.
func NewNoiseMeter(t *Trainer, small, big int, seed uint64) (*NoiseMeter, error) {
	if small <= 0 || big <= small {
		return nil, fmt.Errorf("noise scale: need 0 < small batch < big batch, got %d and %d", small, big)
	}
	if big > t.train.Len() {
		return nil, fmt.Errorf("noise scale: big batch %d exceeds the %d training samples", big, t.train.Len())
	}
	p, err := newProbe(t)
	if err != nil {
		return nil, err
	}
	return &NoiseMeter{probe: p, est: NoiseEstimate{Small: small, Big: big}, seed: seed}, nil
}

// measure adds one measurement at the current weights: the gradient of a
// random small batch and, independently drawn, of a random big batch.
func (m *NoiseMeter) measure() error {
	var sq [2]float64
	for i, n := range []int{m.est.Small, m.est.Big} {
		m.draws++
		idx := sampleIndices(m.probe.t.train.Len(), n, m.seed, m.draws)
		_, g, err := m.probe.LossAndGradient(idx)
		if err != nil {
			return fmt.Errorf("noise scale: %w", err)
		}
		sq[i] = squaredNorm(g)
	}
	m.est.Add(sq[0], sq[1])
	return nil
}

// Close frees the meter's buffers.
func (m *NoiseMeter) Close() { m.probe.Close() }

// Sample starts a new estimate at the current weights from pairs
// measurements and returns it.
func (m *NoiseMeter) Sample(pairs int) (NoiseEstimate, error) {
	m.est = NoiseEstimate{Small: m.est.Small, Big: m.est.Big}
	for range pairs {
		if err := m.measure(); err != nil {
			return m.est, err
		}
	}
	return m.est, nil
}

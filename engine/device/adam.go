package device

import "math"

// AdamStep is the scalars of one Adam or AdamW update (Device.Adam). The
// bias corrections depend on the step only, so they are folded in on the
// host, in float64, as PyTorch computes them in Python floats: one kernel
// then serves both rules and every step.
type AdamStep struct {
	Beta1, Beta2, Eps float32
	// OneMinusBeta1 and OneMinusBeta2 are computed in float64, as PyTorch
	// passes them (1 − float32(0.999) is off by 1.3e-5 relative).
	OneMinusBeta1, OneMinusBeta2 float32
	// L2 is Adam's weight decay, added to the gradient; 0 for AdamW.
	L2 float32
	// Decay multiplies w before the update: AdamW's 1 − lr·weightDecay, 1 for Adam.
	Decay float32
	// StepSize is lr / (1 − β1ᵗ).
	StepSize float32
	// BiasCorrection2Sqrt is √(1 − β2ᵗ).
	BiasCorrection2Sqrt float32
}

// NewAdamStep returns the scalars of update step (from 1) of Adam, or of
// AdamW when decoupled (weight decay applied to w, not added to the
// gradient), as torch.optim.Adam and AdamW have them.
func NewAdamStep(lr, beta1, beta2, eps, weightDecay float64, step int, decoupled bool) AdamStep {
	s := AdamStep{
		Beta1: float32(beta1), Beta2: float32(beta2), Eps: float32(eps),
		OneMinusBeta1: float32(1 - beta1), OneMinusBeta2: float32(1 - beta2),
		L2: float32(weightDecay), Decay: 1,
		StepSize:            float32(lr / (1 - math.Pow(beta1, float64(step)))),
		BiasCorrection2Sqrt: float32(math.Sqrt(1 - math.Pow(beta2, float64(step)))),
	}
	if decoupled {
		s.L2, s.Decay = 0, float32(1-lr*weightDecay)
	}
	return s
}

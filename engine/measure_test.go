package engine_test

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/device"
)

func trainedTrainer(t *testing.T, epochs int) *engine.Trainer {
	t.Helper()
	train, test := loadSubset(t)
	cfg := smallConfig()
	cfg.Epochs = epochs
	tr, err := engine.NewTrainer(device.NewCPU(), cfg, train.Subset(2000), test.Subset(200))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(context.Background(), engine.Hooks{}); err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestSharpness: positive, growing with the box, and the weights restored.
func TestSharpness(t *testing.T) {
	tr := trainedTrainer(t, 1)
	w0, err := readParams(tr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := engine.SharpnessConfig{Epsilon: 1e-3, Samples: 500, Steps: 5, Seed: 1}
	small, err := engine.Sharpness(tr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Epsilon = 5e-3
	large, err := engine.Sharpness(tr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sharpness ε=1e-3: %.4f, ε=5e-3: %.4f", small, large)
	if !(small > 0) || !(large > small) {
		t.Errorf("sharpness %g at ε=1e-3 and %g at ε=5e-3: want 0 < first < second", small, large)
	}
	w1, err := readParams(tr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range w0 {
		if !slices.Equal(w0[i], w1[i]) {
			t.Fatal("Sharpness did not restore the weights")
		}
	}
}

func readParams(tr *engine.Trainer) ([][]float32, error) {
	return tr.Model.ReadParams(tr.Device(), false)
}

// TestNoiseEstimateRecoversKnownTerms: with norms that follow
// E|G_B|² = |G|² + tr(Σ)/B exactly, the estimators give both terms back.
func TestNoiseEstimateRecoversKnownTerms(t *testing.T) {
	const g2, trace = 0.5, 40.0
	e := engine.NoiseEstimate{Small: 32, Big: 512}
	for range 3 {
		e.Add(g2+trace/32, g2+trace/512)
	}
	if math.Abs(e.GradSq()-g2) > 1e-12 || math.Abs(e.TraceSigma()-trace) > 1e-9 || math.Abs(e.BSimple()-80) > 1e-9 {
		t.Errorf("|G|² %g, tr Σ %g, B_simple %g; want %g, %g, 80", e.GradSq(), e.TraceSigma(), e.BSimple(), g2, trace)
	}
}

// TestNoiseMeter: on a real model the estimate is finite and positive, and
// a small batch's gradient is noisier than a big one's.
func TestNoiseMeter(t *testing.T) {
	tr := trainedTrainer(t, 1)
	m, err := engine.NewNoiseMeter(tr, 16, 256, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	e, err := m.Sample(8)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("|G|² %.4g, tr Σ %.4g, B_simple %.1f over %d measurements", e.GradSq(), e.TraceSigma(), e.BSimple(), e.Count())
	if !(e.TraceSigma() > 0) || !(e.BSimple() > 0) || math.IsInf(e.BSimple(), 0) {
		t.Errorf("tr Σ %g, B_simple %g: want positive and finite", e.TraceSigma(), e.BSimple())
	}
	if _, err := engine.NewNoiseMeter(tr, 64, 32, 1); err == nil {
		t.Error("a big batch smaller than the small one was accepted")
	}
}

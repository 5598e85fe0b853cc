//go:build !cpu

// This test needs a CUDA driver: a GPU, or the fake driver of
// kernels/fakecuda (make fake-gpu-test).

package main

import (
	"encoding/json"
	"math"
	"slices"
	"testing"

	"github.com/batchlab/batchlab/engine/data"
)

// TestTrainCUDAMatchesCPU runs `batchlab train --device cuda` with every
// transfer strategy, with and without --graph, and compares each run's
// --json output with `--device cpu` from the same seed: the loss of every
// step, the test loss and the test accuracy.
//
// Tolerance. The devices differ only in the order of float32 sums (cuBLAS's
// GEMM, the kernels' row and column sums), relative errors of about 1e-6 per
// product; over these 10 steps of a 784-64-10 MLP they stay near 1e-5 (under
// the fake driver, whose GEMM is a reference loop: 2.4e-7 over 20 steps). The
// bound, 1e-3 + 1e-3·loss per step and 2e-3 on the test loss, is a hundred
// times that, and a real bug is far outside it: a strategy that trains on
// the wrong batch, or a stale or half-copied one, moves that step's loss by
// hundredths to tenths (batches of 100 differ that much at this stage). The
// test accuracy may move by one digit in a thousand. With --graph the GPU
// runs the same kernels in the same order, so the losses must be the same
// bits as without (engine's TestCUDATraining says why cuBLAS agrees).
func TestTrainCUDAMatchesCPU(t *testing.T) {
	args := []string{"train", "--data", subset, "--hidden", "64", "--train-samples", "1000", "--batch", "100",
		"--epochs", "1", "--seed", "7", "--json", "--no-progress"}
	train := func(t *testing.T, extra ...string) trainReport {
		t.Helper()
		out, err := run(t, append(slices.Clone(args), extra...)...)
		if err != nil {
			t.Fatalf("batchlab train %v: %v", extra, err)
		}
		var rep trainReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("--json output does not parse: %v\n%s", err, out)
		}
		if len(rep.Epochs) != 1 || len(rep.Epochs[0].StepLosses) != 10 {
			t.Fatalf("want 1 epoch of 10 steps, got %+v", rep.Epochs)
		}
		return rep
	}
	cpu := train(t, "--device", "cpu").Epochs[0]
	var worst float64
	for _, strategy := range data.StrategyNames() {
		t.Run("transfer="+strategy, func(t *testing.T) {
			gpu := train(t, "--device", "cuda", "--transfer", strategy)
			if gpu.Device.Kind != "cuda" {
				t.Fatalf("ran on %q, want cuda", gpu.Device.Kind)
			}
			e := gpu.Epochs[0]
			for i, l := range e.StepLosses {
				d := math.Abs(float64(l - cpu.StepLosses[i]))
				worst = max(worst, d)
				if d > 1e-3+1e-3*math.Abs(float64(cpu.StepLosses[i])) {
					t.Errorf("step %d: loss %g on the GPU, %g on the CPU", i, l, cpu.StepLosses[i])
				}
			}
			if d := math.Abs(e.TestLoss - cpu.TestLoss); d > 2e-3 {
				t.Errorf("test loss %g on the GPU, %g on the CPU", e.TestLoss, cpu.TestLoss)
			}
			if d := math.Abs(e.TestAccuracy - cpu.TestAccuracy); d > 1.5e-3 {
				t.Errorf("test accuracy %g on the GPU, %g on the CPU", e.TestAccuracy, cpu.TestAccuracy)
			}
			g := train(t, "--device", "cuda", "--transfer", strategy, "--graph").Epochs[0]
			if !slices.Equal(g.StepLosses, e.StepLosses) || g.TestLoss != e.TestLoss {
				t.Errorf("--graph changed the run: step losses %v, test loss %g; without: %v, %g",
					g.StepLosses, g.TestLoss, e.StepLosses, e.TestLoss)
			}
			t.Logf("%s: test loss %.6f (CPU %.6f), accuracy %.4f (CPU %.4f), %.0f samples/s, with --graph %.0f",
				strategy, e.TestLoss, cpu.TestLoss, e.TestAccuracy, cpu.TestAccuracy, e.SamplesPerSec, g.SamplesPerSec)
		})
	}
	// One line in a fixed form: the GPU kit reads this number from it.
	t.Logf("CLI GPU vs CPU: largest step-loss difference %.3g", worst)
}

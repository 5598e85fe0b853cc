//go:build !cpu

// This test runs the CUDA device: on a GPU, or on the fake driver of
// kernels/fakecuda (make fake-gpu-test).

package engine_test

import "testing"

// TestCUDATrainingCNN trains CNNs on the CUDA device as TestCUDATraining
// does the MLP: with and without graphs bit for bit, and following the CPU's
// loss curve within 1e-3·(1 + loss) at every step (the convolution kernels
// give the CPU's bits, TestCUDAConvSameBits; the GEMMs and the loss kernels
// round in another order). LeNet-5, and a CNN with ghost batch norm over
// channels, with momentum SGD and a warmup that changes the LR every step.
func TestCUDATrainingCNN(t *testing.T) {
	for _, tc := range []struct {
		model string
		ghost int
	}{{"lenet5", 0}, {"cnn:6,8", 8}} {
		t.Run(tc.model, func(t *testing.T) {
			cfg := cnnConfig(t, tc.model)
			cfg.Batch, cfg.EvalBatch, cfg.Epochs, cfg.GhostBatch = 32, 100, 2, tc.ghost
			cfg.LRScale, cfg.BaseBatch, cfg.WarmupEpochs = "linear", 16, 1
			checkCUDATraining(t, cfg)
		})
	}
}

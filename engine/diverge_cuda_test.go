//go:build !cpu

// This test runs the CUDA device: on a GPU, or on the fake driver of
// kernels/fakecuda (make fake-gpu-test).

package engine_test

import (
	"testing"

	"github.com/batchlab/batchlab/engine/device"
)

// TestCUDADivergenceKeepsTheLastFiniteWeights is the CPU test's check on
// the CUDA device, call by call and with graphs (where the loss and the
// update read the guard at each replay): at lr 1e30 step 2's loss is NaN,
// and the weights stay those after step 1.
func TestCUDADivergenceKeepsTheLastFiniteWeights(t *testing.T) {
	train, test := loadSubset(t)
	for _, graph := range []bool{false, true} {
		cfg := resumeConfig()
		cfg.GhostBatch, cfg.LR, cfg.Epochs, cfg.Hidden, cfg.Batch, cfg.Graph = 0, 1e30, 1, []int{32}, 100, graph
		t.Run(map[bool]string{false: "calls", true: "graphs"}[graph], func(t *testing.T) {
			checkDivergenceKeepsLastFiniteWeights(t, cfg, train.Subset(1000), test.Subset(100), func() device.Device { return openCUDA(t) })
		})
	}
}

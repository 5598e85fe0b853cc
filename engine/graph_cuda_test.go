//go:build !cpu

// This test runs the CUDA device: on a GPU, or on the fake driver of
// kernels/fakecuda (make fake-gpu-test).

package engine_test

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/device"
)

// TestCUDATraining trains on the CUDA device: with and without graphs the
// runs must agree bit for bit (the calls and their order are the same, and
// cuBLAS has a workspace of ours, so it picks the same algorithm inside a
// capture as outside; see cublasHandle.setWorkspace), and both must
// follow the CPU's loss curve. Warmup changes the learning rate at every
// step of the first epoch, so the update runs call by call there and as a
// graph in the second; 200 samples in batches of 32 end each epoch with a
// short batch, a graph of its own (captured when seen again, in epoch 2).
func TestCUDATraining(t *testing.T) {
	train, test := loadSubset(t)
	train, test = train.Subset(200), test.Subset(200)
	cfg := smallConfig()
	cfg.Batch, cfg.EvalBatch, cfg.Epochs = 32, 100, 2
	cfg.LRScale, cfg.BaseBatch, cfg.WarmupEpochs = "linear", 16, 1 // lr ramps to 2·LR over epoch 1
	run := func(d device.Device, graph bool) ([]engine.EpochStats, [][]float32) {
		t.Helper()
		defer d.Close()
		c := cfg
		c.Graph = graph
		tr, err := engine.NewTrainer(d, c, train, test)
		if err != nil {
			t.Fatal(err)
		}
		stats, err := tr.Run(context.Background(), engine.Hooks{})
		if err != nil {
			t.Fatal(err)
		}
		params, err := tr.Model.ReadParams(d, false)
		if err != nil {
			t.Fatal(err)
		}
		return stats, params
	}
	open := func() device.Device {
		d, err := device.Open("cuda")
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	cpuStats, _ := run(device.NewCPU(), false)
	gpuStats, gpuParams := run(open(), false)
	graphStats, graphParams := run(open(), true)

	for e := range gpuStats {
		if !slices.Equal(gpuStats[e].StepLosses, graphStats[e].StepLosses) {
			t.Errorf("epoch %d: step losses %v without graphs, %v with", e+1, gpuStats[e].StepLosses, graphStats[e].StepLosses)
		}
		if gpuStats[e].TestLoss != graphStats[e].TestLoss || gpuStats[e].TrainAccuracy != graphStats[e].TrainAccuracy {
			t.Errorf("epoch %d: %+v without graphs, %+v with", e+1, gpuStats[e], graphStats[e])
		}
	}
	for i := range gpuParams {
		if !slices.Equal(gpuParams[i], graphParams[i]) {
			t.Errorf("parameter tensor %d differs with graphs", i)
		}
	}
	// Against the CPU: the kernels round differently (float32 sums in
	// another order, expf), so the curves agree closely, not exactly.
	for e := range cpuStats {
		for s, want := range cpuStats[e].StepLosses {
			if got := gpuStats[e].StepLosses[s]; math.Abs(float64(got-want)) > 1e-3*(1+math.Abs(float64(want))) {
				t.Errorf("epoch %d step %d: loss %g on the GPU, %g on the CPU", e+1, s, got, want)
			}
		}
	}
}

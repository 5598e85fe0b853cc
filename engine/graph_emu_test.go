//go:build emu

package engine_test

import (
	"context"
	"math"
	"slices"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/device"
)

// TestEmulatedTraining trains on the CUDA kernels, emulated on the host:
// with and without graphs the runs must agree bit for bit, and both must
// follow the CPU's loss curve. Warmup changes the learning rate at every
// step of the first epoch, so the update runs call by call there and as a
// graph in the second; 200 samples in batches of 32 end each epoch with a
// short batch, a graph of its own (captured when seen again, in epoch 2).
func TestEmulatedTraining(t *testing.T) {
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
	cpuStats, _ := run(device.NewCPU(), false)
	emuStats, emuParams := run(device.NewEmulated(3), false)
	graphStats, graphParams := run(device.NewEmulated(3), true)

	for e := range emuStats {
		if !slices.Equal(emuStats[e].StepLosses, graphStats[e].StepLosses) {
			t.Errorf("epoch %d: step losses %v without graphs, %v with", e+1, emuStats[e].StepLosses, graphStats[e].StepLosses)
		}
		if emuStats[e].TestLoss != graphStats[e].TestLoss || emuStats[e].TrainAccuracy != graphStats[e].TrainAccuracy {
			t.Errorf("epoch %d: %+v without graphs, %+v with", e+1, emuStats[e], graphStats[e])
		}
	}
	for i := range emuParams {
		if !slices.Equal(emuParams[i], graphParams[i]) {
			t.Errorf("parameter tensor %d differs with graphs", i)
		}
	}
	// Against the CPU: the kernels round differently (float32 sums in
	// another order, expf), so the curves agree closely, not exactly.
	for e := range cpuStats {
		for s, want := range cpuStats[e].StepLosses {
			if got := emuStats[e].StepLosses[s]; math.Abs(float64(got-want)) > 1e-3*(1+math.Abs(float64(want))) {
				t.Errorf("epoch %d step %d: loss %g on the emulated kernels, %g on the CPU", e+1, s, got, want)
			}
		}
	}
}

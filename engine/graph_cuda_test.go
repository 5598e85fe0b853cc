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
	"github.com/batchlab/batchlab/engine/data"
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
// With AdamW the update always runs call by call, the passes as graphs.
func TestCUDATraining(t *testing.T) {
	cfg := smallConfig()
	cfg.Batch, cfg.EvalBatch, cfg.Epochs = 32, 100, 2
	cfg.LRScale, cfg.BaseBatch, cfg.WarmupEpochs = "linear", 16, 1 // lr ramps to 2·LR over epoch 1
	t.Run("sgd", func(t *testing.T) { checkCUDATraining(t, cfg) })
	useAdam(&cfg, engine.AdamW)
	cfg.LR, cfg.WeightDecay = 0.002, 0.01
	t.Run("adamw", func(t *testing.T) { checkCUDATraining(t, cfg) })
}

func checkCUDATraining(t *testing.T, cfg engine.Config) {
	train, test := loadSubset(t)
	train, test = train.Subset(200), test.Subset(200)
	run := func(d device.Device, graph bool) ([]engine.EpochStats, [][]float32) {
		t.Helper()
		defer d.Close()
		c := cfg
		c.Graph = graph
		tr, stats := trainAll(t, d, c, train, test)
		params, err := tr.Model.ReadParams(d, false)
		if err != nil {
			t.Fatal(err)
		}
		return stats, params
	}
	cpuStats, _ := run(device.NewCPU(), false)
	gpuStats, gpuParams := run(openCUDA(t), false)
	graphStats, graphParams := run(openCUDA(t), true)

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

// TestCUDAStrategiesTrainIdentically trains on the GPU with every transfer
// strategy: they move the same batches, so the runs must agree. Under the
// fake driver this also checks the pinned-async loader's ordering: a copy
// that overwrites a staging or device buffer still in use by the other
// stream is a race the fake reports.
func TestCUDAStrategiesTrainIdentically(t *testing.T) {
	train, test := loadSubset(t)
	train, test = train.Subset(200), test.Subset(100)
	cfg := smallConfig()
	cfg.Epochs, cfg.Batch, cfg.EvalBatch = 1, 64, 100 // a short last batch: 200 = 3·64 + 8
	var ref []float32
	for _, s := range data.Strategies() {
		name := s.String()
		d, err := device.Open("cuda")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Transfer = s
		tr, err := engine.NewTrainer(d, cfg, train, test)
		if err != nil {
			t.Fatal(err)
		}
		stats, err := tr.Run(context.Background(), engine.Hooks{})
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		losses := stats[0].StepLosses
		if ref == nil {
			ref = losses
			continue
		}
		for i := range ref {
			if math.Abs(float64(losses[i]-ref[i])) > 1e-6 {
				t.Errorf("%s: step %d loss %g, %g with %s", name, i, losses[i], ref[i], data.StrategyNames()[0])
			}
		}
	}
}

// TestCUDAPinnedAsyncOrder runs the pinned-async loader the way a step
// without a per-step Sync would: each batch read by a kernel while the next
// one is copied in. Under the fake driver, a copy into a slot whose last
// reader is not ordered before it (the loader's wait on the slot's release
// event) is a race that fails the kernel and Sync.
func TestCUDAPinnedAsyncOrder(t *testing.T) {
	d := openCUDA(t)
	defer d.Close()
	ds := data.Random(60, 4, 4, 10, 1)
	l, err := data.NewLoader(d, ds, 10, data.Strategy{Mode: data.PinnedAsync})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out, err := d.Alloc(device.Float32, 10*ds.Features())
	if err != nil {
		t.Fatal(err)
	}
	batch := func(i int) []int32 {
		b := make([]int32, 10)
		for j := range b {
			b[j] = int32(10*i + j)
		}
		return b
	}
	for i := range 6 {
		x, _, err := l.Load(batch(i))
		if err != nil {
			t.Fatal(err)
		}
		d.ReLU(out, x, 10*ds.Features())
		if i+1 < 6 {
			if err := l.Prefetch(batch(i + 1)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}

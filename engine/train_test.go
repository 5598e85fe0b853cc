package engine_test

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// loadSubset reads the 5000/1000-sample MNIST subset committed in testdata.
func loadSubset(t testing.TB) (train, test *data.Dataset) {
	t.Helper()
	train, test, err := data.LoadMNIST("../testdata/mnist-subset")
	if err != nil {
		t.Fatal(err)
	}
	return train, test
}

// trainAll trains a trainer for cfg on d to its end; the caller closes d.
func trainAll(t *testing.T, d device.Device, cfg engine.Config, train, test *data.Dataset) (*engine.Trainer, []engine.EpochStats) {
	t.Helper()
	tr, err := engine.NewTrainer(d, cfg, train, test)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := tr.Run(context.Background(), engine.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	return tr, stats
}

func smallConfig() engine.Config {
	cfg := engine.DefaultConfig()
	cfg.Hidden = []int{128, 64}
	cfg.Batch = 50
	cfg.LR = 0.05
	cfg.Epochs = 3
	cfg.Seed = 7
	return cfg
}

// TestTrainSubset trains on 5000 MNIST digits and must reach 87% on the
// 1000 test digits after three epochs (seeds 7–11 reach 88.5–91.1%).
func TestTrainSubset(t *testing.T) {
	train, test := loadSubset(t)
	cfg := smallConfig()
	_, stats := trainAll(t, device.NewCPU(), cfg, train, test)
	last := stats[len(stats)-1]
	t.Logf("epoch %d: train loss %.4f acc %.4f, test loss %.4f acc %.4f", last.Epoch, last.TrainLoss, last.TrainAccuracy, last.TestLoss, last.TestAccuracy)
	if last.TestAccuracy < 0.87 {
		t.Errorf("test accuracy %.4f after %d epochs, want ≥ 0.87", last.TestAccuracy, cfg.Epochs)
	}
	if stats[2].TrainLoss >= stats[0].TrainLoss {
		t.Errorf("train loss did not fall: %.4f then %.4f", stats[0].TrainLoss, stats[2].TrainLoss)
	}
	steps := (train.Len() + cfg.Batch - 1) / cfg.Batch
	if last.Updates != steps || last.TotalUpdates != 3*steps || len(last.StepLosses) != steps {
		t.Errorf("updates %d total %d losses %d, want %d, %d, %d", last.Updates, last.TotalUpdates, len(last.StepLosses), steps, 3*steps, steps)
	}
	// Every sample crosses once as float32 pixels and once as an int32 label.
	if want := int64(train.Len() * (train.Features() + 1) * 4); last.H2DBytes != want {
		t.Errorf("moved %d bytes host→device, want %d", last.H2DBytes, want)
	}
	if last.H2DCopies != int64(2*steps) {
		t.Errorf("%d copies, want %d", last.H2DCopies, 2*steps)
	}
}

// TestDeterministic: the same seed gives a bit-identical loss curve on the
// CPU, and another seed a different one.
func TestDeterministic(t *testing.T) {
	train, test := loadSubset(t)
	train, test = train.Subset(1500), test.Subset(200)
	curve := func(seed uint64) []float32 {
		cfg := smallConfig()
		cfg.Seed = seed
		_, stats := trainAll(t, device.NewCPU(), cfg, train, test)
		var all []float32
		for _, s := range stats {
			all = append(all, s.StepLosses...)
		}
		return all
	}
	a, b, c := curve(3), curve(3), curve(4)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different loss curves:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Error("seeds 3 and 4 gave the same loss curve")
	}
}

// TestIncreaseBatchWithGhostBatchNorm runs the schedules end to end: the
// batch grows ×5 after epoch 1, so epoch 2 makes a fifth of the updates,
// and a ghost-batch-normalized model still learns.
func TestIncreaseBatchWithGhostBatchNorm(t *testing.T) {
	train, test := loadSubset(t)
	cfg := smallConfig()
	cfg.Epochs, cfg.Batch = 2, 50
	cfg.DecayEpochs, cfg.DecayFactor, cfg.IncreaseBatch, cfg.MaxBatch = []int{1}, 0.2, true, 250
	cfg.GhostBatch = 25
	tr, err := engine.NewTrainer(device.NewCPU(), cfg, train, test)
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.Model.String(); !strings.Contains(got, "GhostBatchNorm(25)") {
		t.Errorf("model %s has no ghost batch norm", got)
	}
	stats, err := tr.Run(context.Background(), engine.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	if stats[0].Batch != 50 || stats[1].Batch != 250 || stats[0].Updates != 100 || stats[1].Updates != 20 {
		t.Errorf("batches %d, %d with %d, %d updates; want 50, 250 with 100, 20", stats[0].Batch, stats[1].Batch, stats[0].Updates, stats[1].Updates)
	}
	if stats[0].LR != stats[1].LR {
		t.Errorf("increase-batch changed the LR: %g then %g", stats[0].LR, stats[1].LR)
	}
	if acc := stats[1].TestAccuracy; acc < 0.85 {
		t.Errorf("test accuracy %.4f with ghost batch norm, want ≥ 0.85", acc)
	}
	t.Logf("test accuracy %.4f, %.4f", stats[0].TestAccuracy, stats[1].TestAccuracy)
}

// TestIdleSettings: a setting that would change nothing in its run is
// refused with the reason, while the same setting where it acts, and a
// sweep's point at the base batch itself, pass.
func TestIdleSettings(t *testing.T) {
	base := engine.Config{Hidden: []int{8}, Batch: 128, LR: 0.1, Momentum: 0.9, Epochs: 3, EvalBatch: 100}
	for _, c := range []struct {
		mod  func(*engine.Config)
		want string // "" for valid
	}{
		{func(c *engine.Config) { c.LRScale = engine.ScaleSqrt }, "the sqrt LR rule scales lr from a base batch, and none is set"},
		{func(c *engine.Config) { c.LRScale, c.BaseBatch = engine.ScaleSqrt, 128 }, ""}, // a sweep's base point
		{func(c *engine.Config) { c.WarmupEpochs = 1 }, "with no LR scaling rule there is nothing to ramp"},
		{func(c *engine.Config) { c.WarmupEpochs, c.LRScale, c.BaseBatch = 1, engine.ScaleLinear, 32 }, ""},
		{func(c *engine.Config) { c.AdaptRegime = true }, "the batch 128 is not above the base batch 128"},
		{func(c *engine.Config) { c.AdaptRegime, c.BaseBatch = true, 32 }, ""},
		{func(c *engine.Config) { c.IncreaseBatch, c.MaxBatch = true, 1280 }, "increase-batch grows the batch at the decay epochs, and there are none"},
		{func(c *engine.Config) { c.IncreaseBatch, c.DecayEpochs = true, []int{1, 2} }, "its first growth, 128 → 1280, passes the max batch 128"},
		{func(c *engine.Config) { c.IncreaseBatch, c.DecayEpochs, c.MaxBatch = true, []int{1, 2}, 1000 }, "set a max batch of at least 1280"},
		{func(c *engine.Config) { c.IncreaseBatch, c.DecayEpochs, c.MaxBatch = true, []int{1, 2}, 1280 }, ""},
		{func(c *engine.Config) { c.GhostBatch = 128 }, "ghost batch 128 is not smaller than the largest batch 128"},
		{func(c *engine.Config) { c.GhostBatch = 32 }, ""},
	} {
		cfg := base
		c.mod(&cfg)
		err := cfg.Validate(5000)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%+v refused: %v", cfg, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%+v: error %v, want %q", cfg, err, c.want)
		}
	}
}

// TestEvalSeconds: an epoch reports its evaluation's wall time beside its
// training pass's.
func TestEvalSeconds(t *testing.T) {
	train, test := loadSubset(t)
	cfg := smallConfig()
	cfg.Epochs = 1
	_, stats := trainAll(t, device.NewCPU(), cfg, train.Subset(500), test)
	if s := stats[0]; !(s.EvalSeconds > 0) || !(s.Seconds > 0) {
		t.Errorf("epoch took %g s training and %g s evaluating", s.Seconds, s.EvalSeconds)
	}
}

// TestRunningLoss: the running loss mid-epoch is the mean of the last
// window steps' losses, as the epoch's step losses record them.
func TestRunningLoss(t *testing.T) {
	train, test := loadSubset(t)
	cfg := smallConfig()
	cfg.Epochs = 1
	tr, err := engine.NewTrainer(device.NewCPU(), cfg, train.Subset(2000), test.Subset(100))
	if err != nil {
		t.Fatal(err)
	}
	if l, err := tr.RunningLoss(20); err != nil || !math.IsNaN(l) {
		t.Errorf("before the first step: %g, %v; want NaN", l, err)
	}
	got := map[int]float64{}
	stats, err := tr.Epoch(context.Background(), 1, func(done, total int) {
		if done == 5 || done == 30 {
			l, err := tr.RunningLoss(20)
			if err != nil {
				t.Fatal(err)
			}
			got[done] = l
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for done, from := range map[int]int{5: 0, 30: 10} {
		sum := 0.0
		for _, l := range stats.StepLosses[from:done] {
			sum += float64(l)
		}
		if want := sum / float64(done-from); math.Abs(got[done]-want) > 1e-9 {
			t.Errorf("after %d steps: running loss %g, want %g", done, got[done], want)
		}
	}
}

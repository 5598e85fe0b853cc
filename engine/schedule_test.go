package engine

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Max(1, math.Abs(b)) }

func TestLRScaling(t *testing.T) {
	for _, c := range []struct {
		rule LRRule
		want float64
	}{{ScaleNone, 0.1}, {ScaleLinear, 0.8}, {ScaleSqrt, 0.1 * math.Sqrt(8)}} {
		cfg := Config{Batch: 1024, BaseBatch: 128, LR: 0.1, LRScale: c.rule, Epochs: 3}.Resolved()
		if got := cfg.lrAt(2, 0, 10); !near(got, c.want) {
			t.Errorf("%s: lr %g, want %g", c.rule, got, c.want)
		}
	}
}

func TestWarmupRampsFromBaseToScaledLR(t *testing.T) {
	cfg := Config{Batch: 512, BaseBatch: 128, LR: 0.1, LRScale: ScaleLinear, WarmupEpochs: 2, Epochs: 4}.Resolved()
	// 10 steps per epoch: step k of epoch 1 has done (k+1)/10 epochs.
	if got := cfg.lrAt(1, 0, 10); !near(got, 0.1+0.3*0.05) {
		t.Errorf("first step: %g", got)
	}
	if got := cfg.lrAt(1, 9, 10); !near(got, 0.1+0.3*0.5) {
		t.Errorf("end of epoch 1: %g", got)
	}
	if got := cfg.lrAt(3, 0, 10); !near(got, 0.4) {
		t.Errorf("after warmup: %g, want 0.4", got)
	}
}

func TestStepDecay(t *testing.T) {
	cfg := Config{Batch: 128, LR: 0.1, DecayEpochs: []int{2, 4}, DecayFactor: 0.2, Epochs: 5}.Resolved()
	for epoch, want := range map[int]float64{1: 0.1, 2: 0.1, 3: 0.02, 4: 0.02, 5: 0.004} {
		if got := cfg.lrAt(epoch, 0, 10); !near(got, want) {
			t.Errorf("epoch %d: lr %g, want %g", epoch, got, want)
		}
		if b := cfg.batchAt(epoch); b != 128 {
			t.Errorf("epoch %d: batch %d without increase-batch", epoch, b)
		}
	}
}

// TestIncreaseBatch: the batch grows where the rate would decay, up to the
// cap; later decays fall back to the rate (Smith et al. 2018).
func TestIncreaseBatch(t *testing.T) {
	cfg := Config{Batch: 128, LR: 0.1, DecayEpochs: []int{1, 2, 3}, DecayFactor: 0.2, IncreaseBatch: true, MaxBatch: 3200, Epochs: 4}.Resolved()
	want := []struct {
		batch int
		lr    float64
	}{{128, 0.1}, {640, 0.1}, {3200, 0.1}, {3200, 0.02}}
	for i, w := range want {
		if b, lr := cfg.batchAt(i+1), cfg.lrAt(i+1, 0, 10); b != w.batch || !near(lr, w.lr) {
			t.Errorf("epoch %d: batch %d lr %g, want %d %g", i+1, b, lr, w.batch, w.lr)
		}
	}
	if m := cfg.maxBatchSize(); m != 3200 {
		t.Errorf("max batch %d", m)
	}
}

func TestAdaptRegime(t *testing.T) {
	cfg := Config{Batch: 1024, BaseBatch: 128, LR: 0.1, Epochs: 3, DecayEpochs: []int{2}, AdaptRegime: true}.Resolved()
	if cfg.Epochs != 24 || cfg.DecayEpochs[0] != 16 {
		t.Errorf("adapted: %d epochs, decay at %v; want 24 and [16]", cfg.Epochs, cfg.DecayEpochs)
	}
	if again := cfg.Resolved(); again.Epochs != 24 {
		t.Errorf("resolving twice adapted twice: %d epochs", again.Epochs)
	}
}

func TestScheduleValidation(t *testing.T) {
	base := Config{Hidden: []int{8}, Batch: 64, LR: 0.1, Momentum: 0.9, Epochs: 1, EvalBatch: 100}
	for _, c := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.LRScale = "cubic" }, `unknown LR scaling "cubic"`},
		{func(c *Config) { c.DecayFactor = 2 }, "decay factor must be in (0, 1)"},
		{func(c *Config) { c.DecayEpochs = []int{0} }, "decay epochs must be positive"},
		{func(c *Config) { c.IncreaseBatch, c.MaxBatch = true, 32 }, "max batch 32 is below"},
		{func(c *Config) { c.WarmupEpochs = -1 }, "warmup epochs"},
		{func(c *Config) { c.BaseBatch = -1 }, "must not be negative"},
	} {
		cfg := base
		c.mod(&cfg)
		if err := cfg.Validate(1000); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
	}
	if err := base.Validate(1000); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

// FuzzConfigValidate: Validate accepts or refuses any numbers without
// panicking, and what it accepts the schedule functions handle. Widths,
// batches and the training set are free too: what Validate accepts, the
// memory plan sizes without overflow, and where the plan fits a small
// budget the trainer is built on a small made-up set (allocating exactly
// what the plan said) and trains an epoch; where it does not, the trainer
// refuses before allocating.
func FuzzConfigValidate(f *testing.F) {
	f.Add(128, 0.1, 0.9, 0.0, 1, 0, 0.0, 0.1, false, 0, 1000, 8, 0, 100)
	f.Add(0, -1.0, 1.0, -0.5, 0, -1, -2.0, 2.0, true, -1, 0, 0, -1, 0)
	f.Add(16, 0.1, 0.9, 0.0, 3, 4, 1.0, 0.5, true, 64, 200, 4503599627370496, 0, 1000)
	f.Add(50, 0.1, 0.5, 0.0, 3, 10, 0.0, 0.5, true, 200, 200, 32, 16, 100000000)
	f.Add(20, 0.1, 0.9, 0.0, 3, 0, 0.0, 0.5, false, 0, 100, 16, 4, 50)
	f.Fuzz(func(t *testing.T, batch int, lr, momentum, wd float64, epochs, baseBatch int, warmup, decay float64, increase bool, maxBatch, n, width, ghost, evalBatch int) {
		cfg := Config{
			Hidden: []int{width}, Batch: batch, LR: lr, Momentum: momentum, WeightDecay: wd, Epochs: epochs % 1000,
			EvalBatch: evalBatch, BaseBatch: baseBatch, WarmupEpochs: warmup, DecayEpochs: []int{1, 2}, DecayFactor: decay,
			IncreaseBatch: increase, MaxBatch: maxBatch, GhostBatch: ghost,
		}
		if cfg.Validate(n) != nil {
			return
		}
		r := cfg.Resolved()
		for e := 1; e <= min(r.Epochs, 50); e++ {
			if b := r.batchAt(e); b <= 0 || (increase && b > r.MaxBatch) {
				t.Fatalf("epoch %d: batch %d of a valid config %+v", e, b, cfg)
			}
			if lr := r.lrAt(e, 0, 10); !(lr > 0) {
				t.Fatalf("epoch %d: lr %g of a valid config %+v", e, lr, cfg)
			}
		}
		if n > 512 {
			return // valid, but a training set too large to make up for each input
		}
		train, test := madeUp(n), madeUp(16)
		plan := PlanMemory(cfg, ShapeOf(train, test))
		if plan.Total() < 0 {
			t.Fatalf("negative footprint %d of %+v", plan.Total(), cfg)
		}
		cfg.Memory = 4 << 20
		d := NewCountingCPU()
		tr, err := NewTrainer(d, cfg, train, test)
		if plan.Total() > cfg.Memory {
			if !errors.Is(err, device.ErrOutOfMemory) || d.Bytes != 0 {
				t.Fatalf("footprint %d over the budget: %v, %d bytes allocated", plan.Total(), err, d.Bytes)
			}
			return
		}
		if err != nil {
			t.Fatalf("%+v fits (%s) but: %v", cfg, plan, err)
		}
		if d.Bytes != plan.Device() {
			t.Fatalf("%+v: planned %d device bytes, allocated %d", cfg, plan.Device(), d.Bytes)
		}
		if _, err := tr.Epoch(context.Background(), 1, nil); err != nil && !errors.Is(err, ErrDiverged) {
			t.Fatalf("%+v: %v", cfg, err)
		}
	})
}

// madeUp is a data set of n 4×4 images of 10 classes.
func madeUp(n int) *data.Dataset {
	ds := &data.Dataset{Name: "made-up", Images: make([]uint8, n*16), Labels: make([]uint8, n), Rows: 4, Cols: 4, Classes: 10}
	for i := range ds.Images {
		ds.Images[i] = uint8(i * 37)
	}
	for i := range ds.Labels {
		ds.Labels[i] = uint8(i % 10)
	}
	return ds
}

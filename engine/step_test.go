package engine_test

import (
	"context"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// TestStepAllocatesNothing: in steady state a training step of the
// reference MLP on the CPU (load, forward, loss, backward, update)
// allocates nothing on the Go heap, under every transfer strategy and with
// batch normalization, and neither does a CNN's. The batch is large enough that the device splits its
// products and passes across goroutines.
func TestStepAllocatesNothing(t *testing.T) {
	train, test := loadSubset(t)
	const batch = 64
	cases := []struct {
		name string
		edit func(*engine.Config)
	}{{"batchnorm", func(c *engine.Config) { c.BatchNorm = true }}, {"adamw", func(c *engine.Config) { useAdam(c, engine.AdamW) }},
		{"lenet5", func(c *engine.Config) { c.Hidden, c.Model = nil, "lenet5" }},
		{"cnn batchnorm", func(c *engine.Config) { c.Hidden, c.Model, c.BatchNorm = nil, "cnn:8,16", true }}}
	for _, s := range data.Strategies() {
		cases = append(cases, struct {
			name string
			edit func(*engine.Config)
		}{s.String(), func(c *engine.Config) { c.Transfer = s }})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := engine.DefaultConfig()
			cfg.Batch = batch
			c.edit(&cfg)
			d := device.NewCPU()
			tr, err := engine.NewTrainer(d, cfg, train, test)
			if err != nil {
				t.Fatal(err)
			}
			order := data.Permutation(train.Len(), cfg.Seed, 1)
			steps := train.Len()/batch - 1
			step := 0
			run := func() {
				i := step % steps
				if err := tr.Step(i, order[i*batch:(i+1)*batch], order[(i+1)*batch:(i+2)*batch], cfg.LR); err != nil {
					t.Fatal(err)
				}
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
				step++
			}
			run() // buffers grow on the first step
			if n := testing.AllocsPerRun(20, run); n != 0 {
				t.Errorf("%v allocations per step", n)
			}
		})
	}
}

// TestEpochAllocationsDoNotGrowWithSteps: what an epoch allocates (its
// sample order, the per-step results read back, the evaluation) does not
// depend on how many steps it takes, so the loop around Step allocates
// nothing per step either.
func TestEpochAllocationsDoNotGrowWithSteps(t *testing.T) {
	train, test := loadSubset(t)
	test = test.Subset(100)
	allocs := func(samples int) float64 {
		cfg := engine.DefaultConfig()
		cfg.Batch, cfg.EvalBatch = 64, 100
		tr, err := engine.NewTrainer(device.NewCPU(), cfg, train.Subset(samples), test)
		if err != nil {
			t.Fatal(err)
		}
		epoch := 0
		return testing.AllocsPerRun(3, func() {
			epoch++
			if _, err := tr.Epoch(context.Background(), epoch, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Twice the steps must not mean more allocations: a per-step allocation
	// would add ten. The per-epoch count itself was seen to vary by one
	// between runs (7 or 8), hence the slack of two.
	if short, long := allocs(640), allocs(1280); long > short+2 {
		t.Errorf("an epoch of 10 steps allocates %v times, one of 20 steps %v", short, long)
	}
}

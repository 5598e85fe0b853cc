package engine_test

import (
	"strings"
	"testing"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/device"
)

// useAdam switches c to Adam or AdamW with PyTorch's defaults.
func useAdam(c *engine.Config, o engine.Optimizer) {
	c.Optimizer, c.Momentum = o, 0
	c.Beta1, c.Beta2, c.Eps = engine.DefaultBeta1, engine.DefaultBeta2, engine.DefaultEps
}

// TestExactResumeAdam: Adam's moments and step count survive a checkpoint,
// so a resumed run is bit-identical to an uninterrupted one (with batch
// norm, whose γ and β have moments too).
func TestExactResumeAdam(t *testing.T) {
	for _, o := range []engine.Optimizer{engine.Adam, engine.AdamW} {
		t.Run(string(o), func(t *testing.T) {
			cfg := resumeConfig()
			useAdam(&cfg, o)
			cfg.LR, cfg.WeightDecay = 0.003, 0.01
			checkExactResume(t, cfg)
		})
	}
}

// TestTrainSubsetAdam trains with Adam, and AdamW with weight decay 0.01,
// at lr 0.002 on 5000 digits; three epochs must reach 87% on the 1000 test digits, as
// momentum SGD does (TestTrainSubset); seeds 7–11 reach 88.9–90.9%.
func TestTrainSubsetAdam(t *testing.T) {
	train, test := loadSubset(t)
	for _, o := range []engine.Optimizer{engine.Adam, engine.AdamW} {
		cfg := smallConfig()
		useAdam(&cfg, o)
		cfg.LR = 0.002
		if o == engine.AdamW {
			cfg.WeightDecay = 0.01
		}
		_, stats := trainAll(t, device.NewCPU(), cfg, train, test)
		last := stats[len(stats)-1]
		t.Logf("%s epoch %d: train loss %.4f acc %.4f, test loss %.4f acc %.4f", o, last.Epoch, last.TrainLoss, last.TrainAccuracy, last.TestLoss, last.TestAccuracy)
		if last.TestAccuracy < 0.87 || stats[2].TrainLoss >= stats[0].TrainLoss {
			t.Errorf("%s: test accuracy %.4f, train loss %.4f then %.4f; want ≥ 0.87 and falling", o, last.TestAccuracy, stats[0].TrainLoss, stats[2].TrainLoss)
		}
	}
}

// TestRestoreRefusesAnotherOptimizer: a checkpoint of momentum SGD does not
// resume Adam, nor one of Adam AdamW.
func TestRestoreRefusesAnotherOptimizer(t *testing.T) {
	train, test := loadSubset(t)
	train, test = train.Subset(500), test.Subset(100)
	sgd, adam, adamW := resumeConfig(), resumeConfig(), resumeConfig()
	useAdam(&adam, engine.Adam)
	useAdam(&adamW, engine.AdamW)
	for _, c := range []struct {
		from, to engine.Config
		want     string
	}{{sgd, adam, "optimizer was unset, now adam"}, {adam, sgd, "optimizer was adam, now <nil>"}, {adam, adamW, "optimizer was adam, now adamw"}} {
		from, err := engine.NewTrainer(device.NewCPU(), c.from, train, test)
		if err != nil {
			t.Fatal(err)
		}
		ckpt, err := from.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		to, err := engine.NewTrainer(device.NewCPU(), c.to, train, test)
		if err != nil {
			t.Fatal(err)
		}
		if err := to.Restore(ckpt); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q's checkpoint restored into %q: %v, want %q", c.from.Optimizer, c.to.Optimizer, err, c.want)
		}
	}
}

func TestValidateOptimizer(t *testing.T) {
	for _, c := range []struct {
		mod  func(*engine.Config)
		want string
	}{
		{func(c *engine.Config) { c.Optimizer = "rmsprop" }, `unknown optimizer "rmsprop" (want momentum-sgd, adam or adamw)`},
		{func(c *engine.Config) { useAdam(c, engine.Adam); c.Momentum = 0.9 }, "momentum 0.9 is momentum SGD's; adam takes beta1 and beta2 instead"},
		{func(c *engine.Config) { useAdam(c, engine.AdamW); c.Beta2 = 1 }, "beta1 and beta2 must be in [0, 1), got 0.9 and 1"},
		{func(c *engine.Config) { useAdam(c, engine.Adam); c.Eps = 0 }, "eps must be a positive number, got 0"},
		{func(c *engine.Config) { c.Beta1 = 0.9 }, "beta1, beta2 and eps (0.9, 0, 0) are Adam's settings, and the optimizer is momentum SGD"},
	} {
		cfg := smallConfig()
		c.mod(&cfg)
		if err := cfg.Validate(1000); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate: %v, want %q", err, c.want)
		}
	}
	cfg := smallConfig()
	useAdam(&cfg, engine.AdamW)
	if err := cfg.Validate(1000); err != nil {
		t.Errorf("AdamW with PyTorch's defaults: %v", err)
	}
}

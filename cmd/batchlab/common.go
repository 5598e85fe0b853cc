package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

// modelFlags are the settings of the model, the optimizer and the data that
// the measuring commands (noise, advise) share with train.
func modelFlags(def engine.Config) []cli.Flag {
	return []cli.Flag{
		&cli.IntSliceFlag{Name: "hidden", Usage: "hidden layer widths", Value: cli.NewIntSlice(def.Hidden...)},
		modelFlag(),
		&cli.IntFlag{Name: "batch", Aliases: []string{"b"}, Usage: "samples per update", Value: def.Batch},
		&cli.Float64Flag{Name: "lr", Usage: "learning rate", Value: def.LR},
		&cli.Float64Flag{Name: "momentum", Usage: "SGD momentum, in [0,1)", Value: def.Momentum},
		&cli.IntFlag{Name: "epochs", Aliases: []string{"e"}, Usage: "passes over the training set", Value: def.Epochs},
		&cli.Uint64Flag{Name: "seed", Usage: "seed of the weights and the data order", Value: def.Seed},
		&cli.IntFlag{Name: "train-samples", Usage: "train on the first N samples only (0: all)"},
		&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Usage: "cpu, cuda or cuda:N (default: " + device.Default() + ")"},
		datasetFlag(), dataFlag(),
		memoryFlag(),
	}
}

// modelFlag is --model, the architecture (engine.ParseModel); without it,
// the MLP of --hidden.
func modelFlag() cli.Flag {
	return &cli.StringFlag{Name: "model", Usage: "the model: mlp:W,W,… (as --hidden), lenet5, or cnn:F,F,… (3×3 conv → ReLU → max pool 2 per width, then a linear head)"}
}

// applyModelFlag sets cfg's model from --model, which replaces --hidden.
func applyModelFlag(c *cli.Context, cfg *engine.Config) error {
	if !c.IsSet("model") {
		return nil
	}
	if c.IsSet("hidden") {
		return fmt.Errorf("--model and --hidden both name the model: give one")
	}
	m, err := cfg.WithModel(c.String("model"))
	if err != nil {
		return fmt.Errorf("--model: %w", err)
	}
	*cfg = m
	return nil
}

// memoryFlag is the memory budget every command that builds a model checks
// its footprint against before it allocates (engine.MemoryBudget).
func memoryFlag() cli.Flag {
	return &cli.StringFlag{Name: "memory", Usage: "memory budget, e.g. 2GiB (default: the GPU's free memory, or half the available RAM)"}
}

// memoryBudget reads --memory: 0 when not given.
func memoryBudget(c *cli.Context) (int64, error) {
	if !c.IsSet("memory") {
		return 0, nil
	}
	n, err := parseBytes(c.String("memory"))
	if err != nil {
		return 0, fmt.Errorf("--memory: %w", err)
	}
	return n, nil
}

// modelConfig reads modelFlags.
func modelConfig(c *cli.Context) (engine.Config, error) {
	cfg := engine.DefaultConfig()
	cfg.Hidden, cfg.Batch, cfg.LR, cfg.Momentum = c.IntSlice("hidden"), c.Int("batch"), c.Float64("lr"), c.Float64("momentum")
	cfg.Epochs, cfg.Seed = c.Int("epochs"), c.Uint64("seed")
	if err := applyModelFlag(c, &cfg); err != nil {
		return cfg, err
	}
	var err error
	cfg.Memory, err = memoryBudget(c)
	return cfg, err
}

// loadData reads the data modelFlags point at and checks each of cfgs
// against it, before any device is opened.
func loadData(c *cli.Context, cfgs ...engine.Config) (train, test *data.Dataset, err error) {
	name, dir, err := dataSource(c)
	if err != nil {
		return nil, nil, err
	}
	if train, test, err = name.Load(dir); err != nil {
		return nil, nil, err
	}
	n, err := trainSamples(c, train.Len(), dir)
	if err != nil {
		return nil, nil, err
	}
	train = train.Subset(n)
	for _, cfg := range cfgs {
		if err := cfg.Validate(train.Len()); err != nil {
			return nil, nil, err
		}
	}
	return train, test, nil
}

// trainSamples is how many of the available training samples --train-samples asks for.
// dir is where they were found.
func trainSamples(c *cli.Context, available int, dir string) (int, error) {
	n := c.Int("train-samples")
	switch {
	case n < 0:
		return 0, fmt.Errorf("--train-samples must be 0 (all) or positive, got %d", n)
	case n > available:
		return 0, fmt.Errorf("--train-samples %d is more than the %d training samples in %s", n, available, dir)
	case n == 0:
		return available, nil
	}
	return n, nil
}

// newTrainerFromFlags opens a session and builds a trainer from modelFlags.
func newTrainerFromFlags(c *cli.Context) (*engine.Trainer, *session, error) {
	if err := noArgs(c); err != nil {
		return nil, nil, err
	}
	cfg, err := modelConfig(c)
	if err != nil {
		return nil, nil, err
	}
	s, err := openTrainingSession(c, cfg)
	if err != nil {
		return nil, nil, err
	}
	tr, err := engine.NewTrainer(s.device, cfg, s.train, s.test)
	if err != nil {
		s.close()
		return nil, nil, err
	}
	return tr, s, nil
}

// The typed settings, parsed once, here at the edge: the engine takes them
// as types and never reads their names again.

// transferFlag reads --transfer.
func transferFlag(c *cli.Context) (data.Strategy, error) {
	return data.ParseStrategy(c.String("transfer"))
}

// lrRuleFlag reads the LR scaling rule of flag (--lr-scale, --rule).
func lrRuleFlag(c *cli.Context, flag string) (engine.LRRule, error) {
	r, err := engine.ParseLRRule(c.String(flag))
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	return r, nil
}

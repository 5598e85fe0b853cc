package main

import (
	"fmt"
	"slices"
	"strings"

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
		&cli.IntFlag{Name: "train-samples", Usage: "train on the first N samples only", DefaultText: "all"},
		&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Usage: "cpu, cuda or cuda:N", DefaultText: device.Default()},
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
	return &cli.StringFlag{Name: "memory", Usage: "memory budget, e.g. 2GiB", DefaultText: "the GPU's free memory, or half the available RAM"}
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
	runOf(c).setConfig(tr.Config())
	return tr, s, nil
}

// The typed settings, parsed once, here at the edge: the engine takes them
// as types and never reads their names again.

// transferOption is --transfer of the commands that train: one strategy,
// a mode and/or a dtype (bench transfer's --transfer lists several).
func transferOption() cli.Flag {
	return &cli.StringFlag{Name: "transfer", Usage: "how batches reach the device: a mode (" + joinModes(data.Modes()) +
		") and/or a dtype (float32, uint8), comma-separated: " + strings.Join(data.StrategyNames(), " | "), Value: "pageable"}
}

// transferFlag reads --transfer.
func transferFlag(c *cli.Context) (data.Strategy, error) {
	return data.ParseStrategy(c.String("transfer"))
}

// defaultBaseBatch is --base-batch where an LR rule (or train's regime
// adaptation) needs a base and none is given: the reference run's batch,
// at which the default --lr is tuned.
var defaultBaseBatch = engine.DefaultConfig().Batch

// lrScaleFlag, with the command's default rule, and baseBatchFlag are the
// same on every command that scales the LR.
func lrScaleFlag(rule engine.LRRule) cli.Flag {
	return &cli.StringFlag{Name: "lr-scale", Usage: "scale --lr with the batch relative to --base-batch: none, linear (Goyal et al.) or sqrt (Hoffer et al.)", Value: string(rule)}
}

func baseBatchFlag() cli.Flag {
	return &cli.IntFlag{Name: "base-batch", Usage: "the batch B₀ at which --lr holds", DefaultText: fmt.Sprintf("%d where a rule needs one", defaultBaseBatch)}
}

// lrRuleFlag reads --lr-scale.
func lrRuleFlag(c *cli.Context) (engine.LRRule, error) {
	r, err := engine.ParseLRRule(c.String("lr-scale"))
	if err != nil {
		return "", fmt.Errorf("--lr-scale: %w", err)
	}
	return r, nil
}

// lrScale reads lrScaleFlag and baseBatchFlag. The base batch matters only to a rule, or to
// train's --adapt-regime: given without either it would do nothing and is
// refused; needed and not given, it is defaultBaseBatch, and note says so
// for the command to print.
func lrScale(c *cli.Context) (rule engine.LRRule, base int, note string, err error) {
	if rule, err = lrRuleFlag(c); err != nil {
		return "", 0, "", err
	}
	needed := rule != engine.ScaleNone || c.Bool("adapt-regime")
	switch base = c.Int("base-batch"); {
	case c.IsSet("base-batch") && base <= 0:
		return "", 0, "", fmt.Errorf("--base-batch must be positive, got %d", base)
	case c.IsSet("base-batch") && !needed:
		uses := "a scaling rule (--lr-scale linear or sqrt)"
		if hasFlag(c, "adapt-regime") {
			uses += " or --adapt-regime"
		}
		return "", 0, "", fmt.Errorf("--base-batch %d does nothing with --lr-scale none: it is the batch --lr holds at, for %s", base, uses)
	case !c.IsSet("base-batch") && needed:
		base = defaultBaseBatch
		note = fmt.Sprintf("--base-batch not given: %d, the batch the default --lr is tuned at", base)
	}
	return rule, base, note, nil
}

// hasFlag says whether c's command defines the flag name.
func hasFlag(c *cli.Context, name string) bool {
	for _, f := range c.Command.Flags {
		if slices.Contains(f.Names(), name) {
			return true
		}
	}
	return false
}

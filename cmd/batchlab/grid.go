package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/bench/advise"
	"github.com/batchlab/batchlab/bench/grid"
	"github.com/batchlab/batchlab/bench/study"
	"github.com/batchlab/batchlab/engine"
)

func gridCommand() *cli.Command {
	return &cli.Command{
		Name:  "grid",
		Usage: "measure the critical batch: train to loss targets over a batch × LR grid, fit S(B) = S_min(1 + B_crit/B)",
		Description: "For each batch size in --batches and each learning rate on a log grid (--lrs, or --lr-center at\n" +
			"--base-batch moved to each batch by --lr-scale, times --lr-factor^k for k = -lr-steps … lr-steps),\n" +
			"trains the same model from each of --seeds at a constant LR until the smoothed training loss has\n" +
			"reached every one of --targets (or --max-epochs), and records the steps and samples to each target.\n" +
			"Per batch size and target it picks the best LR (diverged and collapsed runs count as failed), fits\n" +
			"S(B) = S_min(1 + B_crit/B) with bootstrap intervals over seeds, and compares B_crit with the gradient\n" +
			"noise scale B_simple measured along training (one run per seed at --noise-batch). Writes plots\n" +
			"(SVG, PNG), grid.json and CSV into --out.\n\n" +
			"Each run is saved as it finishes: run the same command again to continue a stopped grid. On a\n" +
			"cluster it shards like 'study' (--shard i/n, SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX with --shards);\n" +
			"the last process to finish writes the report, and 'grid report DIR' writes one from what DIR holds.",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab grid --batches 64,256,1024 --seeds 1,2 --train-samples 16384 --out grid-sgd",
			"batchlab grid --optimizer adam --lr-steps 2 --lr-factor 2 --targets 0.5,0.3 --out grid-adam",
			"batchlab grid report grid-sgd"),
		Flags: append([]cli.Flag{
			&cli.IntSliceFlag{Name: "batches", Usage: "batch sizes", Value: cli.NewIntSlice(32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)},
			&cli.Float64SliceFlag{Name: "lrs", Usage: "learning rates, the same at every batch size (instead of --lr-center)"},
			&cli.Float64Flag{Name: "lr-center", Usage: "the middle of the LR grid at --base-batch", DefaultText: "0.1 with sgd, 0.003 with adam and adamw, where this model trains fastest at B=128"},
			&cli.StringFlag{Name: "lr-scale", Usage: "how the middle moves with the batch: none, linear or sqrt", Value: string(engine.ScaleSqrt)},
			&cli.IntFlag{Name: "base-batch", Usage: "the batch size of --lr-center", Value: 128},
			&cli.IntFlag{Name: "lr-steps", Usage: "LRs on each side of the middle", Value: 2},
			&cli.Float64Flag{Name: "lr-factor", Usage: "ratio of neighbouring LRs", Value: 2},
			&cli.Uint64SliceFlag{Name: "seeds", Usage: "seeds (weights and data order)", Value: cli.NewUint64Slice(1, 2)},
			&cli.Float64SliceFlag{Name: "targets", Usage: "training-loss targets", Value: cli.NewFloat64Slice(0.5, 0.3, 0.2, 0.15)},
			&cli.IntFlag{Name: "max-epochs", Usage: "epoch cap of a run", Value: 20},
			&cli.IntFlag{Name: "smooth-samples", Usage: "window of the centred moving mean of the step losses, in samples", Value: 2048},
			&cli.IntSliceFlag{Name: "hidden", Usage: "hidden layer widths", Value: cli.NewIntSlice(512, 512)},
			&cli.IntFlag{Name: "train-samples", Usage: "train on the first N samples only (0: all)"},
			&cli.IntFlag{Name: "test-samples", Usage: "evaluate each epoch on the first N test samples (0: all)", Value: 1000},
			&cli.IntFlag{Name: "noise-batch", Usage: "batch size of the noise-scale runs (0: none)", Value: 128},
			&cli.IntFlag{Name: "noise-small", Usage: "small batch of the noise estimator", Value: 128},
			// The grid's own defaults: it measures every --noise-every steps
			// along training, so fewer pairs each time than noise's one-off
			// measurements, with a big batch 16× --noise-small; the grids in
			// docs/grid-mnist were planned with them.
			noiseBigFlag(2048), noisePairsFlag(2),
			&cli.IntFlag{Name: "noise-every", Usage: "steps between measurements", Value: 16},
			&cli.StringFlag{Name: "out", Usage: "directory for the runs and the report", Value: "grid"},
			&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Usage: "cpu, cuda or cuda:N", Value: "cpu"},
			&cli.StringFlag{Name: "shard", Usage: "run only the `i/n`-th share of the runs (0 ≤ i < n)"},
			&cli.IntFlag{Name: "shards", Usage: "the number of shards `n` when the index comes from JOB_COMPLETION_INDEX or a rerun's SLURM_ARRAY_TASK_ID"},
			&cli.DurationFlag{Name: "claim-timeout", Usage: "take over a run whose claim has had no heartbeat for this long", Value: study.DefaultClaimTimeout},
			&cli.BoolFlag{Name: "json", Usage: "print the analysis as JSON"},
			datasetFlag(), dataFlag(),
		}, optimizerFlagList(engine.DefaultConfig().Momentum)...),
		Subcommands: []*cli.Command{gridReportCommand()},
		Action:      runGrid,
	}
}

func runGrid(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	p, err := gridPlan(c)
	if err != nil {
		return err
	}
	if c.Duration("claim-timeout") <= 0 {
		return fmt.Errorf("--claim-timeout %s: must be positive", c.Duration("claim-timeout"))
	}
	shard, from, err := studyShard(c.String("shard"), c.Int("shards"), os.Getenv)
	if err != nil {
		return err
	}
	_, dir, err := dataSource(c)
	if err != nil {
		return err
	}
	out := c.String("out")
	fmt.Fprintf(c.App.ErrWriter, "grid: %s (%s), %s, device %s, into %s\n", shard, from, p.Optimizer, c.String("device"), out)
	missing, err := grid.Execute(c.Context, p, grid.Options{Dir: out, Device: c.String("device"), DataDir: dir,
		Log: c.App.ErrWriter, Shard: shard, ClaimTimeout: c.Duration("claim-timeout")})
	if err != nil {
		if c.Context.Err() != nil {
			return fmt.Errorf("grid interrupted; finished runs are saved in %s: run the same command again to continue", out)
		}
		return err
	}
	if len(missing) > 0 {
		fmt.Fprintf(c.App.Writer, "this process (%s) is done; %d runs in %s have no result yet (other shards'): "+
			"the last to finish writes the report (or now, partial: batchlab grid report %s)\n", shard, len(missing), out, out)
		return nil
	}
	return gridReport(c, out)
}

func gridReportCommand() *cli.Command {
	return &cli.Command{
		Name:      "report",
		Usage:     "analyse the grid in DIR from the runs it holds and write its plots, JSON and CSV",
		ArgsUsage: "DIR",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab grid report grid-sgd",
			"batchlab grid report --json grid-sgd > analysis.json"),
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the analysis as JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("grid report takes one argument, the grid's directory (got %d)", c.NArg())
			}
			return gridReport(c, c.Args().First())
		},
	}
}

// gridReport analyses the grid in dir, writes its files and prints it.
func gridReport(c *cli.Context, dir string) error {
	a, err := grid.Report(dir)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(a)
	}
	a.Print(c.App.Writer)
	fmt.Fprintf(c.App.Writer, "\nplots, grid.json and CSV in %s\n", dir)
	return nil
}

// gridPlan reads the grid's flags.
func gridPlan(c *cli.Context) (grid.Plan, error) {
	opt, err := optimizerFlags(c)
	if err != nil {
		return grid.Plan{}, err
	}
	rule, err := lrRuleFlag(c)
	if err != nil {
		return grid.Plan{}, err
	}
	dataset, _, err := dataSource(c)
	if err != nil {
		return grid.Plan{}, err
	}
	if c.Int("train-samples") < 0 || c.Int("test-samples") < 0 {
		return grid.Plan{}, fmt.Errorf("--train-samples and --test-samples must be 0 (all) or positive")
	}
	var cfg engine.Config
	opt.apply(&cfg)
	p := grid.Plan{
		Dataset: dataset, TrainSamples: c.Int("train-samples"), TestSamples: c.Int("test-samples"),
		Hidden: c.IntSlice("hidden"), Optimizer: engine.MomentumSGD, Momentum: c.Float64("momentum"),
		Batches: c.IntSlice("batches"), Seeds: c.Uint64Slice("seeds"), LRs: c.Float64Slice("lrs"),
		Targets: c.Float64Slice("targets"), MaxEpochs: c.Int("max-epochs"), SmoothSamples: c.Int("smooth-samples"),
		NoiseBatch: c.Int("noise-batch"),
	}
	if cfg.Optimizer.IsAdam() {
		p.Optimizer, p.Momentum, p.Beta1, p.Beta2, p.Eps = cfg.Optimizer, 0, cfg.Beta1, cfg.Beta2, cfg.Eps
	}
	if len(p.LRs) == 0 {
		p.LRCenter, p.LRScale, p.BaseBatch = c.Float64("lr-center"), rule, c.Int("base-batch")
		if !c.IsSet("lr-center") {
			p.LRCenter = 0.1
			if p.Optimizer.IsAdam() {
				p.LRCenter = 0.003
			}
		}
		p.LRSteps, p.LRFactor = c.Int("lr-steps"), c.Float64("lr-factor")
	}
	if p.NoiseBatch > 0 {
		p.NoiseSmall, p.NoiseBig, p.NoisePairs, p.NoiseEvery = c.Int("noise-small"), c.Int("noise-big"), c.Int("noise-pairs"), c.Int("noise-every")
	}
	return p, nil
}

// adviseFromGrid is advise --grid: the recommendation from a measured grid.
func adviseFromGrid(c *cli.Context, dir string) error {
	g, err := advise.FromGrid(dir)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(g)
	}
	fmt.Fprintf(w, "critical batch measured by the grid in %s (%s): B_crit = %.0f [%.0f, %.0f] at training loss %g\n",
		dir, g.Optimizer, g.BCrit, g.BCritLo, g.BCritHi, g.Target)
	fmt.Fprintf(w, "recommended: batch %d, lr %.4g\n\n%s\n", g.Batch, g.LR, wrap(g.Reasoning, 90))
	return nil
}

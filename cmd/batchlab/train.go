package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/runlog"
)

func trainCommand() *cli.Command {
	def := engine.DefaultConfig()
	return &cli.Command{
		Name:  "train",
		Usage: "train an MLP on MNIST or Fashion-MNIST (--dataset) and report what each epoch learned and cost",
		Description: "Trains the MLP 784-<hidden>-10 (ReLU, softmax cross-entropy; momentum SGD, Adam or\n" +
			"AdamW) and prints, per epoch: train and test loss and accuracy, parameter updates, samples/s,\n" +
			"bytes moved host→device, the time split into transfer / forward+backward / update, and\n" +
			"the evaluation's and the whole epoch's wall time.",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab train --epochs 3 --batch 512",
			"batchlab train --batch 1024 --lr-scale sqrt --base-batch 128 --warmup 1 --epochs 3",
			"batchlab train --epochs 6 --decay-epochs 2,4 --decay-factor 0.2 --increase-batch --max-batch 3200",
			"batchlab train --optimizer adamw --lr 0.001 --weight-decay 0.01",
			"batchlab train --device cuda --transfer pinned-async,uint8 --graph",
			"batchlab train --epochs 10 --checkpoint run.ckpt   # Ctrl-C, then the same line with --resume",
			"batchlab train --json --no-progress > run.json"),
		Flags: slices.Concat([]cli.Flag{
			&cli.IntSliceFlag{Name: "hidden", Usage: "hidden layer widths", Value: cli.NewIntSlice(def.Hidden...)},
			modelFlag(),
			&cli.IntFlag{Name: "batch", Aliases: []string{"b"}, Usage: "samples per update", Value: def.Batch},
			&cli.Float64Flag{Name: "lr", Usage: "learning rate", Value: def.LR},
			&cli.Float64Flag{Name: "weight-decay", Usage: "L2 penalty added to the gradient (adamw: decoupled, w shrinks by lr·decay·w)", Value: def.WeightDecay},
		}, optimizerFlagList(def.Momentum), []cli.Flag{
			&cli.IntFlag{Name: "epochs", Aliases: []string{"e"}, Usage: "passes over the training set", Value: def.Epochs},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the weights and the data order", Value: def.Seed},
			&cli.IntFlag{Name: "eval-batch", Usage: "rows per forward pass when evaluating", Value: def.EvalBatch},
			&cli.IntFlag{Name: "train-samples", Usage: "train on the first N samples only", DefaultText: "all"},
			lrScaleFlag(engine.ScaleNone),
			baseBatchFlag(),
			&cli.Float64Flag{Name: "warmup", Usage: "epochs of linear warmup from --lr to the scaled LR"},
			&cli.IntSliceFlag{Name: "decay-epochs", Usage: "multiply the LR by --decay-factor after these epochs"},
			&cli.Float64Flag{Name: "decay-factor", Usage: "the step decay's factor, in (0,1)", Value: 0.1},
			&cli.BoolFlag{Name: "increase-batch", Usage: "at the decay epochs divide the batch by --decay-factor instead of decaying the LR (Smith et al.)"},
			&cli.IntFlag{Name: "max-batch", Usage: "cap of --increase-batch (beyond it the LR decays)", DefaultText: "none"},
			&cli.BoolFlag{Name: "adapt-regime", Usage: "train batch/base-batch times the epochs, so updates match the base batch (Hoffer et al.)"},
			&cli.BoolFlag{Name: "batch-norm", Usage: "batch normalization after each hidden layer"},
			&cli.IntFlag{Name: "ghost-batch", Usage: "batch-normalize over ghost batches of this many rows (implies --batch-norm)", DefaultText: "none"},
			&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Usage: "cpu, cuda or cuda:N", DefaultText: device.Default()},
			datasetFlag(), dataFlag(),
			memoryFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the run (settings, device, per-epoch metrics and per-step losses) as JSON"},
			&cli.StringFlag{Name: "checkpoint", Usage: "checkpoint file: written atomically every --checkpoint-every steps, after every epoch when this flag is given, and on Ctrl-C / SIGTERM", Value: "batchlab.ckpt"},
			&cli.IntFlag{Name: "checkpoint-every", Usage: "also write the checkpoint every N steps", DefaultText: "only after epochs"},
			&cli.BoolFlag{Name: "resume", Usage: "continue the run saved in --checkpoint (same settings; more epochs allowed)"},
			&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar on stderr (it is off anyway when stderr is not a terminal)"},
			transferOption(),
			&cli.BoolFlag{Name: "graph", Usage: "replay each training step as CUDA graphs, one launch instead of dozens (CUDA device only)"},
			traceFlag(),
			cpuProfileFlag(),
		}),
		Action: runTrain,
	}
}

// runningLossWindow is the steps the progress bar's loss averages, as
// Lightning's running loss does.
const runningLossWindow = 20

// trainReport is the --json output.
type trainReport struct {
	Config engine.Config       `json:"config"`
	Device device.Info         `json:"device"`
	Model  string              `json:"model"`
	Params int                 `json:"params"`
	Train  int                 `json:"train_samples"`
	Test   int                 `json:"test_samples"`
	Data   data.Name           `json:"dataset"`
	Epochs []engine.EpochStats `json:"epochs"`
	// Partial is the epoch under way when the run stopped (interrupted,
	// diverged): its steps done and their losses.
	Partial *engine.EpochStats `json:"partial,omitempty"`
	// Manifest is the run's, as --run-dir writes it (docs/run-log-schema.md).
	Manifest *runlog.Manifest `json:"manifest"`
}

func runTrain(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	transfer, err := transferFlag(c)
	if err != nil {
		return err
	}
	lrScale, baseBatch, note, err := lrScale(c)
	if err != nil {
		return err
	}
	opt, err := optimizerFlags(c)
	if err != nil {
		return err
	}
	cfg := engine.Config{
		Hidden:      c.IntSlice("hidden"),
		Batch:       c.Int("batch"),
		LR:          c.Float64("lr"),
		Momentum:    c.Float64("momentum"),
		WeightDecay: c.Float64("weight-decay"),
		Epochs:      c.Int("epochs"),
		Seed:        c.Uint64("seed"),
		EvalBatch:   c.Int("eval-batch"),

		LRScale:       lrScale,
		BaseBatch:     baseBatch,
		WarmupEpochs:  c.Float64("warmup"),
		DecayEpochs:   c.IntSlice("decay-epochs"),
		DecayFactor:   c.Float64("decay-factor"),
		IncreaseBatch: c.Bool("increase-batch"),
		MaxBatch:      c.Int("max-batch"),
		AdaptRegime:   c.Bool("adapt-regime"),
		BatchNorm:     c.Bool("batch-norm"),
		GhostBatch:    c.Int("ghost-batch"),
		Transfer:      transfer,
		Graph:         c.Bool("graph"),
	}
	opt.apply(&cfg)
	if err := applyModelFlag(c, &cfg); err != nil {
		return err
	}
	if cfg.Memory, err = memoryBudget(c); err != nil {
		return err
	}
	if err := oddTrainFlags(c); err != nil {
		return err
	}
	if lrScale != engine.ScaleNone && cfg.Batch == baseBatch {
		note = strings.TrimPrefix(note+"; ", "; ") + fmt.Sprintf("--batch %d is the base batch, where the %s rule's factor is 1", cfg.Batch, lrScale)
	}
	if note != "" {
		fmt.Fprintln(c.App.ErrWriter, "batchlab: note:", note)
	}
	every := c.Int("checkpoint-every")
	if every < 0 {
		return fmt.Errorf("--checkpoint-every must be 0 or positive, got %d", every)
	}
	k := &checkpointer{path: c.String("checkpoint"), stderr: c.App.ErrWriter}
	checkpointing := c.IsSet("checkpoint") || every > 0 || c.Bool("resume")
	if checkpointing {
		if err := k.claim(); err != nil {
			return fmt.Errorf("--checkpoint: %w", err)
		}
	}
	defer k.release()
	s, err := openTrainingSession(c, cfg)
	if err != nil {
		return err
	}
	defer s.close()
	tr, err := engine.NewTrainer(s.device, cfg, s.train, s.test)
	if err != nil {
		return err
	}
	cfg = tr.Config() // resolved: regime adaptation applied
	runOf(c).setConfig(cfg)
	k.tr = tr
	if c.Bool("resume") {
		if err := k.restore(); err != nil {
			return err
		}
		epoch, step := tr.Position()
		fmt.Fprintf(c.App.ErrWriter, "resuming from %s at epoch %d, step %d\n", k.path, epoch, step)
	}
	tr.SetTrace(s.prof.tl)
	report := trainReport{
		Config: cfg, Device: s.device.Info(), Model: tr.Model.String(), Params: tr.Model.ParamCount(),
		Train: s.train.Len(), Test: s.test.Len(), Data: s.dataset,
	}
	out := c.App.Writer
	jsonOut := c.Bool("json")
	var table *epochTable
	if !jsonOut {
		fmt.Fprintf(out, "device  %s\nmodel   %s, %d parameters\ndata    %s, %d train / %d test samples\nrun     batch %d, lr %g, %s, weight decay %g, %d epoch(s), seed %d\n",
			report.Device, report.Model, report.Params, report.Data.Title(), report.Train, report.Test,
			cfg.Batch, cfg.ScaledLR(), optimizerSummary(cfg), cfg.WeightDecay, cfg.Epochs, cfg.Seed)
		if s := cfg.ScheduleSummary(); s != "" {
			fmt.Fprintf(out, "        %s\n", s)
		}
		if asked := c.Int("epochs"); cfg.Epochs != asked {
			fmt.Fprintf(out, "        regime adapted to the base batch %d: %d epochs for the %d asked\n", cfg.BaseBatch, cfg.Epochs, asked)
		}
		fmt.Fprintln(out)
		table = newEpochTable(out)
	}
	for _, s := range tr.Completed() { // restored from the checkpoint: the run log starts with them
		runOf(c).epoch(s)
	}
	bar := newProgress(c, tr.StepsIn(1))
	if table != nil {
		for _, s := range tr.Completed() { // restored from the checkpoint
			table.row(s)
		}
	}
	stats, runErr := tr.Run(c.Context, engine.Hooks{
		Step: func(epoch, done, total int) {
			if every > 0 && tr.TotalUpdates()%every == 0 {
				k.saveOrWarn()
			}
			label := fmt.Sprintf("epoch %d/%d", epoch, cfg.Epochs)
			if done > 1 { // step describes the first
				bar.showLoss(label, func() (float64, error) { return tr.RunningLoss(runningLossWindow) })
			}
			bar.step(label, done, total)
		},
		Epoch: func(s engine.EpochStats) {
			runOf(c).epoch(s)
			if checkpointing {
				k.saveOrWarn()
			}
			if table != nil {
				table.row(s)
			}
		},
	})
	bar.clear()
	report.Epochs = append([]engine.EpochStats{}, stats...) // [] rather than null before the first epoch ends
	if runErr != nil {
		if p, err := tr.Partial(); err == nil {
			report.Partial = p
		}
	}
	if err := s.stopProfiling(); err != nil && runErr == nil {
		runErr = err
	}
	if jsonOut {
		report.Manifest = runOf(c).manifestAt(c, runErr)
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	}
	if c.Context.Err() != nil && errors.Is(runErr, c.Context.Err()) {
		epoch, step := tr.Position()
		if err := k.save(); err != nil {
			return fmt.Errorf("interrupted at epoch %d, step %d, and the checkpoint could not be written: %w", epoch, step, err)
		}
		return fmt.Errorf("interrupted at epoch %d, step %d; checkpoint saved to %s; resume with:\n  %s", epoch, step, k.path, resumeCommand())
	}
	if runErr != nil {
		return runErr
	}
	return k.allFailed()
}

// optimizerSettings is what --optimizer and its flags set.
type optimizerSettings struct {
	optimizer         engine.Optimizer
	beta1, beta2, eps float64
}

// optimizerFlags reads --optimizer, and --beta1, --beta2 and --eps, which
// only Adam takes, as --momentum only SGD does.
// optimizerFlagList is --optimizer and each optimizer's own settings, which
// optimizerFlags reads.
func optimizerFlagList(momentum float64) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "optimizer", Usage: "sgd (momentum SGD), adam or adamw (PyTorch's update rules)", Value: "sgd"},
		&cli.Float64Flag{Name: "momentum", Usage: "SGD momentum, in [0,1)", Value: momentum},
		&cli.Float64Flag{Name: "beta1", Usage: "adam/adamw: decay rate of the first moment", Value: engine.DefaultBeta1},
		&cli.Float64Flag{Name: "beta2", Usage: "adam/adamw: decay rate of the second moment", Value: engine.DefaultBeta2},
		&cli.Float64Flag{Name: "eps", Usage: "adam/adamw: term added to the denominator", Value: engine.DefaultEps},
	}
}

func optimizerFlags(c *cli.Context) (optimizerSettings, error) {
	var o optimizerSettings
	switch name := c.String("optimizer"); name {
	case "sgd":
		for _, f := range []string{"beta1", "beta2", "eps"} {
			if c.IsSet(f) {
				return o, fmt.Errorf("--%s is Adam's setting: it needs --optimizer adam or adamw", f)
			}
		}
		return o, nil
	case "adam", "adamw":
		if c.IsSet("momentum") {
			return o, fmt.Errorf("--momentum is SGD's setting: %s takes --beta1 and --beta2 instead", name)
		}
		o.optimizer = engine.Adam
		if name == "adamw" {
			o.optimizer = engine.AdamW
		}
		o.beta1, o.beta2, o.eps = c.Float64("beta1"), c.Float64("beta2"), c.Float64("eps")
		return o, nil
	default:
		return o, fmt.Errorf("--optimizer must be sgd, adam or adamw, got %q", name)
	}
}

// apply sets cfg's optimizer; SGD is the zero Optimizer, so its runs'
// results and checkpoints read as before.
func (o optimizerSettings) apply(cfg *engine.Config) {
	if o.optimizer == "" {
		return
	}
	cfg.Optimizer, cfg.Momentum = o.optimizer, 0
	cfg.Beta1, cfg.Beta2, cfg.Eps = o.beta1, o.beta2, o.eps
}

// optimizerSummary is the run header's word on the optimizer.
func optimizerSummary(cfg engine.Config) string {
	if !cfg.Optimizer.IsAdam() {
		return fmt.Sprintf("momentum %g", cfg.Momentum)
	}
	return fmt.Sprintf("%s (beta1 %g, beta2 %g, eps %g)", cfg.Optimizer, cfg.Beta1, cfg.Beta2, cfg.Eps)
}

// oddTrainFlags refuses values of train's flags that would otherwise be
// silently taken for something else, or do nothing (the run-level cases
// are engine.Config.Validate's).
func oddTrainFlags(c *cli.Context) error {
	if c.Float64("decay-factor") == 0 {
		return errors.New("--decay-factor must be in (0, 1), got 0")
	}
	if c.IsSet("decay-factor") && len(c.IntSlice("decay-epochs")) == 0 {
		return errors.New("--decay-factor does nothing without --decay-epochs: it is applied after those epochs")
	}
	if c.IsSet("transfer") && c.String("transfer") == "" {
		return errors.New("--transfer is empty (leave it out for the default, pageable)")
	}
	return nil
}

// epochTable prints one row per epoch as it finishes, in fixed-width
// columns (tabwriter would need every row before aligning any).
type epochTable struct{ w io.Writer }

var epochColumns = []struct {
	head  string
	width int
}{
	{"epoch", 5}, {"batch", 6}, {"lr", 8}, {"train loss", 10}, {"train acc", 9}, {"test loss", 9}, {"test acc", 8},
	{"updates", 7}, {"samples/s", 9}, {"H2D MB", 8}, {"transfer s", 10}, {"fwd+bwd s", 9}, {"update s", 8},
	{"eval s", 6}, {"epoch s", 7},
}

func newEpochTable(w io.Writer) *epochTable {
	t := &epochTable{w}
	heads := make([]any, len(epochColumns))
	for i, c := range epochColumns {
		heads[i] = fmt.Sprintf("%*s", c.width, c.head)
	}
	t.print(heads...)
	return t
}

func (t *epochTable) row(s engine.EpochStats) {
	t.print(s.Epoch, s.Batch, fmt.Sprintf("%.4g", s.LR), fmt.Sprintf("%.4f", s.TrainLoss),
		fmt.Sprintf("%.2f%%", 100*s.TrainAccuracy), fmt.Sprintf("%.4f", s.TestLoss), fmt.Sprintf("%.2f%%", 100*s.TestAccuracy),
		s.Updates, fmt.Sprintf("%.0f", s.SamplesPerSec), fmt.Sprintf("%.1f", float64(s.H2DBytes)/1e6),
		fmt.Sprintf("%.2f", s.TransferSeconds), fmt.Sprintf("%.2f", s.ComputeSeconds), fmt.Sprintf("%.2f", s.UpdateSeconds),
		fmt.Sprintf("%.2f", s.EvalSeconds), fmt.Sprintf("%.2f", s.Seconds+s.EvalSeconds))
}

func (t *epochTable) print(cells ...any) {
	line := make([]string, len(epochColumns))
	for i, c := range epochColumns {
		line[i] = fmt.Sprintf("%*v", c.width, cells[i])
	}
	fmt.Fprintln(t.w, strings.Join(line, "  "))
}

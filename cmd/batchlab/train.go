package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

func trainCommand() *cli.Command {
	def := engine.DefaultConfig()
	return &cli.Command{
		Name:  "train",
		Usage: "train an MLP on MNIST and report what each epoch learned and cost",
		Description: "Trains the MLP 784-<hidden>-10 (ReLU, softmax cross-entropy, momentum SGD) and\n" +
			"prints, per epoch: train and test loss and accuracy, parameter updates, samples/s,\n" +
			"bytes moved host→device, and the time split into transfer / forward+backward / update.",
		Flags: []cli.Flag{
			&cli.IntSliceFlag{Name: "hidden", Usage: "hidden layer widths", Value: cli.NewIntSlice(def.Hidden...)},
			&cli.IntFlag{Name: "batch", Aliases: []string{"b"}, Usage: "samples per update", Value: def.Batch},
			&cli.Float64Flag{Name: "lr", Usage: "learning rate", Value: def.LR},
			&cli.Float64Flag{Name: "momentum", Usage: "SGD momentum, in [0,1)", Value: def.Momentum},
			&cli.Float64Flag{Name: "weight-decay", Usage: "L2 penalty added to the gradient", Value: def.WeightDecay},
			&cli.IntFlag{Name: "epochs", Aliases: []string{"e"}, Usage: "passes over the training set", Value: def.Epochs},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the weights and the data order", Value: def.Seed},
			&cli.IntFlag{Name: "eval-batch", Usage: "rows per forward pass when evaluating", Value: def.EvalBatch},
			&cli.IntFlag{Name: "train-samples", Usage: "train on the first N samples only (0: all)"},
			&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Usage: "cpu, cuda or cuda:N (default: " + device.Default() + ")"},
			dataFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print the run (settings, device, per-epoch metrics and per-step losses) as JSON"},
			&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar on stderr (it is off anyway when stderr is not a terminal)"},
		},
		Action: runTrain,
	}
}

// trainReport is the --json output.
type trainReport struct {
	Config engine.Config       `json:"config"`
	Device device.Info         `json:"device"`
	Model  string              `json:"model"`
	Params int                 `json:"params"`
	Train  int                 `json:"train_samples"`
	Test   int                 `json:"test_samples"`
	Epochs []engine.EpochStats `json:"epochs"`
}

func runTrain(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("train takes no arguments, got %q (see batchlab train --help)", c.Args().First())
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
	}
	if n := c.Int("train-samples"); n < 0 {
		return fmt.Errorf("--train-samples must be 0 (all) or positive, got %d", n)
	}
	train, test, err := data.LoadMNIST(c.String("data"))
	if err != nil {
		return err
	}
	if n := c.Int("train-samples"); n > 0 {
		train = train.Subset(n)
	}
	if err := cfg.Validate(train.Len()); err != nil {
		return err
	}
	d, err := device.Open(c.String("device"))
	if err != nil {
		return err
	}
	defer d.Close()
	tr, err := engine.NewTrainer(d, cfg, train, test)
	if err != nil {
		return err
	}
	report := trainReport{
		Config: cfg, Device: d.Info(), Model: tr.Model.String(), Params: tr.Model.ParamCount(),
		Train: train.Len(), Test: test.Len(),
	}
	out := c.App.Writer
	jsonOut := c.Bool("json")
	var table *tabwriter.Writer
	if !jsonOut {
		fmt.Fprintf(out, "device  %s\nmodel   %s, %d parameters\ndata    MNIST, %d train / %d test samples\nrun     batch %d, lr %g, momentum %g, weight decay %g, %d epoch(s), seed %d\n\n",
			report.Device, report.Model, report.Params, report.Train, report.Test,
			cfg.Batch, cfg.LR, cfg.Momentum, cfg.WeightDecay, cfg.Epochs, cfg.Seed)
		table = tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(table, "epoch\ttrain loss\ttrain acc\ttest loss\ttest acc\tupdates\tsamples/s\tH2D MB\ttransfer s\tfwd+bwd s\tupdate s\t")
	}
	bar := newProgress(c, tr.StepsIn(1))
	stats, runErr := tr.Run(c.Context, engine.Hooks{
		Step: func(epoch, done, total int) {
			if bar == nil {
				return
			}
			if done == 1 {
				bar.Reset()
				bar.ChangeMax(total) // an increase-batch schedule changes it
				bar.Describe(fmt.Sprintf("epoch %d/%d", epoch, cfg.Epochs))
			}
			bar.Add(1)
			if done == total {
				bar.Clear()
			}
		},
		Epoch: func(s engine.EpochStats) {
			if table == nil {
				return
			}
			fmt.Fprintf(table, "%d\t%.4f\t%.2f%%\t%.4f\t%.2f%%\t%d\t%.0f\t%.1f\t%.2f\t%.2f\t%.2f\t\n",
				s.Epoch, s.TrainLoss, 100*s.TrainAccuracy, s.TestLoss, 100*s.TestAccuracy, s.Updates,
				s.SamplesPerSec, float64(s.H2DBytes)/1e6, s.TransferSeconds, s.ComputeSeconds, s.UpdateSeconds)
			table.Flush()
		},
	})
	report.Epochs = stats
	if jsonOut {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	}
	if errors.Is(runErr, c.Context.Err()) && c.Context.Err() != nil {
		return fmt.Errorf("interrupted after %d complete epoch(s)", len(stats))
	}
	return runErr
}

// newProgress returns a progress bar on stderr, or nil where nobody would
// see it (stderr is not a terminal) or it was turned off.
func newProgress(c *cli.Context, steps int) *progressbar.ProgressBar {
	f, ok := c.App.ErrWriter.(*os.File)
	if c.Bool("no-progress") || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(steps,
		progressbar.OptionSetWriter(io.Writer(f)),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("steps"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

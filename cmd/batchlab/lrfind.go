package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/bench/lrfind"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/atomicfile"
)

func lrFindCommand() *cli.Command {
	def, sw := engine.DefaultConfig(), lrfind.DefaultSweep()
	// The model's flags but --lr, which the sweep sets, and --epochs: it
	// runs --steps steps.
	flags := withoutFlags(modelFlags(def), "lr", "epochs")
	return &cli.Command{
		Name:  "lr-find",
		Usage: "the learning-rate range test: train while the LR grows exponentially, stop on divergence, suggest an LR",
		Description: "Trains the model from fresh weights for --steps steps at --batch while the LR grows from\n" +
			"--min-lr to --max-lr evenly in log LR, and stops once the smoothed loss exceeds --stop-factor\n" +
			"times its lowest (or a loss is not finite). The loss is smoothed by a running median of 5\n" +
			"batches and an EMA (--smoothing, bias-corrected); the suggested LR is where the smoothed loss\n" +
			"falls fastest per decade of LR (a least-squares slope over --window decades), before its\n" +
			"lowest point. --out DIR saves lr-find.json and the plot, lr-find.svg and .png.",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab lr-find --train-samples 10000 --out lr",
			"batchlab lr-find --batch 512 --min-lr 1e-4 --max-lr 30 --json"),
		Flags: append(flags,
			&cli.Float64Flag{Name: "min-lr", Usage: "the sweep's first LR", Value: sw.MinLR},
			&cli.Float64Flag{Name: "max-lr", Usage: "the sweep's last LR", Value: sw.MaxLR},
			&cli.IntFlag{Name: "steps", Usage: "training steps from --min-lr to --max-lr", Value: sw.Steps},
			&cli.Float64Flag{Name: "smoothing", Usage: "the EMA's β: it averages about 1/(1-β) steps", Value: sw.Beta},
			&cli.Float64Flag{Name: "stop-factor", Usage: "stop once the smoothed loss exceeds this many times its lowest", Value: sw.StopFactor},
			&cli.Float64Flag{Name: "window", Usage: "width in decades of LR of the fit that gives the slope", Value: sw.Window},
			&cli.StringFlag{Name: "out", Usage: "write lr-find.json and the plot (lr-find.svg, lr-find.png) into `DIR`"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
			&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar on stderr (it is off anyway when stderr is not a terminal)"},
			traceFlag(), cpuProfileFlag(),
		),
		Action: runLRFind,
	}
}

// withoutFlags is flags less those named: a command that shares a flag
// set leaves out what would do nothing there, so that it is refused, not
// ignored.
func withoutFlags(flags []cli.Flag, names ...string) []cli.Flag {
	return slices.DeleteFunc(flags, func(f cli.Flag) bool {
		return slices.ContainsFunc(f.Names(), func(n string) bool { return slices.Contains(names, n) })
	})
}

// sweepFlags reads the sweep's flags.
func sweepFlags(c *cli.Context) (lrfind.Sweep, error) {
	s := lrfind.Sweep{
		MinLR: c.Float64("min-lr"), MaxLR: c.Float64("max-lr"), Steps: c.Int("steps"),
		Beta: c.Float64("smoothing"), StopFactor: c.Float64("stop-factor"), Window: c.Float64("window"),
	}
	if err := s.Validate(); err != nil {
		return s, fmt.Errorf("lr-find: %w", err)
	}
	return s, nil
}

func runLRFind(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	sweep, err := sweepFlags(c)
	if err != nil {
		return err
	}
	cfg, err := modelConfig(c)
	if err != nil {
		return err
	}
	cfg.LR, cfg.Epochs = sweep.MinLR, 1
	s, err := openTrainingSession(c, cfg)
	if err != nil {
		return err
	}
	defer s.close()
	bar := newProgress(c, sweep.Steps)
	r, err := lrfind.Run(c.Context, lrfind.Options{
		Base: cfg, Device: s.device, Train: s.train, Test: s.test, Sweep: sweep,
		Progress: func(done, total int) { bar.set(done) },
	})
	bar.clear()
	if err != nil {
		return err
	}
	if err := s.stopProfiling(); err != nil {
		return err
	}
	w := c.App.Writer
	if c.Bool("json") {
		if err := writeJSON(w, r); err != nil {
			return err
		}
	} else {
		writeLRFind(w, r)
	}
	if dir := c.String("out"); dir != "" {
		files, err := saveLRFind(r, dir)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.ErrWriter, "wrote %s\n", strings.Join(files, ", "))
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeLRFind prints the suggestion and the curve at about twenty points.
func writeLRFind(w io.Writer, r *lrfind.Result) {
	fmt.Fprintf(w, "LR range test: %s, batch %d, %s; %s (%d samples); %s\n", r.Model, r.Batch, r.Optimizer, r.Dataset, r.Samples, r.Device)
	fmt.Fprintf(w, "sweep %g → %g in %d steps: %s\n\n", r.Sweep.MinLR, r.Sweep.MaxLR, r.Sweep.Steps, r.Stopped)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "step\tLR\tloss\tsmoothed\tat LR\t")
	every := max(1, len(r.Points)/20)
	for i, p := range r.Points {
		if i%every == 0 || i == len(r.Points)-1 {
			fmt.Fprintf(tw, "%d\t%.3g\t%.4f\t%.4f\t%.3g\t\n", p.Step, p.LR, p.Loss, p.Smoothed, p.SmoothedLR)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nsuggested LR %.3g: the smoothed loss falls %.3g per decade of LR there (%s)\n", r.SuggestedLR, -r.Slope, r.Rule)
	fmt.Fprintf(w, "lowest smoothed loss %.4f at LR %.3g\n", r.MinLoss, r.MinLossLR)
}

// saveLRFind writes lr-find.json and the plot into dir.
func saveLRFind(r *lrfind.Result, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "lr-find.json")
	if err := atomicfile.Write(path, func(w io.Writer) error { return writeJSON(w, r) }); err != nil {
		return nil, err
	}
	files := []string{path}
	for _, ext := range []string{".svg", ".png"} {
		f := filepath.Join(dir, "lr-find"+ext)
		if err := lrfind.Plot(r, f); err != nil {
			return files, err
		}
		files = append(files, f)
	}
	return files, nil
}

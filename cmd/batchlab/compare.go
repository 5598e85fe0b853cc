package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/bench/runplot"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/runlog"
)

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare runs logged with --run-dir: the settings that differ, final and best metrics, time",
		ArgsUsage: "DIR...",
		Description: "Reads the run logs in each DIR (written by --run-dir; see docs/run-log-schema.md) and prints\n" +
			"them side by side: the flags whose values differ, then per run the epochs, final and best test\n" +
			"accuracy and loss, updates and time. A run still going is shown as far as it got.\n" +
			"With --out, also plots test accuracy and test loss against epoch for every run.",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab train --batch 64 --run-dir runs/b64",
			"batchlab train --batch 1024 --lr-scale sqrt --base-batch 64 --run-dir runs/b1024",
			"batchlab compare --out runs runs/b64 runs/b1024"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "write compare-accuracy and compare-loss (.svg, .png) into `DIR`"},
		},
		Action: runCompare,
	}
}

func runCompare(c *cli.Context) error {
	dirs := c.Args().Slice()
	if len(dirs) == 0 {
		return fmt.Errorf("compare needs the run directories to compare (see %s --help)", c.Command.HelpName)
	}
	for _, dir := range dirs {
		if strings.HasPrefix(dir, "-") {
			return fmt.Errorf("%s: flags go before the run directories (%s [--out DIR] RUN...)", dir, c.Command.HelpName)
		}
	}
	var runs []*runlog.Run
	for _, dir := range dirs {
		r, err := runlog.Read(dir)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	labels := runLabels(dirs)
	if err := writeComparison(c.App.Writer, runs, labels); err != nil {
		return err
	}
	out := c.String("out")
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(out, 0o777); err != nil {
		return err
	}
	files, err := runplot.Plot(runs, labels, out)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "wrote %s\n", strings.Join(files, ", "))
	return nil
}

// runLabels names each run by its directory's last element, or by the
// whole path where two runs would share a name.
func runLabels(dirs []string) []string {
	labels := make([]string, len(dirs))
	seen := map[string]int{}
	for i, d := range dirs {
		labels[i] = filepath.Base(filepath.Clean(d))
		seen[labels[i]]++
	}
	for i, d := range dirs {
		if seen[labels[i]] > 1 {
			labels[i] = d
		}
	}
	return labels
}

// writeComparison prints the runs as columns: what they are, the
// settings that differ, then their metrics.
func writeComparison(w io.Writer, runs []*runlog.Run, labels []string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name string, cell func(*runlog.Run) string) {
		fmt.Fprint(tw, name)
		for _, r := range runs {
			fmt.Fprintf(tw, "\t%s", cell(r))
		}
		fmt.Fprintln(tw)
	}
	// A heading has a cell per run too: tabwriter aligns a column only
	// over consecutive lines that all have it.
	heading := func(name string) { row(name, func(*runlog.Run) string { return "" }) }
	row("run", func(r *runlog.Run) string { return labels[slices.Index(runs, r)] })
	row("command", func(r *runlog.Run) string { return r.Manifest.Command })
	row("status", func(r *runlog.Run) string { return r.Manifest.Status })
	row("started", func(r *runlog.Run) string { return r.Manifest.StartTime.Format("2006-01-02 15:04:05Z") })
	row("batchlab", func(r *runlog.Run) string { return r.Manifest.Batchlab.Short() })
	row("device", func(r *runlog.Run) string {
		if d := r.Manifest.Device; d != nil {
			return fmt.Sprintf("%s:%d", d.Kind, d.Ordinal)
		}
		return "-"
	})
	differ := differingFlags(runs)
	if len(differ) > 0 {
		heading("settings that differ")
		for _, k := range differ {
			row("  --"+strings.ReplaceAll(k, "_", "-"), func(r *runlog.Run) string { return flagText(r.Manifest.Flags, k) })
		}
	} else if len(runs) > 1 {
		heading("settings: all the same")
	}
	metric := func(of func(engine.EpochStats) float64, format string) func(*runlog.Run) string {
		return func(r *runlog.Run) string {
			if len(r.Epochs) == 0 {
				return "-"
			}
			return fmtMetric(format, of(r.Epochs[len(r.Epochs)-1]))
		}
	}
	best := func(of func(engine.EpochStats) float64, format string, better func(a, b float64) bool) func(*runlog.Run) string {
		return func(r *runlog.Run) string {
			at := -1
			for i, e := range r.Epochs {
				if v := of(e); !math.IsNaN(v) && (at < 0 || better(v, of(r.Epochs[at]))) {
					at = i
				}
			}
			if at < 0 {
				return "-"
			}
			return fmt.Sprintf("%s (epoch %d)", fmtMetric(format, of(r.Epochs[at])), r.Epochs[at].Epoch)
		}
	}
	acc := func(e engine.EpochStats) float64 { return 100 * e.TestAccuracy }
	testLoss := func(e engine.EpochStats) float64 { return e.TestLoss }
	higher := func(a, b float64) bool { return a > b }
	lower := func(a, b float64) bool { return a < b }
	heading("metrics")
	row("epochs", func(r *runlog.Run) string { return fmt.Sprint(len(r.Epochs)) })
	row("final test acc", metric(acc, "%.2f%%"))
	row("best test acc", best(acc, "%.2f%%", higher))
	row("final test loss", metric(testLoss, "%.4f"))
	row("best test loss", best(testLoss, "%.4f", lower))
	row("final train loss", metric(func(e engine.EpochStats) float64 { return e.TrainLoss }, "%.4f"))
	row("updates", metric(func(e engine.EpochStats) float64 { return float64(e.TotalUpdates) }, "%.0f"))
	row("training s", func(r *runlog.Run) string {
		var s float64
		for _, e := range r.Epochs {
			s += e.Seconds
		}
		return fmt.Sprintf("%.1f", s)
	})
	row("wall s", func(r *runlog.Run) string {
		m := r.Manifest
		if m.EndTime == nil {
			return "running"
		}
		return fmt.Sprintf("%.1f", m.EndTime.Sub(m.StartTime).Seconds())
	})
	return tw.Flush()
}

func fmtMetric(format string, v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "diverged"
	}
	return fmt.Sprintf(format, v)
}

// notSettings are flags that say where a run's output went or how it was
// shown, not what it computed: their differences are not worth a row.
var notSettings = []string{"run_dir", "overwrite", "log_steps", "json", "no_progress", "checkpoint", "trace", "cpuprofile", "config", "out", "plot", "csv"}

// differingFlags are the flags, sorted, whose values are not the same in
// every run (a flag a run does not have counts as a value of its own).
func differingFlags(runs []*runlog.Run) []string {
	var keys []string
	for _, r := range runs {
		for k := range r.Manifest.Flags {
			if !slices.Contains(keys, k) && !slices.Contains(notSettings, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	var differ []string
	for _, k := range keys {
		first := flagText(runs[0].Manifest.Flags, k)
		for _, r := range runs[1:] {
			if flagText(r.Manifest.Flags, k) != first {
				differ = append(differ, k)
				break
			}
		}
	}
	return differ
}

// flagText is a flag's value as the manifest holds it: its JSON, without
// the quotes of a string; "-" for a run that does not have the flag.
func flagText(flags map[string]any, key string) string {
	v, ok := flags[key]
	if !ok {
		return "-"
	}
	if s, ok := v.(string); ok {
		if s == "" {
			return `""`
		}
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

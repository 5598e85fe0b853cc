package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/bench/advise"
	"github.com/batchlab/batchlab/bench/lrfind"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/device"
)

func adviseCommand() *cli.Command {
	def := engine.DefaultConfig()
	return &cli.Command{
		Name:  "advise",
		Usage: "recommend a batch size and its learning rate for this model on this machine",
		Description: "Measures (a) the largest batch that fits in device memory (GPU) or a RAM budget (CPU),\n" +
			"(b) the throughput knee: the smallest batch within 10% of the peak samples/s, (c) the\n" +
			"gradient noise scale, an estimate of the critical batch; then recommends a batch and its\n" +
			"LR under --lr-scale from the reference run (--lr at --batch), with the reasoning, and plots\n" +
			"samples/s and the noise scale against batch size into --out.",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab advise --device cpu --out advise-out",
			"batchlab advise --batch 64 --lr 0.05 --lr-scale linear --batch-range 32-4096 --memory 2GiB"),
		// No --epochs: advise trains steps (timing, the noise scale's
		// --noise-steps), never epochs.
		Flags: append(withoutFlags(modelFlags(def), "epochs"),
			lrScaleFlag(engine.ScaleSqrt),
			&cli.IntFlag{Name: "repeats", Usage: "times each batch size is timed, in interleaved rounds: the median and range are reported, and the knee of each", Value: 3},
			&cli.BoolFlag{Name: "lr-find", Usage: "measure the recommended batch's LR with the LR range test (lr-find's defaults) instead of scaling --lr by --lr-scale"},
			&cli.StringFlag{Name: "batch-range", Usage: "the batches timed: powers of two from `MIN-MAX` (and at most what fits)", Value: "16-8192"},
			&cli.IntFlag{Name: "noise-steps", Usage: "training steps before the noise scale is measured", Value: 200},
			noiseBigFlag(noiseBig), noisePairsFlag(noisePairs),
			&cli.StringFlag{Name: "out", Usage: "write the plot, advise.svg and advise.png, into `DIR`", Value: "."},
			&cli.BoolFlag{Name: "json", Usage: "print the advice as JSON"},
			&cli.StringFlag{Name: "grid", Usage: "recommend from the critical batch measured by `batchlab grid` in `DIR` (no measurements then)"},
			cpuProfileFlag(),
		),
		Action: runAdvise,
	}
}

func runAdvise(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if c.IsSet("grid") {
		return adviseFromGrid(c, c.String("grid"))
	}
	base, err := modelConfig(c)
	if err != nil {
		return err
	}
	base.Epochs = 1 // what every trainer of advise is built with
	train, test, err := loadData(c, base)
	if err != nil {
		return err
	}
	name := c.String("device")
	d, err := device.Open(name)
	if err != nil {
		return err
	}
	info := d.Info()
	runOf(c).setDevice(info)
	limit, _ := engine.MemoryBudget(base, d)
	d.Close()
	rule, err := lrRuleFlag(c)
	if err != nil {
		return err
	}
	minBatch, maxBatch, err := batchRange(c.String("batch-range"))
	if err != nil {
		return err
	}
	prof, err := startProfiling(c, nil)
	if err != nil {
		return err
	}
	defer prof.stop()
	o := advise.Options{
		Base: base, Rule: rule, MemoryLimit: base.Memory, // --memory's, or 0: the plan's own budget then names its source
		Open:  func() (device.Device, error) { return device.Open(name) },
		Train: train, Test: test,
		MinBatch: minBatch, MaxBatch: maxBatch,
		NoiseSteps: c.Int("noise-steps"), NoiseBig: c.Int("noise-big"), NoisePairs: c.Int("noise-pairs"),
		Repeats: c.Int("repeats"), Log: c.App.ErrWriter,
	}
	if c.Bool("lr-find") {
		if c.IsSet("lr-scale") {
			return fmt.Errorf("--lr-scale %s does nothing with --lr-find: the LR range test measures the recommended batch's LR instead of scaling --lr", rule)
		}
		sweep := lrfind.DefaultSweep()
		o.FindLR = &sweep
	}
	if o.NoiseSteps < 0 || o.NoisePairs <= 0 || o.Repeats <= 0 {
		return fmt.Errorf("need --noise-steps ≥ 0, --noise-pairs > 0 and --repeats > 0")
	}
	a, err := advise.Advise(c.Context, o)
	if err != nil {
		return err
	}
	runOf(c).result(a)
	if err := prof.stop(); err != nil {
		return err
	}
	dir := c.String("out")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var plots []string
	for _, name := range []string{"advise.svg", "advise.png"} {
		path := filepath.Join(dir, name)
		if err := advise.Plot(path, a); err != nil {
			return fmt.Errorf("writing the plot: %w", err)
		}
		plots = append(plots, path)
	}
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(a)
	}
	model, _ := base.ModelSpec() // validated by loadData
	fmt.Fprintf(w, "device %s; model %s, reference batch %d at lr %g\n\n", info, model, base.Batch, base.LR)
	fmt.Fprintf(w, "(a) largest batch that fits in %.2f GiB: %d\n    (%s)\n", float64(limit)/(1<<30), a.MaxBatch, a.MaxBatchMethod)
	writeThroughput(w, a, o.Repeats)
	fmt.Fprintf(w, "(c) gradient noise scale after %d updates: B_simple ≈ %.0f [%.0f–%.0f] over %d repeats of %d pairs\n",
		a.NoiseUpdates, a.BSimple, a.BSimpleMin, a.BSimpleMax, len(a.BSimpleRuns), o.NoisePairs)
	how := fmt.Sprintf("the %s rule", a.Rule)
	if a.LRFind != nil {
		how = fmt.Sprintf("the LR range test; the %s rule would give %.4g", a.Rule, a.RuleLR)
	}
	fmt.Fprintf(w, "(d) recommended: batch %d, lr %.4g (%s)\n\n%s\n\n", a.Batch, a.LR, how, wrap(a.Reasoning, 90))
	for _, warning := range a.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wrap(warning, 90))
	}
	fmt.Fprintf(w, "plot: %s\n", strings.Join(plots, ", "))
	fmt.Fprintln(w, "\nThis is an estimate: the noise scale approximates the critical batch. To measure it, run batchlab grid and pass --grid DIR.")
	return nil
}

// writeThroughput prints part (b) of the advice: samples/s by batch size,
// median [min–max] over the repeats, and the knee with the repeats' own.
func writeThroughput(w io.Writer, a *advise.Advice, repeats int) {
	fmt.Fprintf(w, "(b) throughput, samples/s, median [min–max] of %d interleaved repeats:\n", repeats)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, p := range a.Throughput {
		fmt.Fprintf(tw, "    B=%d\t%.0f\t[%.0f–%.0f]\t\n", p.Batch, p.SamplesPerSec, p.SamplesPerSecMin, p.SamplesPerSecMax)
	}
	tw.Flush()
	fmt.Fprintf(w, "    knee (smallest batch within 10%% of the peak %.0f at B=%d), of the medians: B=%d; of each repeat: %v\n",
		a.Peak.SamplesPerSec, a.Peak.Batch, a.Knee, a.KneeRuns)
}

// batchRange reads --batch-range MIN-MAX.
func batchRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || lo <= 0 || hi < lo {
		return 0, 0, fmt.Errorf("--batch-range %q: want MIN-MAX with 0 < MIN ≤ MAX, e.g. 16-8192", s)
	}
	return lo, hi, nil
}

// parseBytes reads a size like 512MiB, 2GiB, 1.5GB or a plain byte count.
func parseBytes(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := 1.0
	num := strings.TrimSpace(s)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || !(v > 0) {
		return 0, fmt.Errorf("%q is not a positive size (e.g. 512MiB, 2GiB)", s)
	}
	return int64(v * mult), nil
}

// wrap breaks text into lines of at most width characters.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(text) {
		if n > 0 && n+1+len([]rune(word)) > width {
			b.WriteByte('\n')
			n = 0
		} else if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len([]rune(word))
	}
	return b.String()
}

package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/bench/advise"
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
			"LR under --rule from the reference run (--batch, --lr), with the reasoning, and plots\n" +
			"samples/s and the noise scale against batch size.",
		Flags: append(modelFlags(def),
			&cli.StringFlag{Name: "rule", Usage: "LR scaling rule from the reference: none, linear or sqrt", Value: string(engine.ScaleSqrt)},
			&cli.IntFlag{Name: "min-batch", Usage: "smallest batch timed", Value: 16},
			&cli.IntFlag{Name: "max-batch", Usage: "largest batch timed (and at most what fits)", Value: 8192},
			&cli.IntFlag{Name: "noise-steps", Usage: "training steps before the noise scale is measured", Value: 200},
			&cli.IntFlag{Name: "noise-big", Usage: "big batch of the noise estimator", Value: 1024},
			&cli.IntFlag{Name: "noise-pairs", Usage: "gradient pairs averaged for the noise scale", Value: 10},
			&cli.StringFlag{Name: "plot", Usage: "where to save the plot (.svg, .png or .pdf)", Value: "advise.svg"},
			&cli.BoolFlag{Name: "json", Usage: "print the advice as JSON"},
		),
		Action: runAdvise,
	}
}

func runAdvise(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	base, err := modelConfig(c)
	if err != nil {
		return err
	}
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
	limit, _ := engine.MemoryBudget(base, d)
	d.Close()
	rule, err := lrRuleFlag(c, "rule")
	if err != nil {
		return err
	}
	o := advise.Options{
		Base: base, Rule: rule, MemoryLimit: base.Memory, // --memory's, or 0: the plan's own budget then names its source
		Open:  func() (device.Device, error) { return device.Open(name) },
		Train: train, Test: test,
		MinBatch: c.Int("min-batch"), MaxBatch: c.Int("max-batch"),
		NoiseSteps: c.Int("noise-steps"), NoiseBig: c.Int("noise-big"), NoisePairs: c.Int("noise-pairs"),
		Log: c.App.ErrWriter,
	}
	if o.MinBatch <= 0 || o.MaxBatch < o.MinBatch || o.NoiseSteps < 0 || o.NoisePairs <= 0 {
		return fmt.Errorf("need 0 < --min-batch ≤ --max-batch, --noise-steps ≥ 0 and --noise-pairs > 0")
	}
	a, err := advise.Advise(c.Context, o)
	if err != nil {
		return err
	}
	if err := advise.Plot(c.String("plot"), a); err != nil {
		return fmt.Errorf("writing the plot: %w", err)
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
	fmt.Fprintf(w, "(b) throughput:")
	for _, p := range a.Throughput {
		fmt.Fprintf(w, " %d:%.0f", p.Batch, p.SamplesPerSec)
	}
	fmt.Fprintf(w, " samples/s\n    knee (smallest batch within 10%% of the peak %.0f at B=%d): B=%d\n", a.Peak.SamplesPerSec, a.Peak.Batch, a.Knee)
	fmt.Fprintf(w, "(c) gradient noise scale after %d updates: B_simple ≈ %.0f\n", a.NoiseUpdates, a.BSimple)
	fmt.Fprintf(w, "(d) recommended: batch %d, lr %.4g\n\n%s\n\nplot: %s\n", a.Batch, a.LR, wrap(a.Reasoning, 90), c.String("plot"))
	return nil
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

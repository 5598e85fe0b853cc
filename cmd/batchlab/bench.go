package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/batchlab/batchlab/bench/epoch"
	"github.com/batchlab/batchlab/bench/transfer"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/atomicfile"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
)

func benchCommand() *cli.Command {
	subs := []*cli.Command{configurable(logged(benchTransferCommand())), configurable(logged(benchEpochCommand()))}
	for _, s := range subs {
		s.OnUsageError = usageError
		s.HideHelpCommand = true
	}
	return &cli.Command{
		Name:  "bench",
		Usage: "measure, by batch size, what moving batches to the device and training an epoch cost",
		CustomHelpTemplate: withExamples(cli.SubcommandHelpTemplate,
			"batchlab bench transfer --device cuda --out bench-out",
			"batchlab bench epoch --batches 64,256,1024 --out bench-out"),
		Subcommands: subs,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return unknownCommand(c, subs)
			}
			return cli.ShowSubcommandHelp(c)
		},
	}
}

// benchOutputFlags are shared by the bench commands.
func benchOutputFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Aliases: []string{"d"}, Usage: "cpu, cuda or cuda:N", DefaultText: device.Default()},
		&cli.StringFlag{Name: "out", Usage: "write the results as JSON and CSV, and the plots as SVG and PNG, into `DIR`"},
		&cli.BoolFlag{Name: "json", Usage: "print the results as JSON instead of tables"},
		&cli.BoolFlag{Name: "csv", Usage: "print the results as CSV instead of tables"},
		&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar on stderr (it is off anyway when stderr is not a terminal)"},
		traceFlag(),
		cpuProfileFlag(),
	}
}

func benchTransferCommand() *cli.Command {
	return &cli.Command{
		Name:  "transfer",
		Usage: "host→device cost per batch by batch size and strategy, its fit α + bytes/β, and the per-epoch split",
		Description: "For each strategy and batch size, loads batches of MNIST-shaped random samples onto the\n" +
			"device (assemble, copy, and for uint8 and resident the device's gather and normalize, then\n" +
			"synchronize) and reports the median time per batch over --repeats measurements. Fits\n" +
			"t(B) = α + bytes(B)/β per strategy and splits the transfer time of an epoch of --samples\n" +
			"into α·⌈N/B⌉, which larger batches cut, and N·bytes/β, which they do not.\n" +
			"On the CPU device a \"transfer\" is a copy within host memory.",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab bench transfer --device cuda --out bench-out",
			"batchlab bench transfer --batches 1,16,256,4096 --transfer pageable,pinned,uint8 --repeats 9",
			"batchlab bench transfer --transfer resident --json"),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "batches", Usage: "batch sizes, comma-separated", Value: joinInts(transfer.PowersOfTwo(8192))},
			&cli.StringFlag{Name: "transfer", Usage: "the strategies measured, as train's --transfer names one: modes (" + joinModes(data.Modes()) +
				") and dtypes (float32, uint8), comma-separated; every mode named with every dtype named (resident moves uint8 only)", Value: joinModes(data.Modes()) + ",float32,uint8"},
			&cli.IntFlag{Name: "repeats", Usage: "measurements per point, in interleaved rounds: the median and range are reported", Value: 7},
			&cli.DurationFlag{Name: "min-time", Usage: "each measurement repeats the batch for at least this long", Value: 20 * time.Millisecond},
			&cli.IntFlag{Name: "samples", Usage: "N: the random samples moved, and the epoch size of the split", Value: 60000},
		}, benchOutputFlags()...),
		Action: runBenchTransfer,
	}
}

func runBenchTransfer(c *cli.Context) error {
	if err := benchArgs(c); err != nil {
		return err
	}
	batches, err := parseInts("batches", c.String("batches"))
	if err != nil {
		return err
	}
	strategies, err := parseStrategies(c.String("transfer"))
	if err != nil {
		return err
	}
	// The random set is made in RAM (and uploaded whole for resident):
	// a bound, so that no value of the flag ends in the Go runtime's
	// out-of-memory.
	const maxSamples = 1_000_000
	n := c.Int("samples")
	if n <= 0 || n > maxSamples {
		return fmt.Errorf("--samples must be in 1 to %d (MNIST has 60000), got %d", maxSamples, n)
	}
	if c.Int("repeats") <= 0 {
		return fmt.Errorf("--repeats must be positive, got %d", c.Int("repeats"))
	}
	s, err := openSession(c)
	if err != nil {
		return err
	}
	defer s.close()
	bar := newProgress(c, len(batches)*len(strategies)*c.Int("repeats")) // measurements, interleaved
	r, err := transfer.Measure(c.Context, transfer.Config{
		Device: s.device, Data: data.Random(n, 28, 28, 10, 1), Batches: batches, Strategies: strategies,
		Repeats: c.Int("repeats"), MinTime: c.Duration("min-time"), Trace: s.prof.tl,
		Progress: func(done, total int) { bar.set(done) },
	})
	bar.clear()
	if err != nil {
		return err
	}
	if err := s.stopProfiling(); err != nil {
		return err
	}
	return writeBench(c, r, "transfer")
}

func benchEpochCommand() *cli.Command {
	def := engine.DefaultConfig()
	return &cli.Command{
		Name:  "epoch",
		Usage: "one epoch of training (MNIST or --dataset) per batch size, its time split into transfer / compute / update",
		Description: "Trains one epoch of the MLP on the dataset at each batch size, from the same initial weights,\n" +
			"and reports updates, samples/s, host→device bytes and copies, and the time split as the\n" +
			"trainer's device events measured it: transfer, forward+backward, update, and the rest.",
		CustomHelpTemplate: withExamples(cli.CommandHelpTemplate,
			"batchlab bench epoch --batches 64,256,1024 --out bench-out",
			"batchlab bench epoch --lr-scale linear --base-batch 64 --transfer resident --csv"),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "batches", Usage: "batch sizes, comma-separated", Value: "16,64,256,1024,4096"},
			&cli.IntFlag{Name: "repeats", Usage: "epochs per batch size, in interleaved rounds: the median repeat and the range are reported", Value: 3},
			transferOption(),
			&cli.IntSliceFlag{Name: "hidden", Usage: "hidden layer widths", Value: cli.NewIntSlice(def.Hidden...)},
			&cli.Float64Flag{Name: "lr", Usage: "learning rate at --base-batch", Value: def.LR},
			// An unscaled rate of 0.1 at batch 16 kills units, and their
			// decaying velocities turn denormal, which slows the CPU's
			// update tenfold: a cost the batch size did not cause.
			lrScaleFlag(engine.ScaleSqrt),
			baseBatchFlag(),
			&cli.Float64Flag{Name: "momentum", Usage: "SGD momentum, in [0,1)", Value: def.Momentum},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the weights and the data order", Value: def.Seed},
			&cli.IntFlag{Name: "train-samples", Usage: "train on the first N samples only", DefaultText: "all"},
			datasetFlag(), dataFlag(),
		}, benchOutputFlags()...),
		Action: runBenchEpoch,
	}
}

func runBenchEpoch(c *cli.Context) error {
	if err := benchArgs(c); err != nil {
		return err
	}
	batches, err := parseInts("batches", c.String("batches"))
	if err != nil {
		return err
	}
	cfg := engine.DefaultConfig()
	if cfg.Transfer, err = transferFlag(c); err != nil {
		return err
	}
	var note string
	if cfg.LRScale, cfg.BaseBatch, note, err = lrScale(c); err != nil {
		return err
	}
	if note != "" {
		fmt.Fprintln(c.App.ErrWriter, "batchlab: note:", note)
	}
	cfg.Hidden, cfg.LR, cfg.Momentum, cfg.Seed = c.IntSlice("hidden"), c.Float64("lr"), c.Float64("momentum"), c.Uint64("seed")
	var each []engine.Config
	for _, b := range batches {
		cfg.Batch = b
		each = append(each, cfg)
	}
	s, err := openTrainingSession(c, each...)
	if err != nil {
		return err
	}
	defer s.close()
	bar := newProgress(c, 1)
	r, err := epoch.Measure(c.Context, epoch.Config{
		Device: s.device, Train: s.train, Test: s.test, Base: cfg, Batches: batches, Repeats: c.Int("repeats"), Trace: s.prof.tl,
		Step: func(batch, done, total int) { bar.step(fmt.Sprintf("batch %d", batch), done, total) },
	})
	if err != nil {
		return err
	}
	if err := s.stopProfiling(); err != nil {
		return err
	}
	return writeBench(c, r, "epoch")
}

// benchReport is what the bench commands print, save and plot.
type benchReport interface {
	WriteTable(io.Writer) error
	WriteCSV(io.Writer) error
	Plot(dir string) ([]string, error)
}

// writeBench prints r in the format asked and saves it, with its plots,
// under --out as name.json and name.csv.
func writeBench(c *cli.Context, r benchReport, name string) error {
	runOf(c).result(r)
	out := c.App.Writer
	switch {
	case c.Bool("json"):
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	case c.Bool("csv"):
		if err := r.WriteCSV(out); err != nil {
			return err
		}
	default:
		if err := r.WriteTable(out); err != nil {
			return err
		}
	}
	dir := c.String("out")
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files, err := r.Plot(dir)
	if err != nil {
		return err
	}
	for ext, write := range map[string]func(io.Writer) error{
		".json": func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		},
		".csv": r.WriteCSV,
	} {
		path := filepath.Join(dir, name+ext)
		if err := atomicfile.Write(path, write); err != nil {
			return err
		}
		files = append(files, path)
	}
	fmt.Fprintf(c.App.ErrWriter, "wrote %s\n", strings.Join(files, ", "))
	return nil
}

// benchArgs checks what the bench commands have in common.
func benchArgs(c *cli.Context) error {
	if err := noArgs(c); err != nil {
		return err
	}
	if c.Bool("json") && c.Bool("csv") {
		return errors.New("--json and --csv both ask for stdout: choose one (--out saves both)")
	}
	return nil
}

// parseInts reads a comma-separated list of positive integers.
func parseInts(flag, s string) ([]int, error) {
	var xs []int
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || x <= 0 {
			return nil, fmt.Errorf("--%s: %q is not a positive integer (want e.g. 1,2,4)", flag, f)
		}
		xs = append(xs, x)
	}
	return xs, nil
}

// parseStrategies reads bench transfer's --transfer: the modes and dtypes
// named, crossed (a mode alone is float32, as in train's --transfer);
// resident goes with uint8 only.
func parseStrategies(list string) ([]data.Strategy, error) {
	var ms []data.Mode
	var dts []device.DType
	for _, f := range strings.Split(list, ",") {
		switch w := strings.TrimSpace(f); {
		case slices.Contains(data.Modes(), data.Mode(w)):
			if !slices.Contains(ms, data.Mode(w)) {
				ms = append(ms, data.Mode(w))
			}
		case w == "float32" || w == "uint8":
			dt := device.Float32
			if w == "uint8" {
				dt = device.Uint8
			}
			if !slices.Contains(dts, dt) {
				dts = append(dts, dt)
			}
		default:
			return nil, fmt.Errorf("--transfer: %q is neither a mode (%s) nor a dtype (float32, uint8)", w, joinModes(data.Modes()))
		}
	}
	if len(ms) == 0 {
		ms = []data.Mode{data.Pageable}
	}
	if slices.Contains(ms, data.Resident) && len(dts) > 0 && !slices.Contains(dts, device.Uint8) {
		return nil, errors.New("--transfer: resident moves uint8 only: add uint8 or name no dtype")
	}
	if len(dts) == 0 {
		dts = []device.DType{device.Float32}
	}
	var ss []data.Strategy
	for _, dt := range dts {
		for _, m := range ms {
			switch {
			case m != data.Resident:
				ss = append(ss, data.Strategy{Mode: m, DType: dt})
			case dt == device.Uint8 || len(dts) == 1: // resident's one strategy, once
				ss = append(ss, data.Strategy{Mode: m, DType: device.Uint8})
			}
		}
	}
	return ss, nil
}

func joinModes(ms []data.Mode) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, ",")
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

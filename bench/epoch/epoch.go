// Package epoch answers what one epoch of real training costs at each batch
// size: it trains an epoch from the same initial weights per batch size and
// splits its wall time, as the trainer's device events measured it, into
// transfer, forward+backward, update and the rest, beside updates, bytes and
// copies moved host→device. `batchlab bench epoch` prints, saves and plots
// its Report.
package epoch

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/batchlab/batchlab/bench"
	"github.com/batchlab/batchlab/engine"
	"github.com/batchlab/batchlab/engine/data"
	"github.com/batchlab/batchlab/engine/device"
	"github.com/batchlab/batchlab/engine/trace"
)

// Config is one epoch of real training at each of several batch sizes.
type Config struct {
	Device      device.Device
	Train, Test *data.Dataset
	Base        engine.Config // every setting but Batch and Epochs (which is 1)
	Batches     []int
	// Repeats is how many epochs are trained per batch size, in rounds
	// that visit every batch size once.
	Repeats int
	Trace   *trace.Timeline
	// Step, if not nil, is told after every training step.
	Step func(batch, done, total int)
}

// Point is what one epoch at one batch size did and cost. The times are
// those of the median repeat (the one of median wall time, the lower of
// the two middle ones for an even count), so that its split adds up, with
// the range of the repeats' wall times and samples/s.
type Point struct {
	Batch            int       `json:"batch"`
	LR               float64   `json:"lr"` // after scaling by the batch
	Updates          int       `json:"updates"`
	Seconds          float64   `json:"seconds"` // the training pass, wall time
	SecondsMin       float64   `json:"seconds_min"`
	SecondsMax       float64   `json:"seconds_max"`
	SecondsRuns      []float64 `json:"seconds_runs"` // each repeat's, in the order trained
	SamplesPerSec    float64   `json:"samples_per_sec"`
	SamplesPerSecMin float64   `json:"samples_per_sec_min"`
	SamplesPerSecMax float64   `json:"samples_per_sec_max"`
	TransferSeconds  float64   `json:"transfer_seconds"`
	ComputeSeconds   float64   `json:"compute_seconds"` // forward and backward
	UpdateSeconds    float64   `json:"update_seconds"`
	OtherSeconds     float64   `json:"other_seconds"` // the rest: host bookkeeping, synchronization
	H2DBytes         int64     `json:"h2d_bytes"`
	H2DCopies        int64     `json:"h2d_copies"`
	TrainLoss        float64   `json:"train_loss"`
	TestAccuracy     float64   `json:"test_accuracy"`
}

// Report is the result of Measure.
type Report struct {
	Date     string        `json:"date"`
	Device   device.Info   `json:"device"`
	Dataset  string        `json:"dataset"`
	Samples  int           `json:"samples"`
	Transfer string        `json:"transfer"`
	Model    string        `json:"model"`
	Config   engine.Config `json:"config"` // the base settings
	Repeats  int           `json:"repeats"`
	Points   []Point       `json:"points"`
	Warnings []string      `json:"warnings"` // where the repeats' spread could change a reading

}

// Measure trains one epoch from the same initial weights at each batch size
// and reports its time split as the trainer's device events measured it,
// Repeats times, interleaved.
func Measure(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Batches) == 0 {
		return nil, errors.New("nothing to measure: no batch sizes")
	}
	if cfg.Repeats <= 0 {
		return nil, fmt.Errorf("repeats must be positive, got %d", cfg.Repeats)
	}
	repeats := cfg.Repeats
	r := &Report{
		Date: time.Now().Format(time.DateOnly), Device: cfg.Device.Info(), Dataset: cfg.Train.Name,
		Samples: cfg.Train.Len(), Transfer: cfg.Base.Transfer.String(), Config: cfg.Base, Repeats: repeats,
	}
	runs := make([][]engine.EpochStats, len(cfg.Batches))
	for range repeats {
		for i, b := range cfg.Batches {
			e, model, err := epochAt(ctx, cfg, b)
			if err != nil {
				return nil, fmt.Errorf("batch %d: %w", b, err)
			}
			r.Model, runs[i] = model, append(runs[i], e)
		}
	}
	for i, b := range cfg.Batches {
		r.Points = append(r.Points, pointOf(b, runs[i]))
	}
	r.warn()
	return r, nil
}

// epochAt trains one epoch at batch b from the initial weights.
func epochAt(ctx context.Context, cfg Config, b int) (engine.EpochStats, string, error) {
	c := cfg.Base
	c.Batch, c.Epochs = b, 1
	tr, err := engine.NewTrainer(cfg.Device, c, cfg.Train, cfg.Test)
	if err != nil {
		return engine.EpochStats{}, "", err
	}
	tr.SetTrace(cfg.Trace)
	var onStep func(done, total int)
	if cfg.Step != nil {
		onStep = func(done, total int) { cfg.Step(b, done, total) }
	}
	e, err := tr.Epoch(ctx, 1, onStep)
	return e, tr.Model.String(), err
}

// pointOf is the median repeat of runs, with the range of all.
func pointOf(b int, runs []engine.EpochStats) Point {
	byTime := slices.SortedFunc(slices.Values(runs), func(x, y engine.EpochStats) int { return cmp.Compare(x.Seconds, y.Seconds) })
	e := byTime[(len(byTime)-1)/2]
	var secs []float64
	for _, run := range runs {
		secs = append(secs, run.Seconds)
	}
	n := float64(e.Samples)
	return Point{
		Batch: b, LR: e.LR, Updates: e.Updates, Seconds: e.Seconds,
		SecondsMin: byTime[0].Seconds, SecondsMax: byTime[len(byTime)-1].Seconds, SecondsRuns: secs,
		SamplesPerSec: e.SamplesPerSec, SamplesPerSecMin: n / byTime[len(byTime)-1].Seconds, SamplesPerSecMax: n / byTime[0].Seconds,
		TransferSeconds: e.TransferSeconds, ComputeSeconds: e.ComputeSeconds, UpdateSeconds: e.UpdateSeconds,
		OtherSeconds: e.Seconds - e.TransferSeconds - e.ComputeSeconds - e.UpdateSeconds,
		H2DBytes:     e.H2DBytes, H2DCopies: e.H2DCopies, TrainLoss: e.TrainLoss, TestAccuracy: e.TestAccuracy,
	}
}

// noisy is the spread, as a fraction of the median, beyond which an
// epoch's time is flagged.
const noisy = 0.25

// warn lists the epochs whose repeats spread beyond noisy, and the
// neighbouring batch sizes whose ranges overlap: which of the two epochs
// is cheaper is then not resolved.
func (r *Report) warn() {
	r.Warnings = []string{} // [] in JSON when there is nothing to warn of
	if r.Repeats < 2 {
		r.Warnings = append(r.Warnings, "one repeat: no spread measured (--repeats 3 or more to see the machine's noise)")
		return
	}
	for i, e := range r.Points {
		if (e.SecondsMax-e.SecondsMin)/e.Seconds > noisy {
			r.Warnings = append(r.Warnings, fmt.Sprintf("B=%d: the epoch took %.2f–%.2f s over the repeats, more than %.0f%% of its median: the machine was busy", e.Batch, e.SecondsMin, e.SecondsMax, 100*noisy))
		}
		if i > 0 {
			p := r.Points[i-1]
			if p.SecondsMin <= e.SecondsMax && e.SecondsMin <= p.SecondsMax {
				r.Warnings = append(r.Warnings, fmt.Sprintf("B=%d and B=%d: their epoch times overlap over the repeats (%.2f [%.2f–%.2f] s and %.2f [%.2f–%.2f] s): which is cheaper is not resolved",
					p.Batch, e.Batch, p.Seconds, p.SecondsMin, p.SecondsMax, e.Seconds, e.SecondsMin, e.SecondsMax))
			}
		}
	}
}

// WriteTable prints one row per batch size.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "one epoch of %s (%d samples), %s, %s transfer, on the %s\n%s · %d repeats, interleaved: samples/s and epoch s are the median repeat's [min–max], the split is the median repeat's\n\n",
		r.Dataset, r.Samples, r.Model, r.Transfer, bench.DeviceLabel(r.Device), r.Date, r.Repeats)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch\tlr\tupdates\tsamples/s\tepoch s\ttransfer s\tfwd+bwd s\tupdate s\tother s\ttransfer %\tH2D MB\tcopies\ttrain loss\ttest acc\t")
	for _, e := range r.Points {
		fmt.Fprintf(tw, "%d\t%.3g\t%d\t%.0f [%.0f–%.0f]\t%.2f [%.2f–%.2f]\t%.3f\t%.2f\t%.3f\t%.3f\t%.1f\t%.1f\t%d\t%.4f\t%.2f%%\t\n",
			e.Batch, e.LR, e.Updates, e.SamplesPerSec, e.SamplesPerSecMin, e.SamplesPerSecMax, e.Seconds, e.SecondsMin, e.SecondsMax,
			e.TransferSeconds, e.ComputeSeconds, e.UpdateSeconds,
			e.OtherSeconds, 100*e.TransferSeconds/e.Seconds, float64(e.H2DBytes)/1e6, e.H2DCopies, e.TrainLoss, 100*e.TestAccuracy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, warning := range r.Warnings {
		fmt.Fprintf(w, "\nwarning: %s\n", warning)
	}
	return nil
}

// WriteCSV writes one row per batch size.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"device", "transfer", "samples", "batch", "lr", "updates", "seconds", "seconds_min", "seconds_max", "samples_per_sec", "transfer_seconds",
		"compute_seconds", "update_seconds", "other_seconds", "h2d_bytes", "h2d_copies", "train_loss", "test_accuracy"})
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	for _, e := range r.Points {
		cw.Write([]string{r.Device.String(), r.Transfer, strconv.Itoa(r.Samples), strconv.Itoa(e.Batch), g(e.LR), strconv.Itoa(e.Updates),
			g(e.Seconds), g(e.SecondsMin), g(e.SecondsMax), g(e.SamplesPerSec), g(e.TransferSeconds), g(e.ComputeSeconds), g(e.UpdateSeconds), g(e.OtherSeconds),
			strconv.FormatInt(e.H2DBytes, 10), strconv.FormatInt(e.H2DCopies, 10), g(e.TrainLoss), g(e.TestAccuracy)})
	}
	cw.Flush()
	return cw.Error()
}

// Package epoch answers what one epoch of real training costs at each batch
// size: it trains an epoch from the same initial weights per batch size and
// splits its wall time, as the trainer's device events measured it, into
// transfer, forward+backward, update and the rest, beside updates, bytes and
// copies moved host→device. `batchlab bench epoch` prints, saves and plots
// its Report.
package epoch

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
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
	Trace       *trace.Timeline
	// Step, if not nil, is told after every training step.
	Step func(batch, done, total int)
}

// Point is what one epoch at one batch size did and cost.
type Point struct {
	Batch           int     `json:"batch"`
	LR              float64 `json:"lr"` // after scaling by the batch
	Updates         int     `json:"updates"`
	Seconds         float64 `json:"seconds"` // the training pass, wall time
	SamplesPerSec   float64 `json:"samples_per_sec"`
	TransferSeconds float64 `json:"transfer_seconds"`
	ComputeSeconds  float64 `json:"compute_seconds"` // forward and backward
	UpdateSeconds   float64 `json:"update_seconds"`
	OtherSeconds    float64 `json:"other_seconds"` // the rest: host bookkeeping, synchronization
	H2DBytes        int64   `json:"h2d_bytes"`
	H2DCopies       int64   `json:"h2d_copies"`
	TrainLoss       float64 `json:"train_loss"`
	TestAccuracy    float64 `json:"test_accuracy"`
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
	Points   []Point       `json:"points"`
}

// Measure trains one epoch from the same initial weights at each batch size
// and reports its time split as the trainer's device events measured it.
func Measure(ctx context.Context, cfg Config) (*Report, error) {
	if len(cfg.Batches) == 0 {
		return nil, errors.New("nothing to measure: no batch sizes")
	}
	r := &Report{
		Date: time.Now().Format(time.DateOnly), Device: cfg.Device.Info(), Dataset: cfg.Train.Name,
		Samples: cfg.Train.Len(), Transfer: cfg.Base.Transfer.String(), Config: cfg.Base,
	}
	for _, b := range cfg.Batches {
		c := cfg.Base
		c.Batch, c.Epochs = b, 1
		tr, err := engine.NewTrainer(cfg.Device, c, cfg.Train, cfg.Test)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", b, err)
		}
		r.Model = tr.Model.String()
		tr.SetTrace(cfg.Trace)
		var onStep func(done, total int)
		if cfg.Step != nil {
			onStep = func(done, total int) { cfg.Step(b, done, total) }
		}
		e, err := tr.Epoch(ctx, 1, onStep)
		if err != nil {
			return nil, fmt.Errorf("batch %d: %w", b, err)
		}
		r.Points = append(r.Points, Point{
			Batch: b, LR: e.LR, Updates: e.Updates, Seconds: e.Seconds, SamplesPerSec: e.SamplesPerSec,
			TransferSeconds: e.TransferSeconds, ComputeSeconds: e.ComputeSeconds, UpdateSeconds: e.UpdateSeconds,
			OtherSeconds: e.Seconds - e.TransferSeconds - e.ComputeSeconds - e.UpdateSeconds,
			H2DBytes:     e.H2DBytes, H2DCopies: e.H2DCopies, TrainLoss: e.TrainLoss, TestAccuracy: e.TestAccuracy,
		})
	}
	return r, nil
}

// WriteTable prints one row per batch size.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "one epoch of %s (%d samples), %s, %s transfer, on the %s\n%s\n\n",
		r.Dataset, r.Samples, r.Model, r.Transfer, bench.DeviceLabel(r.Device), r.Date)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "batch\tlr\tupdates\tsamples/s\tepoch s\ttransfer s\tfwd+bwd s\tupdate s\tother s\ttransfer %\tH2D MB\tcopies\ttrain loss\ttest acc\t")
	for _, e := range r.Points {
		fmt.Fprintf(tw, "%d\t%.3g\t%d\t%.0f\t%.2f\t%.3f\t%.2f\t%.3f\t%.3f\t%.1f\t%.1f\t%d\t%.4f\t%.2f%%\t\n",
			e.Batch, e.LR, e.Updates, e.SamplesPerSec, e.Seconds, e.TransferSeconds, e.ComputeSeconds, e.UpdateSeconds,
			e.OtherSeconds, 100*e.TransferSeconds/e.Seconds, float64(e.H2DBytes)/1e6, e.H2DCopies, e.TrainLoss, 100*e.TestAccuracy)
	}
	return tw.Flush()
}

// WriteCSV writes one row per batch size.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"device", "transfer", "samples", "batch", "lr", "updates", "seconds", "samples_per_sec", "transfer_seconds",
		"compute_seconds", "update_seconds", "other_seconds", "h2d_bytes", "h2d_copies", "train_loss", "test_accuracy"})
	g := func(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }
	for _, e := range r.Points {
		cw.Write([]string{r.Device.String(), r.Transfer, strconv.Itoa(r.Samples), strconv.Itoa(e.Batch), g(e.LR), strconv.Itoa(e.Updates),
			g(e.Seconds), g(e.SamplesPerSec), g(e.TransferSeconds), g(e.ComputeSeconds), g(e.UpdateSeconds), g(e.OtherSeconds),
			strconv.FormatInt(e.H2DBytes, 10), strconv.FormatInt(e.H2DCopies, 10), g(e.TrainLoss), g(e.TestAccuracy)})
	}
	cw.Flush()
	return cw.Error()
}

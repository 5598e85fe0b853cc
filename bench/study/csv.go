package study

import (
	_ "embed"
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/batchlab/batchlab/engine"
)

// The CSV files of the report: runs.csv, findings.csv and noise.csv.

var runsHeader = []string{"id", "experiment", "variant", "batch", "seed", "protocol", "epoch", "lr",
	"train_loss", "train_accuracy", "test_loss", "test_accuracy", "updates", "total_updates",
	"seconds", "samples_per_sec", "h2d_bytes", "h2d_copies", "transfer_seconds", "compute_seconds",
	"update_seconds", "sharpness", "hessian_top", "final_train_loss", "final_train_accuracy",
	"converged", "reached_epoch", "reached_updates", "reached_seconds", "reached_transfer_seconds",
	"reached_compute_seconds", "reached_update_seconds", "reached_h2d_copies", "reached_h2d_bytes",
	"diverged", "failed", "error"}

// writeRunsCSV writes a row per run and epoch; batch is that epoch's, and
// what the run measured at its end (sharpness, λ_max, loss and accuracy on
// the whole training set, where its protocol's target was reached and at
// what cost) is on its last row. A run with no epoch gets one row, so
// that every run, failed ones too, is in the file.
func writeRunsCSV(w io.Writer, r *Results) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(runsHeader); err != nil {
		return err
	}
	for _, run := range r.Runs {
		epochs := run.Epochs
		if len(epochs) == 0 {
			epochs = []engine.EpochStats{{}}
		}
		for i, e := range epochs {
			row := []string{run.ID, run.Experiment, run.Variant, strconv.Itoa(run.Batch), strconv.FormatUint(run.Seed, 10), run.Protocol.String()}
			if len(run.Epochs) == 0 {
				row = append(row, make([]string, 15)...)
			} else {
				row = append(row, strconv.Itoa(e.Epoch), num(e.LR), num(e.TrainLoss), num(e.TrainAccuracy),
					num(e.TestLoss), num(e.TestAccuracy), strconv.Itoa(e.Updates), strconv.Itoa(e.TotalUpdates),
					num(e.Seconds), num(e.SamplesPerSec), strconv.FormatInt(e.H2DBytes, 10), strconv.FormatInt(e.H2DCopies, 10),
					num(e.TransferSeconds), num(e.ComputeSeconds), num(e.UpdateSeconds))
				row[3] = strconv.Itoa(e.Batch)
			}
			last := i == len(epochs)-1
			for _, final := range []*float64{run.Sharpness, run.HessianTop, run.FinalTrainLoss, run.FinalTrainAccuracy} {
				if final != nil && last {
					row = append(row, num(*final))
				} else {
					row = append(row, "")
				}
			}
			reached := make([]string, 9)
			if last {
				reached[0] = strconv.FormatBool(run.Converged())
				if r := run.Reached; r != nil {
					copy(reached[1:], []string{strconv.Itoa(r.Epoch), strconv.Itoa(r.Updates), num(r.Seconds), num(r.TransferSeconds),
						num(r.ComputeSeconds), num(r.UpdateSeconds), strconv.FormatInt(r.H2DCopies, 10), strconv.FormatInt(r.H2DBytes, 10)})
				}
			}
			row = append(row, reached...)
			row = append(row, strconv.FormatBool(run.Diverged), run.failure(), run.Error)
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

var findingsHeader = []string{"id", "claim", "source", "verdict", "rule", "protocol", "min_seeds", "seeds",
	"measured", "numbers", "intervals", "caveats"}

// writeFindingsCSV writes a row per finding; its numbers as "key=value;
// ...", its intervals as "key=mean [lo, hi] (method, level, n)", its
// caveats joined by " | ".
func writeFindingsCSV(w io.Writer, r *Results) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(findingsHeader); err != nil {
		return err
	}
	for _, f := range r.Findings {
		var nums, ivs []string
		for _, k := range slices.Sorted(maps.Keys(f.Numbers)) {
			nums = append(nums, k+"="+num(f.Numbers[k]))
		}
		for _, k := range slices.Sorted(maps.Keys(f.Intervals)) {
			iv := f.Intervals[k]
			ivs = append(ivs, fmt.Sprintf("%s=%s [%s, %s] (%s, %s, n=%d)", k, num(iv.Mean), num(iv.Lo), num(iv.Hi), iv.Method, num(iv.Level), iv.N))
		}
		if err := cw.Write([]string{f.ID, f.Claim, f.Source, f.Verdict, f.Rule, f.Protocol, strconv.Itoa(f.MinSeeds), strconv.Itoa(f.Seeds),
			f.Measured, strings.Join(nums, "; "), strings.Join(ivs, "; "), strings.Join(f.Caveats, " | ")}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

var noiseHeader = []string{"id", "seed", "batch", "epoch", "updates", "train_loss", "grad_sq", "trace_sigma", "b_simple", "measurements"}

// writeNoiseCSV writes a row per noise-scale estimate of every run.
func writeNoiseCSV(w io.Writer, r *Results) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(noiseHeader); err != nil {
		return err
	}
	for _, run := range r.Runs {
		for _, p := range run.Noise {
			if err := cw.Write([]string{run.ID, strconv.FormatUint(run.Seed, 10), strconv.Itoa(run.Batch), strconv.Itoa(p.Epoch), strconv.Itoa(p.Updates),
				num(p.TrainLoss), num(p.GradSq), num(p.TraceSigma), num(p.BSimple), strconv.Itoa(p.Measurements)}); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// num writes x with every digit: the CSV files keep what the page rounds.
func num(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }

package study

import (
	_ "embed"
	"encoding/csv"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/batchlab/batchlab/engine"
)

// The CSV files of the report: runs.csv and findings.csv.

var runsHeader = []string{"id", "experiment", "variant", "batch", "seed", "epoch", "lr",
	"train_loss", "train_accuracy", "test_loss", "test_accuracy", "updates", "total_updates",
	"seconds", "samples_per_sec", "h2d_bytes", "h2d_copies", "transfer_seconds", "compute_seconds",
	"update_seconds", "sharpness", "final_train_loss", "final_train_accuracy", "diverged", "error"}

// writeRunsCSV writes a row per run and epoch; batch is that epoch's, and
// the measures of the final model (sharpness, loss and accuracy on the whole
// training set) are on its last row. A run with no epoch gets one row,
// so that every run, failed ones too, is in the file.
func writeRunsCSV(w io.Writer, r *Results) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(runsHeader); err != nil {
		return err
	}
	num := func(x float64) string { return strconv.FormatFloat(x, 'g', -1, 64) }
	for _, run := range r.Runs {
		epochs := run.Epochs
		if len(epochs) == 0 {
			epochs = []engine.EpochStats{{}}
		}
		for i, e := range epochs {
			row := []string{run.ID, run.Experiment, run.Variant, strconv.Itoa(run.Batch), strconv.FormatUint(run.Seed, 10)}
			if len(run.Epochs) == 0 {
				row = append(row, make([]string, 15)...)
			} else {
				row = append(row, strconv.Itoa(e.Epoch), num(e.LR), num(e.TrainLoss), num(e.TrainAccuracy),
					num(e.TestLoss), num(e.TestAccuracy), strconv.Itoa(e.Updates), strconv.Itoa(e.TotalUpdates),
					num(e.Seconds), num(e.SamplesPerSec), strconv.FormatInt(e.H2DBytes, 10), strconv.FormatInt(e.H2DCopies, 10),
					num(e.TransferSeconds), num(e.ComputeSeconds), num(e.UpdateSeconds))
				row[3] = strconv.Itoa(e.Batch)
			}
			for _, final := range []*float64{run.Sharpness, run.FinalTrainLoss, run.FinalTrainAccuracy} {
				if final != nil && i == len(epochs)-1 {
					row = append(row, num(*final))
				} else {
					row = append(row, "")
				}
			}
			row = append(row, strconv.FormatBool(run.Diverged), run.Error)
			if err := cw.Write(row); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeFindingsCSV(w io.Writer, r *Results) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"claim", "source", "verdict", "measured", "numbers"}); err != nil {
		return err
	}
	for _, f := range r.Findings {
		var nums []string
		for _, k := range slices.Sorted(maps.Keys(f.Numbers)) {
			nums = append(nums, k+"="+strconv.FormatFloat(f.Numbers[k], 'g', -1, 64))
		}
		if err := cw.Write([]string{f.Claim, f.Source, f.Verdict, f.Measured, strings.Join(nums, "; ")}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

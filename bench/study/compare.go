package study

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/batchlab/batchlab/bench/grid"
	"github.com/batchlab/batchlab/engine/device"
)

// ReadResults reads the results.json of the study report in dir.
func ReadResults(dir string) (*Results, error) {
	b, err := os.ReadFile(filepath.Join(dir, resultsFile))
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, resultsFile), err)
	}
	return &r, nil
}

// SameNumbers lists how b's runs and findings differ from a's, leaving out
// wall times and what they decide (the cost finding's verdict, and where
// a time-to-accuracy run stopped, which is the same epoch but not the same
// seconds):
// on the CPU a study run as one process and as shards must agree exactly.
func SameNumbers(a, b *Results) []string {
	var diffs []string
	if len(a.Runs) != len(b.Runs) || len(a.Missing) != len(b.Missing) {
		return []string{fmt.Sprintf("%d runs (%d missing) against %d (%d missing)", len(a.Runs), len(a.Missing), len(b.Runs), len(b.Missing))}
	}
	for i := range a.Runs {
		ra, rb := untimed(a.Runs[i]), untimed(b.Runs[i])
		if ra != rb {
			diffs = append(diffs, fmt.Sprintf("run %s differs", a.Runs[i].ID))
		}
	}
	if gridNumbers(a.Grid) != gridNumbers(b.Grid) {
		diffs = append(diffs, "the grid's analysis differs")
	}
	if len(a.Findings) != len(b.Findings) {
		return append(diffs, fmt.Sprintf("%d findings against %d", len(a.Findings), len(b.Findings)))
	}
	for i, fa := range a.Findings {
		fb := b.Findings[i]
		timed := fa.ID == "cost"
		if fa.Claim != fb.Claim || (!timed && fa.Verdict != fb.Verdict) {
			diffs = append(diffs, fmt.Sprintf("finding %q: %s against %s", fa.Claim, fa.Verdict, fb.Verdict))
		}
		for _, k := range slices.Sorted(maps.Keys(fa.Numbers)) {
			if !strings.Contains(k, "seconds") && fa.Numbers[k] != fb.Numbers[k] {
				diffs = append(diffs, fmt.Sprintf("finding %q: %s = %g against %g", fa.Claim, k, fa.Numbers[k], fb.Numbers[k]))
			}
		}
	}
	return diffs
}

// untimed is r as JSON without its wall times and its device's free memory.
func untimed(r Run) string {
	r.Seconds, r.Finished, r.Device = 0, time.Time{}, device.Info{Kind: r.Device.Kind, Name: r.Device.Name}
	r.Epochs = slices.Clone(r.Epochs)
	for i := range r.Epochs {
		e := &r.Epochs[i]
		e.Seconds, e.SamplesPerSec, e.TransferSeconds, e.ComputeSeconds, e.UpdateSeconds, e.EvalSeconds = 0, 0, 0, 0, 0, 0
	}
	if r.Reached != nil {
		c := *r.Reached
		c.Seconds, c.TransferSeconds, c.ComputeSeconds, c.UpdateSeconds = 0, 0, 0, 0
		r.Reached = &c
	}
	b, _ := marshalFinite(r)
	return string(b)
}

// gridNumbers is what a grid measured, as JSON: its targets and the noise
// scale along training (not its device). It is read back and written again,
// so that an analysis in memory (NaN) and one read from results.json (null
// read as 0) come out the same.
func gridNumbers(g *grid.Analysis) string {
	if g == nil {
		return ""
	}
	type numbers struct {
		Targets []grid.TargetResult
		Noise   []grid.NoiseSample
	}
	b, _ := marshalFinite(numbers{g.Targets, g.NoiseAlongTraining})
	var back numbers
	if err := json.Unmarshal(b, &back); err != nil {
		return err.Error()
	}
	b, _ = marshalFinite(back)
	return string(b)
}

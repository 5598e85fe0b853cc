package advise

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/plot/plotter"

	"github.com/batchlab/batchlab/bench/internal/plotkit"
)

// Plot draws samples/s against batch size (log₂ axis) with the throughput
// knee, the noise scale and the recommendation marked, and saves it
// atomically; the format follows the file's extension (.svg, .png, .pdf).
func Plot(path string, a *Advice) error {
	p := plotkit.New("Throughput and the noise scale by batch size", "batch size", "samples/s")
	var batches []int
	var pts plotter.XYs
	for _, t := range a.Throughput {
		if plotkit.Keep(float64(t.Batch), t.SamplesPerSec, true, false) {
			pts = append(pts, plotter.XY{X: float64(t.Batch), Y: t.SamplesPerSec})
			batches = append(batches, t.Batch)
		}
	}
	if len(pts) == 0 {
		return errors.New("advise: nothing to plot")
	}
	plotkit.BatchAxis(&p.X, batches)
	if err := (plotkit.Line{Label: "samples/s", Color: plotkit.SeriesColor(1), XY: pts, Marks: true}).Add(p); err != nil {
		return err
	}
	p.Y.Min, p.Y.Max = 0, a.Peak.SamplesPerSec*1.1
	marks := []struct {
		name string
		x    float64
	}{
		{fmt.Sprintf("knee B=%d", a.Knee), float64(a.Knee)},
		{fmt.Sprintf("noise scale B_simple=%.0f", a.BSimple), a.BSimple},
		{fmt.Sprintf("recommended B=%d", a.Batch), float64(a.Batch)},
	}
	lo, hi := pts[0].X, pts[len(pts)-1].X
	for i, m := range marks {
		if !(m.x > 0) || math.IsInf(m.x, 0) {
			continue
		}
		lo, hi = math.Min(lo, m.x), math.Max(hi, m.x)
		if err := plotkit.Vertical(p, m.x, m.name, plotkit.SeriesColor(i+2)); err != nil {
			return err
		}
	}
	p.X.Min, p.X.Max = lo/1.5, hi*1.5
	return plotkit.Save(p, path)
}

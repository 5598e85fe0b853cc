package epoch

import (
	"fmt"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/batchlab/batchlab/bench"
	"github.com/batchlab/batchlab/bench/internal/plotkit"
)

// Plot writes the epoch split as stacked bars per batch size into dir,
// as epoch-split.svg and .png, and returns the files written.
func (r *Report) Plot(dir string) ([]string, error) {
	p := plotkit.New(fmt.Sprintf("one epoch of %s (%d samples), %s transfer\n%s, %s",
		r.Dataset, r.Samples, r.Transfer, bench.PlotLabel(r.Device), r.Date), "batch size (samples)", "seconds per epoch")
	parts := []struct {
		name string
		of   func(Point) float64
	}{
		{"transfer", func(e Point) float64 { return e.TransferSeconds }},
		{"forward+backward", func(e Point) float64 { return e.ComputeSeconds }},
		{"update", func(e Point) float64 { return e.UpdateSeconds }},
		{"other (host, sync)", func(e Point) float64 { return e.OtherSeconds }},
	}
	var below *plotter.BarChart
	for i, part := range parts {
		vals := make(plotter.Values, len(r.Points))
		for j, e := range r.Points {
			vals[j] = max(part.of(e), 0)
		}
		bars, err := plotter.NewBarChart(vals, vg.Points(40))
		if err != nil {
			return nil, fmt.Errorf("epoch plot: %w", err)
		}
		bars.Color = plotkit.SeriesColor(i + 1)
		bars.LineStyle.Width = 0
		if below != nil {
			bars.StackOn(below)
		}
		below = bars
		p.Add(bars)
		p.Legend.Add(part.name, bars)
	}
	labels := make([]string, len(r.Points))
	for j, e := range r.Points {
		labels[j] = fmt.Sprintf("%d\n%d updates\ntransfer %.1f%%", e.Batch, e.Updates, 100*e.TransferSeconds/e.Seconds)
	}
	p.NominalX(labels...)
	p.Y.Min = 0
	return plotkit.SaveSVGAndPNG(p, dir, "epoch-split")
}

package epoch

import (
	"fmt"

	"gonum.org/v1/plot/plotter"

	"github.com/batchlab/batchlab/bench"
	"github.com/batchlab/batchlab/bench/internal/plotkit"
)

// Plot writes the epoch split as stacked bars per batch size into dir,
// as epoch-split.svg and .png, and returns the files written. The bars are
// the median repeat's split; a bar on top spans the repeats' wall times.
func (r *Report) Plot(dir string) ([]string, error) {
	p := plotkit.New(fmt.Sprintf("one epoch of %s (%d samples), %s transfer, median of %d repeats (bar: min–max)\n%s, %s",
		r.Dataset, r.Samples, r.Transfer, r.Repeats, bench.PlotLabel(r.Device), r.Date), "batch size (samples)", "seconds per epoch")
	parts := []struct {
		name string
		of   func(Point) float64
	}{
		{"transfer", func(e Point) float64 { return e.TransferSeconds }},
		{"forward+backward", func(e Point) float64 { return e.ComputeSeconds }},
		{"update", func(e Point) float64 { return e.UpdateSeconds }},
		{"other (host, sync)", func(e Point) float64 { return e.OtherSeconds }},
	}
	var stack []*plotter.BarChart
	for i, part := range parts {
		vals := make(plotter.Values, len(r.Points))
		for j, e := range r.Points {
			vals[j] = max(part.of(e), 0)
		}
		bars, err := plotter.NewBarChart(vals, 1) // the width is set below, once the legend is known
		if err != nil {
			return nil, fmt.Errorf("epoch plot: %w", err)
		}
		bars.Color = plotkit.SeriesColor(i + 1)
		bars.LineStyle.Width = 0
		if len(stack) > 0 {
			bars.StackOn(stack[len(stack)-1])
		}
		stack = append(stack, bars)
		p.Add(bars)
		p.Legend.Add(part.name, bars)
	}
	spread := plotkit.Line{Label: "range of the repeats", Color: plotkit.Mark(), NoLine: true, Width: 1}
	for j, e := range r.Points {
		spread.XY = append(spread.XY, plotter.XY{X: float64(j), Y: e.Seconds})
		spread.Lo, spread.Hi = append(spread.Lo, e.SecondsMin), append(spread.Hi, e.SecondsMax)
	}
	width := plotkit.Bars(p, len(r.Points))
	for _, bars := range stack {
		bars.Width = width
	}
	if err := spread.Add(p); err != nil {
		return nil, fmt.Errorf("epoch plot: %w", err)
	}
	labels := make([]string, len(r.Points))
	for j, e := range r.Points {
		labels[j] = fmt.Sprintf("%d\n%d updates\ntransfer %.1f%%", e.Batch, e.Updates, 100*e.TransferSeconds/e.Seconds)
	}
	p.NominalX(labels...)
	p.Y.Min = 0
	return plotkit.SaveSVGAndPNG(p, dir, "epoch-split")
}
